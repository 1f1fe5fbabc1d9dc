"""The letters' pure rules (workflows/case/letters.py): which letters a policy sends and when, who sends them,
what a sent letter does to the clocks, and the FCA's closing rule (closing_refusal, workflows/case/resolution.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.policies import load_policies
from schemas.letters import LetterDelivery
from tests.support.case import CUSTOMER, NOW, OWNER, accepted_case, action, advance_to, assigned_case, later, policy, rejected
from tests.support.paths import REPO
from workflows.case import Case
from workflows.case.letters import letter_refusal
from workflows.case.resolution import closing_refusal

DAY = timedelta(days=1)
FCA_LETTERS = {
    "acknowledgement": {"template": "acknowledgement", "send": "on receipt"},
    "progress_update": {"template": "progress_update", "send": "by the owner", "drafted_on": "update_due"},
    "summary_resolution": {
        "template": "fca_summary_resolution",
        "send": "by the owner",
        "drafted_on": "resolution_confirmed",
        "within": "3 days",
    },
    "final_response": {"template": "fca_final_response", "send": "by the owner", "drafted_on": "resolution_proposed"},
    "holding_response": {
        "template": "fca_holding_response",
        "send": "after 55 days",
        "unless_sent": ["final_response", "summary_resolution"],
    },
}
# The shipped fca policy's letters and closing rule, on a calendar that never closes (tests/support/case.py).
FCA = policy(
    name="fca",
    summary_resolution_by="3 days",
    clocks={"acknowledge": "1 day", "first_response": "1 day", "customer_update": "10 days", "resolution": "8 weeks"},
    letters=FCA_LETTERS,
    closing_letters=["summary_resolution", "final_response"],
)
NO_EMAIL = {"customer_id": "cust-1", "name": "Dana Whitfield"}
SENT = LetterDelivery(outcome="sent", template="t", version="0123456789ab", message_id="<m@example.com>")


def fca_case(**overrides) -> Case:
    return accepted_case(terms=FCA, **overrides)


def letter(case: Case, name: str):
    found = case.state.letter(name)
    assert found is not None, f"no letter {name}: {[x.name for x in case.state.letters]}"
    return found


def kinds(events) -> list[tuple[str, str]]:
    return [(e.kind, e.actor) for e in events]


def sent(name: str, at, template: str = "t") -> LetterDelivery:
    return SENT.model_copy(update={"template": template})


def propose(case: Case, at) -> None:
    case.apply("propose_resolution", action("propose_resolution", resolution="Refunded the fee", root_cause="Fee charged twice"), at)


def confirm(case: Case, at) -> None:
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=True), at)


# --- which letters when ------------------------------------------------------------------------------------


def test_the_acknowledgement_goes_on_receipt_and_the_holding_response_waits_for_day_55():
    case = assigned_case(terms=FCA)
    assert {x.name: x.status for x in case.state.letters} == {"acknowledgement": "sending", "holding_response": "scheduled"}
    assert letter(case, "holding_response").due_at == NOW + timedelta(days=55)
    [request] = case.letters_to_send()
    assert (request.letter, request.template, request.occurrence, request.to) == ("acknowledgement", "acknowledgement", 1, "dana@example.com")
    assert request.message is None and request.resolution_due == NOW + timedelta(weeks=8)
    assert case.next_wake() is not None


def test_a_standard_case_sends_no_letters():
    case = accepted_case()
    assert case.state.letters == [] and case.letters_to_send() == []


def test_a_customer_without_email_gets_the_acknowledgement_drafted_for_the_owner():
    case = assigned_case(terms=FCA, customer=NO_EMAIL)
    drafted = case.timeline[-1]
    assert (drafted.kind, drafted.actor, drafted.data["letter"], drafted.data["owner"]) == ("letter_drafted", "system:letters", "acknowledgement", OWNER)
    assert "no email address" in drafted.data["reason"] and "channel=letter" in drafted.data["reason"]
    assert letter(case, "acknowledgement").status == "drafted" and case.letters_to_send() == []


def test_the_holding_response_goes_in_the_eighth_week_while_the_case_is_open():
    case = fca_case()
    advance_to(case, NOW + timedelta(days=55))
    assert letter(case, "holding_response").status == "sending"
    assert [r.letter for r in case.letters_to_send()] == ["acknowledgement", "holding_response"]


def test_the_holding_response_is_not_needed_once_the_final_response_went():
    case = fca_case()
    case.apply("contact_customer", action("contact_customer", channel="letter", summary="We reject your complaint.", letter="final_response"), later(61))
    advance_to(case, NOW + timedelta(days=56))
    held = letter(case, "holding_response")
    assert (held.status, held.reason) == ("skipped", "not needed: final_response was sent")


def test_a_closed_case_skips_its_scheduled_letters_and_no_longer_wakes_for_them():
    case = fca_case()
    case.apply("withdraw", action("withdraw", actor=CUSTOMER, reason="Sorted it with my bank"), later())
    held = letter(case, "holding_response")
    assert (held.status, held.reason) == ("skipped", "the case closed")
    assert case.next_wake() == case.state.feedback_until


def test_the_update_letter_is_drafted_for_the_owner_when_an_update_is_due():
    case = fca_case()
    case.apply("contact_customer", action("contact_customer", channel="phone", summary="Called"), later())
    advance_to(case, later() + timedelta(days=7, hours=12))  # level 1 at 75% of 10 days
    drafted = [e for e in case.timeline if e.kind == "letter_drafted"]
    assert [e.data["letter"] for e in drafted] == ["progress_update"]
    assert "contact_customer letter=progress_update" in drafted[0].data["reason"]


# --- a sent letter is a contact -----------------------------------------------------------------------------


def test_a_letter_sent_is_recorded_as_the_engine_s_contact_and_restarts_the_update_clock_like_a_person_s():
    by_letter, by_person = fca_case(), fca_case()
    at = later(30)
    events = by_letter.letter_delivered("acknowledgement", 1, sent("acknowledgement", at, "acknowledgement"), at)
    by_person.apply("contact_customer", action("contact_customer", channel="email", summary="Wrote back"), at)
    [contacted] = [e for e in events if e.kind == "customer_contacted"]
    assert contacted.actor == "system:letters" and contacted.channel == "email"
    assert {k: contacted.data[k] for k in ("letter", "template", "version", "message_id", "occurrence")} == {
        "letter": "acknowledgement",
        "template": "acknowledgement",
        "version": "0123456789ab",
        "message_id": "<m@example.com>",
        "occurrence": 1,
    }
    assert letter(by_letter, "acknowledgement").status == "sent"

    def clocks(case: Case):
        return {c.name: (c.started_at, c.due_at, c.occurrence) for c in case.state.clocks}

    assert clocks(by_letter) == clocks(by_person)
    assert clocks(by_letter)["customer_update"][0] == at, "the update clock restarts at the letter"
    assert "first_response" not in clocks(by_letter)
    again = later(90)
    by_letter.state.letters[0].status, by_letter.state.letters[0].occurrence = "sending", 2
    by_letter.letter_delivered("acknowledgement", 2, sent("acknowledgement", again), again)
    assert clocks(by_letter)["customer_update"][0] == again and clocks(by_letter)["customer_update"][2] == 2


def test_an_answer_for_another_occurrence_changes_nothing():
    case = fca_case()
    assert case.letter_delivered("acknowledgement", 2, SENT, later()) == []
    assert case.letter_delivered("holding_response", 1, SENT, later()) == []
    assert letter(case, "acknowledgement").status == "sending"


def test_a_letter_the_mail_server_refused_is_drafted_for_the_owner():
    case = fca_case()
    refused = LetterDelivery(outcome="not_sent", template="acknowledgement", reason="the mail server refused it (550)", code=550)
    [drafted] = case.letter_delivered("acknowledgement", 1, refused, later())
    assert (drafted.kind, drafted.data["letter"]) == ("letter_drafted", "acknowledgement")
    assert drafted.data["reason"].startswith("not sent by email: the mail server refused it (550)")
    assert letter(case, "acknowledgement").status == "drafted"
    assert not any(e.kind == "customer_contacted" for e in case.timeline)


# --- the owner's letters ------------------------------------------------------------------------------------


def test_the_final_response_is_drafted_on_proposal_and_goes_only_with_the_owner_s_contact():
    case = fca_case()
    case.letter_delivered("acknowledgement", 1, SENT, later())
    propose(case, later(60))
    drafted = case.timeline[-1]
    assert (drafted.kind, drafted.data["letter"]) == ("letter_drafted", "final_response")
    assert "the case closes only once a closing letter was sent" in drafted.data["reason"]
    assert case.letters_to_send() == [], "a drafted letter waits for the owner"

    words = "We uphold your complaint: the fee was charged twice, and we have refunded it."
    events = case.apply("contact_customer", action("contact_customer", channel="email", summary=words, letter="final_response"), later(61))
    assert kinds(events) == [("customer_contacted", OWNER)]
    assert {k: events[0].data[k] for k in ("letter", "template", "delivery", "summary")} == {
        "letter": "final_response",
        "template": "fca_final_response",
        "delivery": "email",
        "summary": words,
    }
    [request] = case.letters_to_send()
    assert (request.letter, request.message, request.resolution) == ("final_response", words, "Refunded the fee")
    assert "being sent by email" in rejected(case, "contact_customer", later(62), channel="email", summary="Again", letter="final_response").message

    [sent_event] = case.letter_delivered("final_response", 1, sent("final_response", later(63), "fca_final_response"), later(63))
    assert (sent_event.kind, sent_event.actor, sent_event.data["written_by"]) == ("letter_sent", "system:letters", OWNER)
    assert letter(case, "final_response").message is None, "the owner's words are not kept once sent"


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"letter": "apology"}, "the fca policy has no letter 'apology'; its letters are acknowledgement, final_response,"),
        ({"letter": "final_response", "channel": "phone"}, "a letter goes by email (the engine sends it) or by post"),
        ({"letter": "summary_resolution"}, "the customer has not accepted a resolution"),
    ],
)
def test_the_owner_s_letter_is_refused_when_it_cannot_go(fields, says):
    case = fca_case()
    refusal = rejected(case, "contact_customer", later(), **{"channel": "email", "summary": "Our answer", **fields})
    assert refusal.kind == "InvalidCommand" and says in refusal.message


def test_a_customer_without_email_gets_the_owner_s_letter_by_post_only():
    case = fca_case(customer=NO_EMAIL)
    refusal = rejected(case, "contact_customer", later(), channel="email", summary="Answer", letter="final_response")
    assert "no email address" in refusal.message
    case.apply("contact_customer", action("contact_customer", channel="letter", summary="Answer", letter="final_response"), later())
    assert letter(case, "final_response").status == "sent" and case.letters_to_send() == []


# --- the FCA's closing rule ---------------------------------------------------------------------------------


def test_closing_refusal_names_the_closing_letters_and_what_to_send():
    case = fca_case()
    message = closing_refusal(case.state, FCA, "resolved")
    assert message == (
        "case C-1 cannot close as resolved yet: the fca policy closes a case only once the customer was sent its "
        "summary_resolution or final_response; send it with contact_customer letter=final_response"
    )
    assert closing_refusal(case.state, FCA, "withdrawn") is None, "a withdrawn complaint needs no final response"
    assert closing_refusal(case.state, policy(), "resolved") is None, "only a policy with closing letters asks for one"
    case.apply("contact_customer", action("contact_customer", channel="letter", summary="Final", letter="final_response"), later())
    assert closing_refusal(case.state, FCA, "resolved") is None


def test_the_shipped_fca_policy_refuses_to_close_without_its_final_or_summary_communication():
    fca = load_policies(REPO / "policies" / "policies.toml").resolve("fca", "high")
    case = accepted_case(terms=fca)
    refusal = closing_refusal(case.state, fca, "resolved")
    assert refusal is not None and "summary_resolution or final_response" in refusal


def test_an_fca_case_resolved_within_three_days_waits_for_its_summary_resolution_communication():
    case = fca_case()
    propose(case, later(60))
    confirm(case, later(120))
    assert case.state.status == "follow_through", "confirmed, but not closed: no closing letter went"
    assert case.state.closing_awaits is not None and "letter=summary_resolution" in case.state.closing_awaits
    assert letter(case, "summary_resolution").status == "drafted"
    case.apply("contact_customer", action("contact_customer", channel="email", summary="Glad we sorted it.", letter="summary_resolution"), later(121))
    assert case.state.status == "follow_through", "it closes once the email has gone"
    case.letter_delivered("summary_resolution", 1, sent("summary_resolution", later(122), "fca_summary_resolution"), later(122))
    closed = case.timeline[-1]
    assert (closed.kind, closed.data["outcome"], closed.data["summary_resolution"]) == ("case_closed", "resolved", True)
    assert case.state.closing_awaits is None
    # The final response drafted at the proposal is not needed any more.
    assert (letter(case, "final_response").status, letter(case, "final_response").reason) == ("skipped", "the case closed")


def test_after_three_days_the_summary_resolution_communication_is_refused_and_the_final_response_is_owed():
    case = fca_case()
    propose(case, later(60))
    confirm(case, NOW + 4 * DAY)
    assert letter(case, "final_response").status == "drafted" and case.state.letter("summary_resolution") is None
    assert "letter=final_response" in (case.state.closing_awaits or "")
    refusal = rejected(case, "contact_customer", NOW + 4 * DAY, channel="email", summary="Done", letter="summary_resolution")
    assert "only for a complaint the customer accepted by" in refusal.message
    case.apply("contact_customer", action("contact_customer", channel="letter", summary="Our final response", letter="final_response"), NOW + 4 * DAY)
    assert case.state.status == "closed" and case.state.outcome == "resolved"


def test_a_reopened_case_closes_again_only_after_a_new_closing_letter():
    """The final response sent before the reopening answered the complaint as it was then."""
    case = fca_case()
    propose(case, later(60))
    confirm(case, NOW + 4 * DAY)
    case.apply("contact_customer", action("contact_customer", channel="letter", summary="Our final response", letter="final_response"), NOW + 4 * DAY)
    assert case.state.status == "closed"
    reopened_at = NOW + 5 * DAY
    case.apply("new_contact", action("new_contact", actor=CUSTOMER, channel="chat", summary="Charged again"), reopened_at)
    assert case.state.status == "in_progress" and case.state.reopened_at == reopened_at
    refusal = closing_refusal(case.state, FCA, "resolved")
    assert refusal is not None and "reopened" in refusal and "letter=final_response" in refusal

    propose(case, reopened_at + DAY)
    confirm(case, reopened_at + 2 * DAY)
    assert case.state.status == "follow_through" and "letter=final_response" in (case.state.closing_awaits or "")
    assert letter(case, "final_response").status == "drafted"
    case.apply("contact_customer", action("contact_customer", channel="letter", summary="Our new final response", letter="final_response"), reopened_at + 2 * DAY)
    assert case.state.status == "closed" and letter(case, "final_response").occurrence == 2


def test_a_goodwill_settlement_also_waits_for_the_final_response():
    case = fca_case()
    case.learn_agent(case.agents[OWNER].model_copy(update={"authority_limit": 100}))
    case.apply(
        "offer_goodwill",
        action("offer_goodwill", kind="refund", amount="20", currency="GBP", description="Fee refund", settles_case=True, root_cause="Fee error"),
        later(),
    )
    assert case.state.status == "follow_through" and "final_response" in (case.state.closing_awaits or "")
    assert letter(case, "final_response").status == "drafted", "the close drafts the closing letter the owner can send"
    assert letter_refusal(case.state, FCA, "summary_resolution") is not None
