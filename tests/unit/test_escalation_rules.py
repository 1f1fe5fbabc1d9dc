"""The deadline and escalation rules of the contract, on the pure Case (no Temporal).

advance_to fires clocks exactly as the workflow's durable timers do: at each
instant the case asks to be woken. Instants are asserted exactly.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.support.case import (
    CUSTOMER,
    MANAGER,
    NOW,
    OWNER,
    SUPERVISOR,
    accepted_case,
    action,
    advance_to,
    assigned_case,
    intake,
    policy,
)
import pytest

from workflows import rules
from workflows.case import Case


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def escalations(events) -> list[tuple[str, int, str, str]]:
    return [
        (e.data["clock"], e.data["level"], e.data["recipient"], e.data["due_at"])
        for e in events
        if e.kind == "escalated"
    ]


def clock(case: Case, name: str):
    return next(c for c in case.state.clocks if c.name == name)


# --- the ladder -----------------------------------------------------------------


def test_an_unaccepted_case_escalates_to_owner_supervisor_then_manager_on_time():
    critical = policy(severity="critical", clocks={"acknowledge": "1 hour", "resolution": "2 days"})
    case = assigned_case(terms=critical, severity="critical")
    fired = advance_to(case, NOW + hours(2))
    acknowledge = [e for e in escalations(fired) if e[0] == "acknowledge"]
    assert acknowledge == [
        ("acknowledge", 1, OWNER, (NOW + timedelta(minutes=45)).isoformat()),
        ("acknowledge", 2, SUPERVISOR, (NOW + hours(1)).isoformat()),
        ("acknowledge", 3, MANAGER, (NOW + timedelta(minutes=90)).isoformat()),
    ]
    assert [e.at for e in fired if e.kind == "escalated"] == [
        NOW + timedelta(minutes=45),
        NOW + hours(1),
        NOW + timedelta(minutes=90),
    ]
    assert case.state.escalation_level == 3
    assert clock(case, "acknowledge").breached
    # Level 3: the policy transfers the case to the supervisor; the owner stays accountable until they accept.
    assert case.state.pending_owner == SUPERVISOR and case.state.owner == OWNER
    transfer = next(e for e in fired if e.kind == "ownership_transfer_requested")
    assert transfer.data["to_agent"] == SUPERVISOR and "Charged twice" in transfer.data["handoff_note"]


def test_nothing_fires_before_its_instant():
    case = assigned_case()
    assert advance_to(case, NOW + hours(3) - timedelta(microseconds=1)) == []
    assert case.next_wake() == NOW + hours(3)  # 75% of the 4-hour acknowledge clock
    assert case.state.escalation_level == 0


def test_each_level_fires_exactly_once():
    case = assigned_case()
    advance_to(case, NOW + hours(7))
    before = len(case.timeline)
    assert case.advance_clocks(NOW + hours(7)) == []
    assert len(case.timeline) == before
    assert case.escalations == 3 + 1  # acknowledge 1-3, first_response 1 (at 6h)


def test_curing_the_cause_clears_the_level():
    case = assigned_case()
    advance_to(case, NOW + hours(4))
    assert case.state.escalation_level == 2
    case.apply("accept_ownership", action("accept_ownership"), NOW + hours(4.5))
    cleared = [e for e in case.timeline if e.kind == "escalation_cleared"]
    assert [(e.data["clock"], e.data["level"], e.data["cause"]) for e in cleared] == [
        ("acknowledge", 2, "ownership accepted")
    ]
    assert case.state.escalation_level == 0
    assert "acknowledge" not in [c.name for c in case.state.clocks]


def test_the_case_level_is_the_highest_active_clock():
    case = accepted_case()
    advance_to(case, NOW + hours(8))  # first_response: level 1 at 6h, level 2 at 8h
    assert case.state.escalation_level == 2
    case.apply("contact_customer", action("contact_customer", channel="email", summary="We are on it"), NOW + hours(8))
    assert case.state.escalation_level == 0


def test_recipients_fall_back_when_the_chain_is_short():
    case = assigned_case()
    case.state.manager = None
    case.state.supervisor = None
    fired = advance_to(case, NOW + hours(6))
    assert {e.data["recipient"] for e in fired if e.kind == "escalated"} == {OWNER}
    assert case.state.pending_owner is None, "no supervisor to transfer to"


def test_no_transfer_where_the_policy_says_not():
    case = assigned_case(terms=policy(transfer_to_supervisor_at_level3=False))
    advance_to(case, NOW + hours(6))
    assert case.state.pending_owner is None
    assert not [e for e in case.timeline if e.kind == "ownership_transfer_requested"]


def test_the_supervisor_takes_over_on_accepting_the_escalation_transfer():
    case = assigned_case()
    advance_to(case, NOW + hours(6))
    case.learn_agent(case.agents[SUPERVISOR])
    case.apply("accept_ownership", action("accept_ownership", actor=SUPERVISOR), NOW + hours(6.5))
    assert case.state.owner == SUPERVISOR and case.state.pending_owner is None
    assert case.state.supervisor == MANAGER
    assert [e.kind for e in case.timeline[-3:-1]] == ["ownership_transferred", "ownership_accepted"]


# --- clocks -------------------------------------------------------------------


def test_first_response_stops_at_the_first_contact_and_customer_update_restarts_at_each():
    case = accepted_case()
    case.apply("contact_customer", action("contact_customer", channel="email", summary="Looking into it"), NOW + hours(1))
    names = [c.name for c in case.state.clocks]
    assert "first_response" not in names and "customer_update" in names
    assert clock(case, "customer_update").due_at == NOW + hours(25)
    case.apply("contact_customer", action("contact_customer", channel="phone", summary="Update"), NOW + hours(5))
    update = clock(case, "customer_update")
    assert (update.due_at, update.occurrence) == (NOW + hours(29), 2)


def test_clocks_pause_while_waiting_on_the_customer_and_account_the_pause():
    case = accepted_case()
    resolution_due = clock(case, "resolution").due_at
    case.apply("request_info", action("request_info", fields=["card_last4"], question="Which card?"), NOW + hours(1))
    assert all(c.paused for c in case.state.clocks)
    assert case.next_wake() is None and case.state.next_deadline is None
    assert advance_to(case, NOW + hours(100)) == [], "a paused clock never escalates"
    assert case.timeline[-1].kind == "clocks_paused"

    case.apply("provide_info", action("provide_info", actor=CUSTOMER, facts={"card_last4": "4242"}, channel="chat"), NOW + hours(3))
    resolution = clock(case, "resolution")
    assert not resolution.paused and resolution.paused_seconds == 2 * 3600
    assert resolution.due_at == resolution_due + hours(2)
    resumed = case.timeline[-1]
    assert resumed.kind == "clocks_resumed" and resumed.data["paused_seconds"]["resolution"] == 7200
    assert resumed.data["due_at"]["resolution"] == (resolution_due + hours(2)).isoformat()


def test_a_clock_that_does_not_pause_keeps_running_while_waiting():
    fca_like = policy(clocks={"resolution": {"due": "8 weeks", "levels": ["6 weeks", "7 weeks", "8 weeks"], "pauses": False}})
    case = accepted_case(terms=fca_like)
    case.apply("request_info", action("request_info", fields=["card_last4"], question="Which card?"), NOW + hours(1))
    assert not clock(case, "resolution").paused
    fired = advance_to(case, NOW + timedelta(weeks=8))
    assert escalations(fired) == [
        ("resolution", 1, OWNER, (NOW + timedelta(weeks=6)).isoformat()),
        ("resolution", 2, SUPERVISOR, (NOW + timedelta(weeks=7)).isoformat()),
        ("resolution", 3, MANAGER, (NOW + timedelta(weeks=8)).isoformat()),
    ]
    assert clock(case, "resolution").breached


def test_business_clocks_count_working_time_only():
    uk = {
        "name": "uk",
        "time_zone": "Europe/London",
        "working_hours": {day: "09:00-17:00" for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-12-25", "2026-12-28"],
    }
    thursday_afternoon = datetime(2026, 12, 24, 16, 0, tzinfo=timezone.utc)  # Thursday 16:00 London
    case = Case.receive(intake(received_at=thursday_afternoon.isoformat()), thursday_afternoon)
    case.adopt_policy(policy(calendar=uk, clocks={"acknowledge": "4 business hours", "resolution": "10 days"}), thursday_afternoon)
    # One working hour on Thursday, then Friday 25th and Monday 28th are holidays: three more hours on Tuesday.
    assert clock(case, "acknowledge").due_at == datetime(2026, 12, 29, 12, 0, tzinfo=timezone.utc)
    # Level 1 at 75% of the working time: 3 working hours, i.e. Tuesday 11:00.
    assert clock(case, "acknowledge").next_escalation_at == datetime(2026, 12, 29, 11, 0, tzinfo=timezone.utc)


# --- promises -----------------------------------------------------------------


def test_a_promise_warns_an_hour_before_is_overdue_at_and_reaches_a_manager_a_day_after():
    case = accepted_case()
    case.apply("contact_customer", action("contact_customer", channel="email", summary="On it"), NOW)
    due = NOW + hours(3)
    case.apply("make_promise", action("make_promise", description="Refund the duplicate charge", due_at=due.isoformat()), NOW)
    fired = advance_to(case, due + hours(24))
    promise = [e for e in escalations(fired) if e[0] == "promise:P1"]
    assert promise == [
        ("promise:P1", 1, OWNER, (due - hours(1)).isoformat()),
        ("promise:P1", 2, SUPERVISOR, due.isoformat()),
        ("promise:P1", 3, MANAGER, (due + hours(24)).isoformat()),
    ]
    overdue = [e for e in fired if e.kind == "promise_overdue"]
    assert len(overdue) == 1 and overdue[0].at == due
    assert case.state.promises[0].status == "overdue"


def test_a_promise_kept_late_counts_as_kept_late_and_clears_its_level():
    case = accepted_case()
    due = NOW + hours(3)
    case.apply("make_promise", action("make_promise", description="Refund", due_at=due.isoformat()), NOW)
    advance_to(case, due)
    case.apply("keep_promise", action("keep_promise", promise_id="P1", evidence="ref R-1"), due + hours(1))
    promise = case.state.promises[0]
    assert (promise.status, promise.kept_on_time) == ("kept", False)
    assert case.timeline[-1].kind == "escalation_cleared" and case.timeline[-1].data["clock"] == "promise:P1"
    kept = next(e for e in case.timeline if e.kind == "promise_kept")
    assert kept.data["on_time"] is False


def test_a_renegotiated_promise_moves_its_clock_and_starts_a_new_occurrence():
    case = accepted_case()
    due = NOW + hours(3)
    case.apply("make_promise", action("make_promise", description="Refund", due_at=due.isoformat()), NOW)
    advance_to(case, due - hours(1))
    assert clock(case, "promise:P1").level == 1
    new_due = NOW + hours(10)
    case.apply(
        "renegotiate_promise",
        action("renegotiate_promise", promise_id="P1", new_due_at=new_due.isoformat(), reason="Bank delay", customer_agreed=True),
        NOW + hours(2.5),
    )
    moved = clock(case, "promise:P1")
    assert (moved.due_at, moved.level, moved.occurrence) == (new_due, 0, 2)
    assert moved.next_escalation_at == new_due - hours(1)
    assert any(e.kind == "escalation_cleared" and e.data["cause"] == "promise renegotiated" for e in case.timeline)
    case.apply("keep_promise", action("keep_promise", promise_id="P1", evidence="ref"), NOW + hours(9))
    assert case.state.promises[0].kept_on_time is True


def test_an_external_promise_escalates_to_the_owner_never_to_the_customer():
    case = accepted_case()
    due = NOW + hours(3)
    case.apply(
        "make_promise",
        action("make_promise", description="Northbank to reverse the charge", due_at=due.isoformat(), owed_by="external:Northbank"),
        NOW,
    )
    fired = advance_to(case, due - hours(1))
    assert escalations(fired)[-1][:3] == ("promise:P1", 1, OWNER)
    assert all(not e.data["recipient"].startswith("customer:") for e in case.timeline if e.kind == "escalated")


# --- resolution and confirmation ----------------------------------------------


def propose(case: Case, at: datetime) -> None:
    case.apply(
        "propose_resolution",
        action("propose_resolution", resolution="Refunded the duplicate charge", root_cause="Gateway retried a timed-out capture"),
        at,
    )


def test_proposing_stops_the_resolution_clock_and_starts_the_confirmation_window():
    case = accepted_case()
    propose(case, NOW + hours(1))
    names = [c.name for c in case.state.clocks]
    assert "resolution" not in names and "confirmation" in names
    assert clock(case, "confirmation").due_at == NOW + hours(1) + timedelta(days=7)


def test_a_rejected_resolution_resumes_the_resolution_clock_where_it_left_off():
    case = accepted_case()
    original_due = clock(case, "resolution").due_at
    propose(case, NOW + hours(10))
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=False), NOW + hours(30))
    resumed = clock(case, "resolution")
    # The 20 hours spent waiting on the customer's answer do not count against the resolution clock.
    assert resumed.due_at == original_due + hours(20)
    assert resumed.occurrence == 2


def test_the_window_passing_after_a_reminder_closes_resolved_unconfirmed():
    case = accepted_case()
    propose(case, NOW)
    case.apply("contact_customer", action("contact_customer", channel="email", summary="Reminder: does this fix it?"), NOW + timedelta(days=3))
    assert case.state.reminders_since_proposal == 1
    advance_to(case, NOW + timedelta(days=7))
    assert case.state.status == "closed" and case.state.outcome == "resolved_unconfirmed"
    assert case.outcome().outcome == "resolved_unconfirmed"


def test_the_window_passing_without_a_reminder_escalates_and_never_closes():
    case = accepted_case()
    propose(case, NOW)
    fired = advance_to(case, NOW + timedelta(days=7))
    assert case.state.status == "resolution_proposed"
    assert [e[1] for e in escalations(fired) if e[0] == "confirmation"] == [1, 2]
    # The reminder, now late, lets the case close unconfirmed.
    case.apply("contact_customer", action("contact_customer", channel="phone", summary="Reminder"), NOW + timedelta(days=8))
    assert case.state.outcome == "resolved_unconfirmed"


def test_an_unconfirmed_case_still_waits_for_its_promises():
    case = accepted_case()
    case.apply("make_promise", action("make_promise", description="Refund", due_at=(NOW + timedelta(days=30)).isoformat()), NOW)
    propose(case, NOW)
    case.apply("contact_customer", action("contact_customer", channel="email", summary="Reminder"), NOW + timedelta(days=1))
    advance_to(case, NOW + timedelta(days=7))
    assert case.state.status == "follow_through"
    case.apply("keep_promise", action("keep_promise", promise_id="P1", evidence="ref"), NOW + timedelta(days=8))
    assert case.state.outcome == "resolved_unconfirmed"


def test_closing_stops_every_clock_and_the_outcome_counts_escalations_and_on_time_promises():
    case = accepted_case()
    case.apply("contact_customer", action("contact_customer", channel="email", summary="On it"), NOW)
    due = NOW + hours(2)
    case.apply("make_promise", action("make_promise", description="Refund", due_at=due.isoformat()), NOW)
    case.apply("make_promise", action("make_promise", description="Letter", due_at=(NOW + hours(48)).isoformat()), NOW)
    advance_to(case, due)
    case.apply("keep_promise", action("keep_promise", promise_id="P1", evidence="ref"), due + hours(1))
    case.apply("keep_promise", action("keep_promise", promise_id="P2", evidence="sent"), due + hours(2))
    propose(case, due + hours(3))
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=True), due + hours(4))
    assert case.state.status == "closed" and case.state.clocks == []
    outcome = case.outcome()
    assert (outcome.promises_kept, outcome.promises_kept_on_time, outcome.promises_total) == (2, 1, 2)
    assert outcome.escalations == 2  # P1: levels 1 and 2


def test_fca_summary_resolution_is_recorded_when_resolved_by_its_deadline():
    case = accepted_case(terms=policy(name="fca", summary_resolution_by="3 days"))
    assert case.state.summary_resolution_by == NOW + timedelta(days=3)
    propose(case, NOW + hours(1))
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=True), NOW + hours(2))
    closed = next(e for e in case.timeline if e.kind == "case_closed")
    assert closed.data["summary_resolution"] is True


def test_received_at_may_not_be_in_the_future():
    rules.check_received_at(NOW + timedelta(minutes=4), NOW)
    with pytest.raises(rules.Rejection, match="in the future"):
        rules.check_received_at(NOW + timedelta(minutes=6), NOW)


def test_a_complaint_received_long_ago_escalates_at_once():
    case = assigned_case(received_at=(NOW - timedelta(days=6)).isoformat())
    fired = case.advance_clocks(NOW)
    assert ("resolution", 2) in [(e[0], e[1]) for e in escalations(fired)]
    assert clock(case, "resolution").breached


def test_a_business_deadline_that_ends_at_a_closing_is_shown_at_the_next_opening():
    uk = {
        "name": "uk",
        "time_zone": "Europe/London",
        "working_hours": {day: "09:00-17:00" for day in ("mon", "tue", "wed", "thu", "fri")},
    }
    monday_opening = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    case = Case.receive(intake(received_at=monday_opening.isoformat()), monday_opening)
    case.adopt_policy(policy(calendar=uk, clocks={"acknowledge": "1 business day", "resolution": "10 days"}), monday_opening)
    # Monday 09:00 + 1 business day is Tuesday 09:00 (not Monday 17:00, the same working time).
    assert clock(case, "acknowledge").due_at == datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
    # Level 3 at 150%: one working day and a half, i.e. Wednesday 13:00.
    assert clock(case, "acknowledge").level_seconds[2] == 1.5 * 8 * 3600
