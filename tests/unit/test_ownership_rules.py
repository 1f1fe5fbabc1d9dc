"""Pure rules of issue 4: transfers with handoff, goodwill within authority, feedback and reopening.

The workflow reads the roster before applying these actions; here the tests
hand the case what the roster would say (learn_agent, learn_workload).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from schemas.roster import SystemRef, AgentWorkload
from tests.support.case import (
    CUSTOMER,
    MANAGER,
    NOW,
    OWNER,
    SUPERVISOR,
    accepted_case,
    action,
    advance_to,
    agent,
    assigned_case,
    later,
    rejected,
)
from workflows import rules
from workflows.case import Case

NOTE = "Customer charged twice for order A-1001; refund of 49.00 promised by Friday, bank reference known."


def roster_says(case: Case, agent_id: str, *, open_cases: int = 0, max_open_cases: int = 20, **fields) -> None:
    """What the agent_workload activity would return for agent_id."""
    fields.setdefault("supervisor_id", SUPERVISOR)
    ref = agent(agent_id, max_open_cases=max_open_cases, **fields)
    case.learn_workload(AgentWorkload(agent_id=agent_id, agent=ref, open_cases=open_cases))


def transfer(case: Case, to: str, *, by: str = OWNER, when=NOW, **roster) -> None:
    roster_says(case, to, **roster)
    case.apply("transfer_ownership", action("transfer_ownership", actor=by, to_agent=to, handoff_note=NOTE), when)


def kinds(case: Case, since: int) -> list[str]:
    return [e.kind for e in case.timeline[since:]]


# --- transfer_ownership ------------------------------------------------------


def test_a_transfer_waits_for_acceptance_and_the_old_owner_stays_accountable():
    case = accepted_case()
    before = len(case.timeline)
    transfer(case, "bob")
    assert kinds(case, before) == ["ownership_transfer_requested"]
    assert (case.state.owner, case.state.pending_owner) == (OWNER, "bob")
    assert case.state.handoff is not None and case.state.handoff.note == NOTE
    assert case.state.handoff.from_owner == OWNER and case.state.handoff.accepted_at is None
    # Until bob accepts, the owner works the case and answers for it.
    case.apply("contact_customer", action("contact_customer", channel="phone", summary="Told them bob takes over"), later(1))
    error = rejected(case, "contact_customer", actor="bob", channel="phone", summary="Hello")
    assert error.kind == "NotAllowed"
    acceptance = next(c for c in case.state.clocks if c.name == "acceptance")
    assert acceptance.due_at == NOW + timedelta(hours=4)  # the policy's default: 4 business hours, on an always-open calendar


def test_the_new_owner_inherits_promises_facts_and_clocks_and_reads_the_handoff_first():
    case = accepted_case()
    case.apply("make_promise", action("make_promise", description="Refund 49.00", due_at=later(600).isoformat()), NOW)
    case.apply(
        "make_promise",
        action("make_promise", description="Bank confirms reversal", due_at=later(900).isoformat(), owed_by="external:bank"),
        NOW,
    )
    transfer(case, "bob")
    before = len(case.timeline)
    case.apply("accept_ownership", action("accept_ownership", actor="bob"), later(30))
    assert kinds(case, before) == ["ownership_transferred", "ownership_accepted"]
    state = case.state
    assert (state.owner, state.pending_owner, state.transfers) == ("bob", None, 1)
    assert state.handoff.accepted_at == later(30) and state.handoff.note == NOTE
    assert [p.owed_by for p in state.promises] == ["bob", "external:bank"]
    assert "order_id" in state.facts
    assert {"promise:P1", "promise:P2", "resolution"} <= {c.name for c in state.clocks}
    assert "acceptance" not in {c.name for c in state.clocks}
    transferred = next(e for e in case.timeline if e.kind == "ownership_transferred")
    assert transferred.data["handoff_note"] == NOTE and transferred.data["promises_inherited"] == ["P1"]
    # The new owner works the case at once; the old one no longer may.
    case.apply("keep_promise", action("keep_promise", actor="bob", promise_id="P1", evidence="Refund R-9"), later(31))
    assert rejected(case, "add_note", actor="nobody-known", text="x").kind == "NotAllowed"
    assert rejected(case, "contact_customer", channel="phone", summary="Hi").kind == "NotAllowed"


def test_a_chain_of_three_transfers_keeps_every_promise_and_fact():
    case = accepted_case()
    case.apply("make_promise", action("make_promise", description="Refund 49.00", due_at=later(6000).isoformat()), NOW)
    case.apply("provide_info", action("provide_info", actor=CUSTOMER, facts={"card_last4": "4242"}, channel="phone"), NOW)
    owner = OWNER
    for step, next_owner in enumerate(["bob", "cara", "dev"], start=1):
        transfer(case, next_owner, by=owner, when=later(step * 10))
        case.apply("accept_ownership", action("accept_ownership", actor=next_owner), later(step * 10 + 1))
        owner = next_owner
    state = case.state
    assert (state.owner, state.transfers) == ("dev", 3)
    assert [(p.promise_id, p.owed_by, p.status) for p in state.promises] == [("P1", "dev", "open")]
    assert {name: fact.value for name, fact in state.facts.items()} == {"order_id": "A-1001", "card_last4": "4242"}
    assert [e.data["to_owner"] for e in case.timeline if e.kind == "ownership_transferred"] == ["bob", "cara", "dev"]
    # Never ask twice survives the handoffs.
    error = rejected(case, "request_info", actor="dev", fields=["card_last4"], question="Which card?")
    assert "already known" in error.message


def test_who_may_transfer_the_owner_their_supervisor_or_a_manager():
    case = accepted_case()
    roster_says(case, "bob")
    case.learn_agent(agent("eve"))
    assert rejected(case, "transfer_ownership", actor="eve", to_agent="bob", handoff_note=NOTE).kind == "NotAllowed"
    assert rejected(case, "transfer_ownership", actor=CUSTOMER, to_agent="bob", handoff_note=NOTE).kind == "NotAllowed"
    case.learn_agent(agent("mia", role="manager", active=False))
    assert rejected(case, "transfer_ownership", actor="mia", to_agent="bob", handoff_note=NOTE).kind == "NotAllowed"

    transfer(case, "bob", by=SUPERVISOR)
    assert case.state.handoff.requested_by == SUPERVISOR

    other = accepted_case()
    other.learn_agent(agent(MANAGER, role="manager"))
    transfer(other, "bob", by=MANAGER)
    assert other.state.pending_owner == "bob"


@pytest.mark.parametrize(
    "to, roster, why",
    [
        (OWNER, {}, "already owns"),
        ("ghost", None, "not on the roster"),
        ("bob", {"active": False}, "not active"),
        ("bob", {"open_cases": 10, "max_open_cases": 10}, "max_open_cases 10"),
    ],
)
def test_transfers_to_self_unknown_inactive_or_full_agents_are_rejected(to, roster, why):
    case = accepted_case()
    if roster is None:
        case.learn_workload(AgentWorkload(agent_id=to, agent=None))
    else:
        roster_says(case, to, **roster)
    error = rejected(case, "transfer_ownership", to_agent=to, handoff_note=NOTE)
    assert error.kind == "InvalidCommand" and why in error.message


def test_a_second_transfer_while_one_is_pending_is_rejected():
    case = accepted_case()
    transfer(case, "bob")
    roster_says(case, "cara")
    error = rejected(case, "transfer_ownership", to_agent="cara", handoff_note=NOTE)
    assert "already pending" in error.message and "bob" in error.message


@pytest.mark.parametrize("note", ["", "   ", "see above", "transfer to billing team", "x" * 40])
def test_a_handoff_note_must_be_a_real_summary(note):
    with pytest.raises(Exception) as caught:
        action("transfer_ownership", to_agent="bob", handoff_note=note)
    assert "handoff" in str(caught.value) or "at least 1 character" in str(caught.value)


def test_a_pending_transfer_nobody_accepts_escalates_while_the_old_owner_stays_accountable():
    case = accepted_case()
    transfer(case, "bob")
    fired = advance_to(case, NOW + timedelta(hours=7))
    acceptance = [e for e in fired if e.kind == "escalated" and e.data["clock"] == "acceptance"]
    assert [(e.data["level"], e.data["recipient"]) for e in acceptance] == [(1, OWNER), (2, SUPERVISOR), (3, MANAGER)]
    assert [e.at for e in acceptance] == [NOW + timedelta(hours=3), NOW + timedelta(hours=4), NOW + timedelta(hours=6)]
    assert (case.state.owner, case.state.pending_owner) == (OWNER, "bob")
    # The pending transfer is not replaced by the level-3 supervisor takeover.
    assert sum(1 for e in case.timeline if e.kind == "ownership_transfer_requested") == 1
    before = len(case.timeline)
    case.apply("accept_ownership", action("accept_ownership", actor="bob"), NOW + timedelta(hours=7))
    cleared = [e for e in case.timeline[before:] if e.kind == "escalation_cleared"]
    assert [e.data["clock"] for e in cleared if e.data["clock"] == "acceptance"] == ["acceptance"]


def test_a_level3_takeover_by_the_supervisor_runs_the_acceptance_clock_too():
    case = accepted_case()
    advance_to(case, NOW + timedelta(days=8))  # resolution (5 days) reaches level 3 at 7.5 days
    requested = [e for e in case.timeline if e.kind == "ownership_transfer_requested"]
    assert requested and requested[0].data["to_agent"] == SUPERVISOR
    assert case.state.handoff.to_agent == SUPERVISOR and "acceptance" in {c.name for c in case.state.clocks}


# --- goodwill ----------------------------------------------------------------


def owner_with_limit(case: Case, limit: str) -> None:
    case.learn_agent(agent(OWNER, supervisor_id=SUPERVISOR, authority_limit=Decimal(limit)))


def test_goodwill_within_the_owner_s_authority_is_granted_at_once():
    case = accepted_case()
    owner_with_limit(case, "50")
    before = len(case.timeline)
    case.apply("offer_goodwill", action("offer_goodwill", kind="credit", amount="25.00", currency="gbp", description="Account credit"), NOW)
    assert kinds(case, before) == ["goodwill_offered", "goodwill_decided"]
    gesture = case.state.goodwill[0]
    assert (gesture.goodwill_id, gesture.status, gesture.decided_by, gesture.currency) == ("G1", "granted", OWNER, "GBP")
    assert not any(c.kind == "goodwill_approval" for c in case.state.clocks)


def test_goodwill_above_the_limit_awaits_a_supervisor_with_enough_authority():
    case = accepted_case()
    owner_with_limit(case, "50")
    case.apply("offer_goodwill", action("offer_goodwill", kind="refund", amount="400", description="Refund delivery fees"), NOW)
    gesture = case.state.goodwill[0]
    assert gesture.status == "awaiting_approval" and gesture.owner_limit == Decimal("50")
    assert "goodwill:G1" in {c.name for c in case.state.clocks}
    # The owner cannot approve their own offer, nor an agent, nor a supervisor whose limit is too low.
    case.learn_agent(agent("bob"))
    assert rejected(case, "approve_goodwill", actor="bob", goodwill_id="G1", approve=True).kind == "NotAllowed"
    case.learn_agent(agent(SUPERVISOR, role="supervisor", authority_limit=Decimal("300")))
    error = rejected(case, "approve_goodwill", actor=SUPERVISOR, goodwill_id="G1", approve=True)
    assert error.kind == "NotAllowed" and "authority limit of 300.00" in error.message
    assert rejected(case, "approve_goodwill", actor=MANAGER, goodwill_id="G9", approve=True).kind == "InvalidCommand"
    case.learn_agent(agent(MANAGER, role="manager", authority_limit=Decimal("5000")))
    case.apply("approve_goodwill", action("approve_goodwill", actor=MANAGER, goodwill_id="G1", approve=True), later(30))
    assert (gesture.status, gesture.decided_by) == ("granted", MANAGER)
    assert "goodwill:G1" not in {c.name for c in case.state.clocks}
    assert "already granted" in rejected(case, "approve_goodwill", actor=MANAGER, goodwill_id="G1", approve=False).message


def test_a_goodwill_decision_nobody_makes_escalates():
    case = accepted_case()
    owner_with_limit(case, "0")
    case.apply("offer_goodwill", action("offer_goodwill", kind="voucher", amount="20", description="Voucher"), NOW)
    fired = advance_to(case, NOW + timedelta(hours=5))
    levels = [e.data["level"] for e in fired if e.kind == "escalated" and e.data["clock"] == "goodwill:G1"]
    assert levels == [1, 2]


def test_a_case_that_cannot_be_resolved_closes_only_with_granted_goodwill():
    case = accepted_case()
    owner_with_limit(case, "50")
    case.apply(
        "offer_goodwill",
        action(
            "offer_goodwill",
            kind="refund",
            amount="200",
            description="Full refund: the discontinued item cannot be replaced",
            settles_case=True,
            root_cause="Item discontinued by the supplier",
        ),
        NOW,
    )
    assert case.state.status == "in_progress" and not case.closed  # above the limit: not until approved
    case.learn_agent(agent(SUPERVISOR, role="supervisor", authority_limit=Decimal("500")))
    case.apply("approve_goodwill", action("approve_goodwill", actor=SUPERVISOR, goodwill_id="G1", approve=True), later(5))
    assert case.closed and case.state.outcome == "goodwill"
    assert case.state.root_cause == "Item discontinued by the supplier"
    assert case.outcome().outcome == "goodwill"


def test_a_declined_settlement_leaves_the_case_open():
    case = accepted_case()
    owner_with_limit(case, "0")
    case.apply(
        "offer_goodwill",
        action("offer_goodwill", kind="refund", amount="80", description="Refund", settles_case=True, root_cause="Courier lost it"),
        NOW,
    )
    case.learn_agent(agent(SUPERVISOR, role="supervisor", authority_limit=Decimal("500")))
    case.apply("approve_goodwill", action("approve_goodwill", actor=SUPERVISOR, goodwill_id="G1", approve=False, comment="Replace it instead"), later(5))
    assert not case.closed and case.state.goodwill[0].status == "declined"


def test_a_settlement_follows_through_on_open_promises_before_closing():
    case = accepted_case()
    owner_with_limit(case, "500")
    case.apply("make_promise", action("make_promise", description="Send the returns label", due_at=later(120).isoformat()), NOW)
    case.apply(
        "offer_goodwill",
        action("offer_goodwill", kind="refund", amount="80", description="Refund", settles_case=True, root_cause="Courier lost it"),
        later(1),
    )
    assert case.state.status == "follow_through" and not case.closed
    case.apply("keep_promise", action("keep_promise", promise_id="P1", evidence="Label emailed"), later(2))
    assert case.state.outcome == "goodwill"


def test_settling_requires_a_root_cause():
    with pytest.raises(Exception) as caught:
        action("offer_goodwill", kind="refund", amount="10", description="Refund", settles_case=True)
    assert "root_cause" in str(caught.value)


# --- feedback and reopening ---------------------------------------------------


def resolved_case() -> Case:
    case = accepted_case()
    case.apply("propose_resolution", action("propose_resolution", resolution="Refunded", root_cause="Duplicate capture"), later(1))
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=True), later(2))
    assert case.closed
    return case


def test_feedback_is_recorded_once_by_the_customer_within_the_window():
    case = resolved_case()
    assert case.state.feedback_until == later(2) + timedelta(days=14)
    assert rejected(case, "record_feedback", actor=OWNER, score=5).kind == "NotAllowed"
    assert rejected(case, "record_feedback", actor="customer:someone-else", score=5).kind == "NotAllowed"
    case.apply("record_feedback", action("record_feedback", actor=CUSTOMER, score=4, comment="Quick"), later(60))
    assert case.state.feedback.score == 4 and case.outcome().satisfaction == 4
    assert not any(e.kind == "escalated" for e in case.timeline)
    assert "already recorded" in rejected(case, "record_feedback", actor=CUSTOMER, score=1).message


def test_feedback_before_closing_or_after_the_window_is_rejected():
    case = accepted_case()
    assert "once the case is closed" in rejected(case, "record_feedback", actor=CUSTOMER, score=3).message
    case = resolved_case()
    error = rejected(case, "record_feedback", when=later(2) + timedelta(days=14, seconds=1), actor=CUSTOMER, score=3)
    assert "feedback window" in error.message


@pytest.mark.parametrize("score", [1, 2])
def test_a_low_score_notifies_the_supervisor_for_review(score):
    case = resolved_case()
    case.apply("record_feedback", action("record_feedback", actor=CUSTOMER, score=score, comment="Slow"), later(60))
    review = [e for e in case.timeline if e.kind == "escalated"]
    assert len(review) == 1
    assert (review[0].data["clock"], review[0].data["recipient"], review[0].data["recipient_role"]) == (
        "feedback",
        SUPERVISOR,
        "supervisor",
    )
    assert f"{score}/5" in review[0].data["reason"]


def test_a_closed_case_stays_until_its_feedback_window_ends():
    case = resolved_case()
    assert not case.finished(later(3)) and case.next_wake() == case.state.feedback_until
    assert case.finished(case.state.feedback_until)


def test_a_contact_within_the_window_reopens_the_case_with_the_same_owner():
    case = resolved_case()
    before = len(case.timeline)
    case.apply(
        "new_contact",
        action("new_contact", actor=CUSTOMER, channel="chat", summary="Charged again this month", facts={"charge_date": "2026-12-01"}),
        later(600),
    )
    assert kinds(case, before)[:2] == ["case_reopened", "contact_received"]
    state = case.state
    assert (state.status, state.owner, state.outcome, state.reopened) == ("in_progress", OWNER, None, 1)
    assert state.facts["charge_date"].channel == "chat"
    assert {"first_response", "customer_update", "resolution"} <= {c.name for c in state.clocks}
    assert case.next_wake() is not None and not case.finished(later(600) + timedelta(days=30))


def test_a_contact_after_the_window_is_rejected_pointing_to_a_related_case():
    case = resolved_case()
    error = rejected(
        case, "new_contact", when=later(2) + timedelta(days=15), actor=CUSTOMER, channel="chat", summary="Still wrong"
    )
    assert "related_case" in error.message


def test_a_contact_on_an_open_case_merges_facts_and_answers_what_we_asked():
    case = accepted_case()
    case.apply("request_info", action("request_info", fields=["card_last4"], question="Which card?"), NOW)
    assert case.state.status == "waiting_on_customer"
    case.learn_system("phone-ivr", SystemRef(name="phone-ivr", actions=["new_contact"]))  # a registered system
    case.apply(
        "new_contact",
        action("new_contact", actor="system:phone-ivr", channel="phone", summary="Called in", facts={"card_last4": "4242", "order_id": "A-1001"}, contact_id="IVR-88"),
        later(5),
    )
    received = case.timeline[-2] if case.timeline[-1].kind == "clocks_resumed" else case.timeline[-1]
    assert received.kind == "contact_received" and received.data["contact_id"] == "IVR-88"
    assert received.data["facts"] == {"card_last4": "4242"} and received.data["unchanged"] == ["order_id"]
    assert case.state.status == "in_progress" and case.state.contacts_received == 1
    assert rejected(case, "new_contact", actor="customer:someone-else", channel="chat", summary="Hi").kind == "NotAllowed"


def test_a_withdrawn_case_reopens_on_a_contact_and_an_unaccepted_case_takes_contacts():
    case = accepted_case()
    case.apply("withdraw", action("withdraw", actor=CUSTOMER, reason="Sorted it with my bank"), later(1))
    case.apply("new_contact", action("new_contact", actor=CUSTOMER, channel="web", summary="It happened again"), later(9))
    assert (case.state.status, case.state.reopened) == ("in_progress", 1)
    assert case.timeline[-1].kind == "contact_received" or "contact_received" in kinds(case, len(case.timeline) - 5)

    case = assigned_case()
    case.apply("new_contact", action("new_contact", actor=CUSTOMER, channel="web", summary="Any news?"), NOW)
    assert case.state.status == "assigned" and case.state.contacts_received == 1
    rules.require_open(case.state)


def test_a_contact_recorded_by_an_agent_needs_an_active_roster_member():
    case = accepted_case()
    contact = action("new_contact", actor="zed", channel="phone", summary="Customer rang the front desk")
    assert case.agents_to_look_up("new_contact", contact) == ["zed"]
    case.learn_agent(agent("zed", active=False))
    assert rejected(case, "new_contact", actor="zed", channel="phone", summary="Rang again").kind == "NotAllowed"
    case.learn_agent(agent("zed"))
    case.apply("new_contact", contact, later(1))
    assert case.timeline[-1].kind == "contact_received" and case.timeline[-1].actor == "zed"
