"""Letters to the customer: which the policy sends, when, and who sends them (docs/lifecycle.md, "Letters").

The engine sends some itself, on receipt or a while after it while the case is open, by email through the
send_letter activity (workflows/letters.py). The owner sends the others with contact_customer letter=<name>,
in their own words, once the policy has drafted them. A letter the engine sends is a contact like a person's:
its customer_contacted event, by system:letters, restarts the customer_update clock on the same path
(contact.py). A customer without an email address, or a letter no mail server took, is drafted for the owner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.letters import LetterDelivery, SendLetter
from schemas.policy import LetterTerms, LetterTrigger, ResolvedPolicy
from schemas.state import CaseState, Letter, TimelineEvent
from workflows import business_time
from workflows.case.common import LETTERS_ACTOR
from workflows.rules import invalid

# Channels a letter goes by: email (the engine sends it) or letter (the owner posted it).
LETTER_CHANNELS = ("email", "letter")


def letter_refusal(state: CaseState, policy: ResolvedPolicy | None, name: str, channel: str | None = None) -> str | None:
    """Why the owner may not send letter `name` now through `channel` (None: they may; channel None: by any)."""
    terms = policy.letters.get(name) if policy is not None else None
    if policy is None or terms is None:
        known = ", ".join(sorted(policy.letters)) if policy is not None and policy.letters else "none"
        return f"the {state.policy} policy has no letter {name!r}; its letters are {known}"
    if channel is not None and channel not in LETTER_CHANNELS:
        return f"a letter goes by email (the engine sends it) or by post (channel letter: you posted it), not by {channel}"
    if channel == "email" and state.customer.email is None:
        return "the customer has no email address: post the letter and record it with channel letter"
    letter = state.letter(name)
    if letter is not None and letter.status == "sending":
        return f"letter {name} is being sent by email (occurrence {letter.occurrence}); wait until it is sent"
    if terms.within is not None:
        by = business_time.deadline(state.received_at, terms.within, policy.calendar)
        resolution = state.resolution
        accepted_at = resolution.confirmed_at if resolution is not None and resolution.confirmed else None
        if accepted_at is None or accepted_at > by:
            when = f"accepted it at {accepted_at.isoformat()}" if accepted_at else "has not accepted a resolution"
            return (
                f"letter {name} is only for a complaint the customer accepted by {by.isoformat()} ({terms.within} "
                f"after receipt); the customer {when}"
            )
    return None


class LetterRules:
    """Scheduling, drafting and sending the policy's letters; a part of Case (aggregate.py)."""

    # --- the policy's letters over the case's life ----------------------------

    def _start_letters(self, now: datetime) -> None:
        """At the opening: the letters sent on receipt go now, those sent after a while are scheduled."""
        assert self.policy is not None
        for name, terms in self.policy.letters.items():
            if terms.on_receipt:
                self._send_or_draft(name, terms, now)
            elif (after := terms.after) is not None:
                due = business_time.deadline(self.state.received_at, after, self.policy.calendar)
                self._letter(name, terms, now, status="scheduled", due_at=due)

    def _letters_due(self, now: datetime) -> None:
        """Send (or draft) each scheduled letter whose time has come, unless a letter that makes it unneeded went."""
        assert self.policy is not None
        for letter in [x for x in self.state.letters if x.status == "scheduled" and x.due_at and x.due_at <= now]:
            terms = self.policy.letters[letter.name]
            went = [name for name in terms.unless_sent if (other := self.state.letter(name)) and other.status in ("sent", "sending")]
            if went:
                letter.status, letter.reason, letter.updated_at = "skipped", f"not needed: {went[0]} was sent", now
            else:
                self._send_or_draft(letter.name, terms, now)

    def _scheduled_letters_wake(self) -> datetime | None:
        due = [letter.due_at for letter in self.state.letters if letter.status == "scheduled" and letter.due_at]
        return min(due) if due else None

    def _skip_waiting_letters(self, now: datetime, reason: str) -> None:
        """Letters still scheduled or drafted are not needed any more (the owner may still send one by hand)."""
        for letter in self.state.letters:
            if letter.status in ("scheduled", "drafted"):
                letter.status, letter.reason, letter.updated_at = "skipped", reason, now

    def _letters_on(self, trigger: LetterTrigger, now: datetime) -> None:
        """Draft for the owner the letters the policy drafts on this event (and may be sent now)."""
        if self.policy is None:
            return
        for name, terms in self.policy.letters.items():
            if terms.drafted_on == trigger and letter_refusal(self.state, self.policy, name) is None:
                self._draft_for_owner(name, terms, now)

    def _draft_closing_letters(self, now: datetime, why: str) -> None:
        """The case waits for a closing letter: each the owner can send now is drafted for them, saying why."""
        assert self.policy is not None
        for name in self.policy.closing_letters:
            letter = self.state.letter(name)
            if letter_refusal(self.state, self.policy, name) is None and (letter is None or letter.status != "drafted"):
                self._draft(name, self.policy.letters[name], now, why)

    # --- contact_customer letter=<name> ---------------------------------------

    def _check_letter(self, name: str, channel: str) -> None:
        refusal = letter_refusal(self.state, self.policy, name, channel)
        if refusal is not None:
            raise invalid(refusal)

    def _owner_sends_letter(self, name: str, channel: str, by: str, words: str, now: datetime) -> dict[str, Any]:
        """The owner's letter: by email the engine sends it now (letter_sent follows), by post it is sent.
        Returns what the customer_contacted event says of it."""
        assert self.policy is not None
        terms = self.policy.letters[name]
        letter = self._letter(name, terms, now, by=by, channel=channel, reason=None)
        letter.occurrence += 1
        if channel == "email":
            letter.status, letter.message = "sending", words
        else:
            letter.status, letter.sent_at, letter.version = "sent", now, None
        return {"letter": name, "template": terms.template, "occurrence": letter.occurrence, "delivery": channel}

    # --- what the send_letter activity answered --------------------------------

    def letters_to_send(self) -> list[SendLetter]:
        """The letters being sent by email, as the send_letter activity takes them."""
        state = self.state
        if state.customer.email is None or self.policy is None:
            return []
        owner = self.agents.get(state.owner) if state.owner else None
        owner_name = owner.name if owner is not None else None
        return [
            letter_input(state, self.policy, letter, owner_name, to=state.customer.email)
            for letter in state.letters
            if letter.status == "sending"
        ]

    def letter_delivered(self, name: str, occurrence: int, delivery: LetterDelivery, now: datetime) -> list[TimelineEvent]:
        """Record what became of a letter sent by email; an answer for an older occurrence changes nothing."""
        letter = self.state.letter(name)
        if letter is None or letter.status != "sending" or letter.occurrence != occurrence or self.policy is None:
            return []
        first = len(self.timeline)
        letter.message = None
        if delivery.outcome == "sent":
            letter.status, letter.sent_at, letter.updated_at = "sent", now, now
            letter.version, letter.message_id = delivery.version, delivery.message_id
            sent = {"letter": name, "template": delivery.template, "version": delivery.version,
                    "message_id": delivery.message_id, "occurrence": occurrence}  # fmt: skip
            if letter.by == LETTERS_ACTOR:
                self._customer_contacted(LETTERS_ACTOR, now, "email", person=False, summary=f"letter {name} sent by email", **sent)
            else:
                self._record("letter_sent", LETTERS_ACTOR, now, channel="email", written_by=letter.by, **sent)
            if not self.closed:
                self._close_if_followed_through(now)
        else:
            terms = self.policy.letters.get(name) or LetterTerms(template=letter.template, send="by the owner")
            self._draft(name, terms, now, f"not sent by email: {delivery.reason}; send it again, or post it (channel letter)")
        self._refresh_derived()
        return self.timeline[first:]

    # --- helpers ----------------------------------------------------------------

    def _send_or_draft(self, name: str, terms: LetterTerms, now: datetime) -> None:
        if self.state.customer.email is None:
            self._draft(name, terms, now, "the customer has no email address: post it, and record it with "
                        f"contact_customer letter={name} channel=letter")  # fmt: skip
            return
        letter = self._letter(name, terms, now, status="sending", by=LETTERS_ACTOR, channel="email", reason=None)
        letter.occurrence += 1

    def _draft_for_owner(self, name: str, terms: LetterTerms, now: datetime) -> None:
        letter = self.state.letter(name)
        if letter is not None and letter.status == "drafted":
            return
        why = f"write it in your own words and send it with contact_customer letter={name}"
        if self.policy is not None and name in self.policy.closing_letters:
            why += "; the case closes only once a closing letter was sent"
        self._draft(name, terms, now, why)

    def _draft(self, name: str, terms: LetterTerms, now: datetime, reason: str) -> None:
        self._letter(name, terms, now, status="drafted", by=self.state.owner, reason=reason)
        self._record("letter_drafted", LETTERS_ACTOR, now, letter=name, template=terms.template, owner=self.state.owner, reason=reason)

    def _letter(self, name: str, terms: LetterTerms, now: datetime, **changes: Any) -> Letter:
        """The case's entry for letter `name`, made if new, with `changes` applied."""
        letter = self.state.letter(name)
        if letter is None:
            letter = Letter(name=name, template=terms.template, status="drafted", updated_at=now)
            self.state.letters.append(letter)
        letter.template = terms.template
        for key, value in {**changes, "updated_at": now}.items():
            setattr(letter, key, value)
        return letter


def letter_input(state: CaseState, policy: ResolvedPolicy, letter: Letter, owner_name: str | None, to: str) -> SendLetter:
    """A letter of the case as it reads now: what the send_letter activity emails, and what `letters render`
    prints for posting (cli/letters.py)."""
    clocks = {clock.name: clock for clock in state.clocks}
    promised = [p.due_at for p in state.open_promises]
    return SendLetter(
        complaint_id=state.complaint_id,
        letter=letter.name,
        template=letter.template,
        occurrence=letter.occurrence,
        to=to,
        customer_name=state.customer.name,
        summary=state.summary,
        received_at=state.received_at,
        time_zone=policy.calendar.time_zone,
        owner_name=owner_name,
        message=letter.message,
        resolution=state.resolution.text if state.resolution is not None else None,
        resolution_due=clocks["resolution"].due_at if "resolution" in clocks else None,
        next_update_by=clocks["customer_update"].due_at if "customer_update" in clocks else None,
        promised_by=max(promised) if promised else None,
    )
