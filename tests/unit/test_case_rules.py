"""Unit tests of the pure rules and the case aggregate (no Temporal, no database)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.state import Fact
from tests.support.case import CUSTOMER, NOW, OWNER, SUPERVISOR, accepted_case, action, agent, assigned_case, later, rejected
from workflows import rules
from workflows.case import Case
from workflows.rules import Actor, Rejection, parse_actor


# --- intake and assignment ---------------------------------------------------


def test_receiving_records_the_complaint_and_known_facts():
    case = assigned_case()
    assert [e.kind for e in case.timeline] == ["complaint_received", "policy_applied", "owner_assigned"]
    assert case.timeline[0].actor == CUSTOMER
    assert case.state.status == "assigned"
    assert case.state.owner == OWNER and case.state.supervisor == SUPERVISOR
    assert case.state.facts["order_id"].value == "A-1001"
    assert case.state.facts["order_id"].channel == "email"
    assert case.state.policy == "standard"
    assert [e.seq for e in case.timeline] == [1, 2, 3]


def test_received_at_defaults_to_now_and_is_kept_when_given():
    assert assigned_case().state.received_at == NOW
    earlier = NOW - timedelta(hours=3)
    assert assigned_case(received_at=earlier.isoformat()).state.received_at == earlier


# --- who may -----------------------------------------------------------------


def test_only_the_assigned_owner_accepts_ownership():
    case = assigned_case()
    error = rejected(case, "accept_ownership", actor="bob")
    assert error.kind == "NotAllowed" and OWNER in error.message
    case.apply("accept_ownership", action("accept_ownership"), NOW)
    assert case.state.status == "in_progress" and case.state.owner_accepted
    assert rejected(case, "accept_ownership").kind == "InvalidCommand"


@pytest.mark.parametrize(
    "name, fields",
    [
        ("contact_customer", {"channel": "phone", "summary": "Called back"}),
        ("request_info", {"fields": ["card_last4"], "question": "Which card?"}),
        ("make_promise", {"description": "Refund", "due_at": later(60).isoformat()}),
        ("propose_resolution", {"resolution": "Refunded", "root_cause": "Double capture"}),
    ],
)
def test_owner_only_actions_reject_everyone_else(name, fields):
    case = accepted_case()
    for intruder in ("bob", SUPERVISOR, CUSTOMER, "system:cron"):
        error = rejected(case, name, actor=intruder, **fields)
        assert error.kind == "NotAllowed", (intruder, error.message)
    case.apply(name, action(name, **fields), NOW)


def test_the_owner_must_accept_before_working_the_case():
    case = assigned_case()
    error = rejected(case, "contact_customer", channel="phone", summary="Hello")
    assert "accept_ownership" in error.message


def test_any_active_roster_member_may_add_a_note():
    case = assigned_case()
    assert rejected(case, "add_note", actor="bob", text="I know this customer").kind == "NotAllowed"
    case.learn_agent(agent("bob"))
    case.apply("add_note", action("add_note", actor="bob", text="I know this customer"), NOW)
    case.learn_agent(agent("eve", active=False))
    assert "not active" in rejected(case, "add_note", actor="eve", text="x").message
    assert rejected(case, "add_note", actor=CUSTOMER, text="x").kind == "NotAllowed"
    assert case.agents_to_look_up("add_note", action("add_note", actor="zed", text="x")) == ["zed"]
    assert case.agents_to_look_up("add_note", action("add_note", actor="bob", text="x")) == []


def test_provide_info_comes_from_this_customer_or_the_owner():
    case = accepted_case()
    assert rejected(case, "provide_info", actor="customer:someone-else", facts={"x": 1}, channel="email").kind == "NotAllowed"
    assert rejected(case, "provide_info", actor="bob", facts={"x": 1}, channel="email").kind == "NotAllowed"
    case.apply("provide_info", action("provide_info", actor=CUSTOMER, facts={"x": 1}, channel="email"), NOW)
    case.apply("provide_info", action("provide_info", facts={"y": 2}, channel="phone"), NOW)
    assert case.state.facts["y"].source == OWNER


def test_parse_actor():
    assert parse_actor("ana") == Actor("agent", "ana")
    assert parse_actor("customer:c-1") == Actor("customer", "c-1")
    assert parse_actor("system:routing").name == "system:routing"


# --- never ask twice ---------------------------------------------------------


def test_never_ask_for_a_known_fact_and_say_its_value_channel_and_time():
    case = accepted_case()
    error = rejected(case, "request_info", fields=["order_id", "card_last4"], question="Order and card?")
    assert error.kind == "InvalidCommand"
    assert "order_id" in error.message and "'A-1001'" in error.message
    assert "email" in error.message and NOW.isoformat() in error.message
    assert "card_last4" not in error.message


def test_never_ask_again_while_waiting_for_the_answer():
    case = accepted_case()
    case.apply("request_info", action("request_info", fields=["card_last4"], question="Which card?"), NOW)
    assert case.state.status == "waiting_on_customer"
    assert "still waiting" in rejected(case, "request_info", fields=["card_last4"], question="Card?").message


def test_never_ask_twice_is_a_pure_rule():
    case = accepted_case()
    case.state.facts["email_address"] = Fact(value="d@x.org", channel="chat", source=CUSTOMER, at=NOW)
    with pytest.raises(Rejection, match="through chat"):
        rules.never_ask_twice(case.state, ["email_address"])
    rules.never_ask_twice(case.state, ["postcode"])


def test_providing_every_requested_fact_resumes_the_case():
    case = accepted_case()
    case.apply("request_info", action("request_info", fields=["card_last4", "bank"], question="Card and bank?"), NOW)
    case.apply("provide_info", action("provide_info", actor=CUSTOMER, facts={"card_last4": "4242"}, channel="chat"), later())
    assert case.state.status == "waiting_on_customer" and case.state.awaiting_info == ["bank"]
    case.apply("provide_info", action("provide_info", actor=CUSTOMER, facts={"bank": "Northbank"}, channel="chat"), later(2))
    assert case.state.status == "in_progress" and case.state.awaiting_info == []
    fact = case.state.facts["card_last4"]
    assert (fact.value, fact.channel, fact.source, fact.at) == ("4242", "chat", CUSTOMER, later())
    provided = [e for e in case.timeline if e.kind == "info_provided"][-1]
    assert provided.data["resumed"] is True
    assert case.timeline[-1].kind == "clocks_resumed"


def test_a_corrected_fact_keeps_the_previous_value_in_the_timeline():
    case = accepted_case()
    case.apply("provide_info", action("provide_info", actor=CUSTOMER, facts={"order_id": "A-1002"}, channel="phone"), NOW)
    assert case.state.facts["order_id"].value == "A-1002"
    assert case.timeline[-1].data["corrected_from"] == {"order_id": "A-1001"}


# --- promises ----------------------------------------------------------------


def test_promises_are_tracked_kept_and_renegotiated():
    case = accepted_case()
    due = later(60)
    case.apply("make_promise", action("make_promise", description="Refund the duplicate charge", due_at=due.isoformat()), NOW)
    promise = case.state.promises[0]
    assert (promise.promise_id, promise.owed_by, promise.status) == ("P1", OWNER, "open")
    assert case.state.next_deadline == due
    assert [c.name for c in case.state.clocks] == ["first_response", "resolution", "promise:P1"]

    new_due = later(120)
    case.apply(
        "renegotiate_promise",
        action("renegotiate_promise", promise_id="P1", new_due_at=new_due.isoformat(), reason="Bank delay", customer_agreed=True),
        later(),
    )
    assert (promise.status, promise.renegotiations, promise.due_at) == ("renegotiated", 1, new_due)

    case.apply("keep_promise", action("keep_promise", promise_id="P1", evidence="Refund ref R-9"), later(90))
    assert promise.status == "kept" and promise.evidence == "Refund ref R-9"
    assert "promise:P1" not in [c.name for c in case.state.clocks]
    assert case.state.next_deadline == NOW + timedelta(hours=8), "the first response is the next deadline"
    assert "already kept" in rejected(case, "keep_promise", promise_id="P1", evidence="again").message


def test_promise_rules_reject_bad_dates_and_unknown_ids():
    case = accepted_case()
    assert "future" in rejected(case, "make_promise", description="x", due_at=(NOW - timedelta(minutes=1)).isoformat()).message
    assert "no promise 'P9'" in rejected(case, "keep_promise", promise_id="P9", evidence="x").message
    case.apply("make_promise", action("make_promise", description="x", due_at=later(5).isoformat(), owed_by="external:Northbank"), NOW)
    assert case.state.promises[0].owed_by == "external:Northbank"
    same = case.state.promises[0].due_at.isoformat()
    assert "current deadline" in rejected(
        case, "renegotiate_promise", promise_id="P1", new_due_at=same, reason="r", customer_agreed=True
    ).message


# --- resolution and the closing gate ----------------------------------------


def propose(case: Case) -> None:
    case.apply("propose_resolution", action("propose_resolution", resolution="Refunded 49.00", root_cause="Gateway double capture"), NOW)


def test_confirmed_resolution_with_no_promises_closes_as_resolved():
    case = accepted_case()
    propose(case)
    assert case.state.status == "resolution_proposed" and case.state.root_cause == "Gateway double capture"
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=True), later())
    assert case.state.status == "closed" and case.state.outcome == "resolved"
    assert case.timeline[-1].kind == "case_closed"
    outcome = case.outcome()
    assert (outcome.outcome, outcome.owner, outcome.root_cause, outcome.closed_at) == ("resolved", OWNER, "Gateway double capture", later())
    assert "closed" in rejected(case, "add_note", text="late note").message


def test_closing_gate_waits_in_follow_through_until_every_promise_is_kept():
    case = accepted_case()
    case.apply("make_promise", action("make_promise", description="Send written confirmation", due_at=later(600).isoformat()), NOW)
    propose(case)
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=True), later())
    assert case.state.status == "follow_through"
    assert rules.closing_outcome(case.state) is None
    case.apply("keep_promise", action("keep_promise", promise_id="P1", evidence="Letter sent"), later(2))
    assert case.state.status == "closed"
    assert (case.outcome().promises_kept, case.outcome().promises_total) == (1, 1)


def test_rejected_resolution_goes_back_to_in_progress():
    case = accepted_case()
    propose(case)
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=False, comment="Still charged"), later())
    assert case.state.status == "in_progress" and case.state.resolution.confirmed is False
    assert case.timeline[-1].kind == "resolution_rejected"
    assert rules.closing_outcome(case.state) is None


def test_owner_confirms_for_the_customer_only_with_a_channel():
    case = accepted_case()
    propose(case)
    assert "channel" in rejected(case, "confirm_resolution", satisfied=True).message
    case.apply("confirm_resolution", action("confirm_resolution", satisfied=True, channel="phone"), later())
    assert case.timeline[-2].channel == "phone" and case.state.status == "closed"


def test_resolution_requires_in_progress():
    case = accepted_case()
    case.apply("request_info", action("request_info", fields=["card_last4"], question="Card?"), NOW)
    assert "waiting on the customer for card_last4" in rejected(
        case, "propose_resolution", resolution="r", root_cause="c"
    ).message
    assert rejected(case, "confirm_resolution", actor=CUSTOMER, satisfied=True).kind == "InvalidCommand"


def test_closing_outcome_needs_confirmation_root_cause_and_kept_promises():
    case = accepted_case()
    propose(case)
    assert rules.closing_outcome(case.state) is None  # not confirmed yet
    case.state.resolution.confirmed = True
    assert rules.closing_outcome(case.state) == "resolved"
    case.state.root_cause = " "
    assert rules.closing_outcome(case.state) is None


# --- idempotency and rejections ---------------------------------------------


def test_an_applied_request_id_changes_nothing_when_resent():
    case = accepted_case()
    note = action("add_note", text="Checked the ledger", request_id="req-1")
    assert len(case.apply("add_note", note, NOW)) == 1
    before = case.state.model_dump()
    assert case.apply("add_note", note, later()) == []
    assert case.state.model_dump() == before
    case.check("add_note", note, later())  # a resend also passes validation


def test_a_request_id_belongs_to_one_action_of_one_actor():
    """Issue 14: B's add_note with pay-7 must not turn A's contact_customer with pay-7 into a silent no-op."""
    case = accepted_case()
    case.learn_agent(agent(SUPERVISOR, role="supervisor"))
    case.apply("add_note", action("add_note", actor=SUPERVISOR, text="Payment traced", request_id="pay-7"), NOW)
    contact = action("contact_customer", channel="phone", summary="Explained the refund", request_id="pay-7")
    refusal = rejected(case, "contact_customer", later(), channel="phone", summary="Explained the refund", request_id="pay-7")
    assert refusal.kind == "InvalidCommand"
    assert refusal.message == f"request_id pay-7 was already used for add_note by {SUPERVISOR}"
    with pytest.raises(Rejection, match="already used for add_note"):
        case.check("contact_customer", contact, later())  # an update's validator says the same


def test_a_request_id_resent_with_another_payload_is_refused():
    case = accepted_case()
    case.apply("add_note", action("add_note", text="Refund of 49.00", request_id="n-1"), NOW)
    refusal = rejected(case, "add_note", later(), text="Refund of 94.00", request_id="n-1")
    assert refusal.kind == "InvalidCommand"
    assert refusal.message == f"request_id n-1 was already used for add_note by {OWNER} with another payload"


def test_what_a_request_id_was_used_for_crosses_a_continue_as_new():
    case = accepted_case()
    case.apply("add_note", action("add_note", text="Checked the ledger", request_id="n-1"), NOW)
    resumed = Case.resume(case.carry(case.event_count, 1))
    assert resumed.apply("add_note", action("add_note", text="Checked the ledger", request_id="n-1"), later()) == []
    with pytest.raises(Rejection, match="already used for add_note"):
        resumed.apply("contact_customer", action("contact_customer", channel="phone", summary="Hi", request_id="n-1"), later())


def test_a_rejected_signal_leaves_one_command_rejected_event():
    case = accepted_case()
    event = case.reject("keep_promise", "ana", "no promise 'P7'", NOW)
    assert (event.kind, event.data["action"], event.data["reason"]) == ("command_rejected", "keep_promise", "no promise 'P7'")
    assert case.state.event_count == len(case.timeline)


def test_validator_mode_lets_unknown_agents_through_for_the_handler_to_look_up():
    case = assigned_case()
    note = action("add_note", actor="zed", text="x")
    with pytest.raises(Rejection):
        case.check("add_note", note, NOW)
    case.check("add_note", note, NOW, roster_unknown_ok=True)


# --- withdraw ----------------------------------------------------------------


def test_only_the_customer_may_withdraw_and_it_closes_the_case_and_its_clocks():
    case = accepted_case()
    case.apply("make_promise", action("make_promise", description="Refund", due_at=later(60).isoformat()), NOW)
    for actor in (OWNER, SUPERVISOR, "customer:someone-else", "system:crm"):
        assert rejected(case, "withdraw", actor=actor, reason="changed my mind").kind == "NotAllowed"
    case.apply("withdraw", action("withdraw", actor=CUSTOMER, reason="Sorted it out with my bank"), later(5))
    assert (case.state.status, case.state.outcome, case.state.closed_at) == ("closed", "withdrawn", later(5))
    assert case.state.clocks == []
    # The only wake-up left is the end of the feedback window, when the workflow ends.
    assert case.next_wake() == case.state.feedback_until == later(5) + timedelta(days=14)
    closed = next(e for e in case.timeline if e.kind == "case_closed")
    assert (closed.actor, closed.data["outcome"], closed.data["reason"]) == (CUSTOMER, "withdrawn", "Sorted it out with my bank")
    outcome = case.outcome()
    assert (outcome.outcome, outcome.promises_kept, outcome.promises_total) == ("withdrawn", 0, 1)
    assert "closed" in rejected(case, "withdraw", actor=CUSTOMER, reason="again").message


def test_a_case_may_be_withdrawn_before_the_owner_accepts_it():
    case = assigned_case()
    case.apply("withdraw", action("withdraw", actor=CUSTOMER, reason="Duplicate of my phone call"), NOW)
    assert case.state.outcome == "withdrawn"
