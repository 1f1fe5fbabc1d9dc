"""Contact with the customer: each fact is kept with who gave it and when, so nothing is asked twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.actions import AddNote, ContactCustomer, NewContact, ProvideInfo, RequestInfo
from schemas.common import Channel
from schemas.state import Fact
from workflows import rules
from workflows.case.common import iso
from workflows.rules import Actor


class ContactRules:
    """Contacting the customer, notes, asking for and receiving facts, new contacts; a part of Case (aggregate.py)."""

    # contact_customer

    def _check_contact(self, a: ContactCustomer, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "contact_customer")
        if a.letter is not None:
            self._check_letter(a.letter, a.channel)

    def _apply_contact(self, a: ContactCustomer, actor: Actor, now: datetime) -> None:
        letter = self._owner_sends_letter(a.letter, a.channel, actor.name, a.summary, now) if a.letter else {}
        self._customer_contacted(actor.name, now, a.channel, person=True, summary=a.summary, **letter)
        if letter:
            self._close_if_followed_through(now)  # a closing letter may be what the case waited for

    def _customer_contacted(self, actor: str, now: datetime, channel: Channel, *, person: bool, **data: Any) -> None:
        """A contact with the customer, a person's or a letter's (letters.py): the first response is given and the
        customer_update clock restarts; after a proposal, a person's contact is a reminder to answer it instead."""
        proposed = self.state.status == "resolution_proposed"
        reminder = person and proposed
        if reminder:
            self.state.reminders_since_proposal += 1
        self._record("customer_contacted", actor, now, channel=channel, **data, reminder=reminder or None)
        if self.closed:
            return  # a letter whose sending outlived the case: recorded, no clock to move
        self._stop_clock("first_response", now, "customer contacted")
        if reminder:
            self._lapse_confirmation_if_due(now)
        elif not proposed:
            self._restart_clock("customer_update", now, "customer contacted")

    # add_note

    def _check_note(self, a: AddNote, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        if actor.kind == "agent":
            rules.require_roster_member(actor, self._roster_record(actor.id), "add_note")
        else:
            rules.require_roster_member(actor, None, "add_note")

    def _apply_note(self, a: AddNote, actor: Actor, now: datetime) -> None:
        self._record("note_added", actor.name, now, text=a.text)

    # request_info / provide_info

    def _check_request_info(self, a: RequestInfo, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "request_info")
        rules.require_status(self.state, {"in_progress", "waiting_on_customer"}, "request_info")
        rules.never_ask_twice(self.state, a.fields)

    def _apply_request_info(self, a: RequestInfo, actor: Actor, now: datetime) -> None:
        self.state.awaiting_info.extend(a.fields)
        self._record("info_requested", actor.name, now, fields=a.fields, question=a.question)
        self._enter_status("waiting_on_customer", now)

    def _check_provide_info(self, a: ProvideInfo, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        rules.require_customer_or_owner(self.state, actor, "provide_info")
        self._require_room(a, "provide_info")

    def _merge_facts(
        self, facts: dict[str, Any], channel: Channel, source: str, now: datetime
    ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        """Record facts with their source: (new or changed values, previous values of changed ones, unchanged names)."""
        recorded: dict[str, Any] = {}
        corrected: dict[str, Any] = {}
        unchanged: list[str] = []
        for name, value in facts.items():
            known = self.state.facts.get(name)
            if known is not None and known.value == value:
                unchanged.append(name)
                continue
            if known is not None:
                corrected[name] = known.value
            self.state.facts[name] = Fact(value=value, channel=channel, source=source, at=now)
            recorded[name] = value
        self.state.awaiting_info = [f for f in self.state.awaiting_info if f not in self.state.facts]
        return recorded, corrected, unchanged

    def _apply_provide_info(self, a: ProvideInfo, actor: Actor, now: datetime) -> None:
        recorded, corrected, unchanged = self._merge_facts(a.facts, a.channel, actor.name, now)
        resumed = self.state.status == "waiting_on_customer" and not self.state.awaiting_info
        self._record(
            "info_provided",
            actor.name,
            now,
            channel=a.channel,
            facts=recorded,
            corrected_from=corrected or None,
            unchanged=unchanged or None,
            still_awaiting=list(self.state.awaiting_info) or None,
            resumed=resumed,
        )
        if resumed:
            self._enter_status("in_progress", now)

    # new_contact

    def _check_new_contact(self, a: NewContact, actor: Actor, now: datetime) -> None:
        if actor.kind == "customer":
            rules.require_this_customer(self.state, actor)
        elif actor.kind == "agent":
            rules.require_roster_member(actor, self._roster_record(actor.id), "record a contact")
        rules.may_change_facts(self.state, actor, a.facts)
        if self.closed:
            rules.require_reopenable(self.state, now)
        if a.facts:
            self._require_room(a, "new_contact")

    def _apply_new_contact(self, a: NewContact, actor: Actor, now: datetime) -> None:
        if self.closed:
            self._reopen(actor.name, now)
        recorded, corrected, unchanged = self._merge_facts(a.facts, a.channel, actor.name, now)
        self.state.contacts_received += 1
        resumed = self.state.status == "waiting_on_customer" and not self.state.awaiting_info
        self._record(
            "contact_received",
            actor.name,
            now,
            channel=a.channel,
            summary=a.summary,
            contact_id=a.contact_id,
            facts=recorded or None,
            corrected_from=corrected or None,
            unchanged=unchanged or None,
            resumed=resumed or None,
        )
        if resumed:
            self._enter_status("in_progress", now)

    def _reopen(self, actor: str, now: datetime) -> None:
        """A contact within the feedback window reopens the case with the same owner and fresh clocks."""
        previous_outcome, closed_at = self.state.outcome, self.state.closed_at
        self.state.status = "in_progress"
        self.state.outcome = None
        self.state.closed_at = None
        self.state.feedback_until = None
        self.state.resolution = None
        self.state.confirmation_lapsed = False
        self.state.reminders_since_proposal = 0
        self.state.reopened += 1
        self.state.reopened_at = now
        self._record(
            "case_reopened",
            actor,
            now,
            previous_outcome=previous_outcome,
            closed_at=iso(closed_at),
            owner=self.state.owner,
            reason="the customer got in touch again about the same problem within the feedback window",
        )
        for kind in ("first_response", "customer_update", "resolution"):
            self._start_clock(kind, now, now)  # type: ignore[arg-type]
