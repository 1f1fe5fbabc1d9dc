"""The case aggregate: state, timeline and request memory, changed only by actions.

Pure and deterministic: time comes in as `now`, nothing is read from outside.
`check` decides without changing anything (used by update validators);
`apply` checks, then changes state and appends timeline events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from schemas.actions import (
    AcceptOwnership,
    Action,
    AddNote,
    ConfirmResolution,
    ContactCustomer,
    KeepPromise,
    MakePromise,
    ProposeResolution,
    ProvideInfo,
    RenegotiatePromise,
    RequestInfo,
)
from schemas.common import Channel
from schemas.intake import ComplaintIntake
from schemas.roster import AgentRef, Assignment
from schemas.state import CarriedCase, CaseOutcome, CaseState, Clock, Fact, Promise, Resolution, TimelineEvent
from workflows import rules
from workflows.rules import Actor, invalid, parse_actor

DEFAULT_POLICY = "standard"
ROUTING_ACTOR = "system:routing"
ENGINE_ACTOR = "system:engine"


class Case:
    def __init__(self, state: CaseState, timeline: list[TimelineEvent] | None = None) -> None:
        self.state = state
        self.timeline: list[TimelineEvent] = list(timeline or [])
        self.applied_requests: set[str] = set()
        # What the roster said of agents who acted on this case (owner, supervisor, note writers).
        self.agents: dict[str, AgentRef] = {}
        self.escalations = 0

    # --- opening -----------------------------------------------------------

    @classmethod
    def receive(cls, intake: ComplaintIntake, now: datetime) -> "Case":
        received_at = intake.received_at or now
        customer_actor = f"customer:{intake.customer.customer_id}"
        state = CaseState(
            complaint_id=intake.complaint_id,
            status="assigned",
            customer=intake.customer,
            channel=intake.channel,
            category=intake.category,
            severity=intake.severity,
            policy=intake.policy or DEFAULT_POLICY,
            summary=intake.summary,
            details=intake.details,
            received_at=received_at,
            received_by=intake.received_by,
            facts={
                name: Fact(value=value, channel=intake.channel, source=customer_actor, at=received_at)
                for name, value in intake.facts.items()
            },
        )
        case = cls(state)
        case._record(
            "complaint_received",
            customer_actor,
            now,
            channel=intake.channel,
            summary=intake.summary,
            category=intake.category,
            severity=intake.severity,
            received_at=received_at.isoformat(),
            received_by=intake.received_by,
            facts=sorted(intake.facts),
        )
        return case

    def assign(self, assignment: Assignment, now: datetime) -> None:
        owner = assignment.owner
        for agent in (assignment.owner, assignment.supervisor, assignment.manager):
            if agent is not None:
                self.agents[agent.agent_id] = agent
        self.state.owner = owner.agent_id
        self.state.supervisor = assignment.supervisor.agent_id if assignment.supervisor else None
        self._record(
            "owner_assigned",
            ROUTING_ACTOR,
            now,
            owner=owner.agent_id,
            owner_name=owner.name,
            team=owner.team,
            supervisor=self.state.supervisor,
            routed_by=assignment.routed_by,
            reason=assignment.reason,
        )

    # --- continuing as new -------------------------------------------------

    def carry(self, persisted_seq: int, runs: int) -> CarriedCase:
        return CarriedCase(
            state=self.state,
            timeline=self.timeline,
            applied_requests=sorted(self.applied_requests),
            agents=list(self.agents.values()),
            escalations=self.escalations,
            persisted_seq=persisted_seq,
            runs=runs,
        )

    @classmethod
    def resume(cls, carried: CarriedCase) -> "Case":
        case = cls(carried.state, carried.timeline)
        case.applied_requests = set(carried.applied_requests)
        case.agents = {agent.agent_id: agent for agent in carried.agents}
        case.escalations = carried.escalations
        return case

    @property
    def assigned(self) -> bool:
        return self.state.owner is not None

    @property
    def closed(self) -> bool:
        return self.state.status == "closed"

    # --- actions -----------------------------------------------------------

    def already_applied(self, action: Action) -> bool:
        return action.request_id is not None and action.request_id in self.applied_requests

    def agent_to_look_up(self, name: str, action: Action) -> str | None:
        """The roster member whose record the who-may rule of `name` needs and the case lacks."""
        actor = parse_actor(action.actor)
        if name == "add_note" and actor.kind == "agent" and actor.id not in self.agents:
            return actor.id
        return None

    def learn_agent(self, agent: AgentRef) -> None:
        self.agents[agent.agent_id] = agent

    def check(self, name: str, action: Action, now: datetime, *, roster_unknown_ok: bool = False) -> None:
        """Raise Rejection if the action may not be applied now. Changes nothing.

        With roster_unknown_ok, an agent the case has not looked up yet passes the
        roster-member rule (an update validator cannot look them up; the handler does).
        """
        if self.already_applied(action):
            return
        checker, _ = self._handlers[name]
        actor = parse_actor(action.actor)
        if roster_unknown_ok and actor.kind == "agent" and self.agent_to_look_up(name, action):
            rules.require_open(self.state)
            return
        checker(self, action, actor, now)

    def apply(self, name: str, action: Action, now: datetime) -> list[TimelineEvent]:
        """Check and apply an action; return the timeline events it added."""
        if self.already_applied(action):
            return []
        checker, applier = self._handlers[name]
        actor = parse_actor(action.actor)
        checker(self, action, actor, now)
        first = len(self.timeline)
        applier(self, action, actor, now)
        if action.request_id is not None:
            self.applied_requests.add(action.request_id)
        self._refresh_derived()
        return self.timeline[first:]

    def reject(self, name: str, actor: str, reason: str, now: datetime, request_id: str | None = None) -> TimelineEvent:
        """Record a signal that could not be applied: the only trace a rejected signal leaves."""
        return self._record("command_rejected", actor, now, action=name, reason=reason, request_id=request_id)

    # accept_ownership

    def _check_accept(self, a: AcceptOwnership, actor: Actor, now: datetime) -> None:
        rules.may_accept_ownership(self.state, actor)

    def _apply_accept(self, a: AcceptOwnership, actor: Actor, now: datetime) -> None:
        self.state.owner_accepted = True
        if self.state.status == "assigned":
            self.state.status = "in_progress"
        self._record("ownership_accepted", actor.name, now, owner=self.state.owner)

    # contact_customer

    def _check_contact(self, a: ContactCustomer, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "contact_customer")

    def _apply_contact(self, a: ContactCustomer, actor: Actor, now: datetime) -> None:
        self._record("customer_contacted", actor.name, now, channel=a.channel, summary=a.summary)

    # add_note

    def _check_note(self, a: AddNote, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        rules.require_roster_member(actor, self.agents.get(actor.id), "add_note")

    def _apply_note(self, a: AddNote, actor: Actor, now: datetime) -> None:
        self._record("note_added", actor.name, now, text=a.text)

    # request_info / provide_info

    def _check_request_info(self, a: RequestInfo, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "request_info")
        rules.require_status(self.state, {"in_progress", "waiting_on_customer"}, "request_info")
        rules.never_ask_twice(self.state, a.fields)

    def _apply_request_info(self, a: RequestInfo, actor: Actor, now: datetime) -> None:
        self.state.awaiting_info.extend(a.fields)
        self.state.status = "waiting_on_customer"
        self._record("info_requested", actor.name, now, fields=a.fields, question=a.question)

    def _check_provide_info(self, a: ProvideInfo, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        rules.require_customer_or_owner(self.state, actor, "provide_info")

    def _apply_provide_info(self, a: ProvideInfo, actor: Actor, now: datetime) -> None:
        recorded: dict[str, Any] = {}
        corrected: dict[str, Any] = {}
        unchanged: list[str] = []
        for name, value in a.facts.items():
            known = self.state.facts.get(name)
            if known is not None and known.value == value:
                unchanged.append(name)
                continue
            if known is not None:
                corrected[name] = known.value
            self.state.facts[name] = Fact(value=value, channel=a.channel, source=actor.name, at=now)
            recorded[name] = value
        self.state.awaiting_info = [f for f in self.state.awaiting_info if f not in self.state.facts]
        resumed = self.state.status == "waiting_on_customer" and not self.state.awaiting_info
        if resumed:
            self.state.status = "in_progress"
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

    # promises

    def _check_make_promise(self, a: MakePromise, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "make_promise")
        rules.require_future(a.due_at, now, "due_at")

    def _apply_make_promise(self, a: MakePromise, actor: Actor, now: datetime) -> None:
        promise = Promise(
            promise_id=f"P{len(self.state.promises) + 1}",
            description=a.description,
            owed_by=a.owed_by or actor.id,
            due_at=a.due_at,
            made_at=now,
        )
        self.state.promises.append(promise)
        self._record(
            "promise_made",
            actor.name,
            now,
            promise_id=promise.promise_id,
            description=promise.description,
            owed_by=promise.owed_by,
            due_at=promise.due_at.isoformat(),
        )

    def _check_keep_promise(self, a: KeepPromise, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "keep_promise")
        rules.find_open_promise(self.state, a.promise_id)

    def _apply_keep_promise(self, a: KeepPromise, actor: Actor, now: datetime) -> None:
        promise = rules.find_open_promise(self.state, a.promise_id)
        promise.status = "kept"
        promise.kept_at = now
        promise.evidence = a.evidence
        self._record(
            "promise_kept",
            actor.name,
            now,
            promise_id=promise.promise_id,
            evidence=a.evidence,
            on_time=now <= promise.due_at,
        )
        self._close_if_followed_through(now)

    def _check_renegotiate(self, a: RenegotiatePromise, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "renegotiate_promise")
        promise = rules.find_open_promise(self.state, a.promise_id)
        rules.require_future(a.new_due_at, now, "new_due_at")
        if a.new_due_at == promise.due_at:
            raise invalid(f"new_due_at is the promise's current deadline ({promise.due_at.isoformat()})")

    def _apply_renegotiate(self, a: RenegotiatePromise, actor: Actor, now: datetime) -> None:
        promise = rules.find_open_promise(self.state, a.promise_id)
        previous = promise.due_at
        promise.due_at = a.new_due_at
        promise.status = "renegotiated"
        promise.renegotiations += 1
        self._record(
            "promise_renegotiated",
            actor.name,
            now,
            promise_id=promise.promise_id,
            previous_due_at=previous.isoformat(),
            new_due_at=a.new_due_at.isoformat(),
            reason=a.reason,
            customer_agreed=True,
            renegotiations=promise.renegotiations,
        )

    # resolution

    def _check_propose(self, a: ProposeResolution, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "propose_resolution")
        if self.state.status == "waiting_on_customer":
            raise invalid(
                "the case is waiting on the customer for "
                f"{', '.join(self.state.awaiting_info)}; record their answer with provide_info first"
            )
        rules.require_status(self.state, {"in_progress"}, "propose_resolution")

    def _apply_propose(self, a: ProposeResolution, actor: Actor, now: datetime) -> None:
        self.state.resolution = Resolution(
            text=a.resolution, root_cause=a.root_cause, proposed_by=actor.name, proposed_at=now
        )
        self.state.root_cause = a.root_cause
        self.state.status = "resolution_proposed"
        self._record("resolution_proposed", actor.name, now, resolution=a.resolution, root_cause=a.root_cause)

    def _check_confirm(self, a: ConfirmResolution, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        rules.require_customer_or_owner(self.state, actor, "confirm_resolution")
        if actor.kind == "agent" and a.channel is None:
            raise invalid(
                "the owner confirms on the customer's behalf only with the channel the customer "
                "answered through (channel: email, phone, chat, ...)"
            )
        rules.require_status(self.state, {"resolution_proposed"}, "confirm_resolution")

    def _apply_confirm(self, a: ConfirmResolution, actor: Actor, now: datetime) -> None:
        resolution = self.state.resolution
        assert resolution is not None  # guaranteed by status resolution_proposed
        resolution.confirmed = a.satisfied
        resolution.comment = a.comment
        channel = a.channel
        if not a.satisfied:
            self.state.status = "in_progress"
            self._record("resolution_rejected", actor.name, now, channel=channel, comment=a.comment)
            return
        self.state.status = "follow_through"
        self._record(
            "resolution_confirmed",
            actor.name,
            now,
            channel=channel,
            comment=a.comment,
            open_promises=[p.promise_id for p in self.state.open_promises] or None,
        )
        self._close_if_followed_through(now)

    # --- closing -----------------------------------------------------------

    def _close_if_followed_through(self, now: datetime) -> None:
        if self.state.status != "follow_through":
            return
        outcome = rules.closing_outcome(self.state)
        if outcome is None:
            return
        self.state.status = "closed"
        self.state.outcome = outcome
        self.state.closed_at = now
        self._record(
            "case_closed",
            ENGINE_ACTOR,
            now,
            outcome=outcome,
            root_cause=self.state.root_cause,
            promises_kept=self._promises_kept(),
            promises_total=len(self.state.promises),
        )

    def outcome(self) -> CaseOutcome:
        if self.state.outcome is None or self.state.closed_at is None:
            raise RuntimeError("the case is not closed")
        return CaseOutcome(
            complaint_id=self.state.complaint_id,
            outcome=self.state.outcome,
            closed_at=self.state.closed_at,
            owner=self.state.owner,
            promises_kept=self._promises_kept(),
            promises_total=len(self.state.promises),
            escalations=self.escalations,
            root_cause=self.state.root_cause,
        )

    def _promises_kept(self) -> int:
        return sum(1 for p in self.state.promises if p.status == "kept")

    # --- helpers -----------------------------------------------------------

    def _owner_working(self, actor: Actor, action: str) -> None:
        rules.require_open(self.state)
        rules.require_owner(self.state, actor, action)
        rules.require_accepted(self.state, action)

    def _record(self, kind: str, actor: str, now: datetime, channel: Channel | None = None, **data: Any) -> TimelineEvent:
        event = TimelineEvent(
            seq=len(self.timeline) + 1,
            at=now,
            kind=kind,  # type: ignore[arg-type]
            actor=actor,
            channel=channel,
            data={key: value for key, value in data.items() if value is not None},
        )
        self.timeline.append(event)
        self.state.event_count = len(self.timeline)
        return event

    def _refresh_derived(self) -> None:
        """Recompute what follows from the rest of the state (clocks, next deadline)."""
        self.state.clocks = [
            Clock(name=f"promise:{p.promise_id}", due_at=p.due_at)
            for p in self.state.promises
            if p.is_open
        ]
        self.state.next_deadline = rules.next_deadline(self.state)

    _handlers: dict[str, tuple[Callable[..., None], Callable[..., None]]] = {
        "accept_ownership": (_check_accept, _apply_accept),
        "contact_customer": (_check_contact, _apply_contact),
        "add_note": (_check_note, _apply_note),
        "request_info": (_check_request_info, _apply_request_info),
        "provide_info": (_check_provide_info, _apply_provide_info),
        "make_promise": (_check_make_promise, _apply_make_promise),
        "keep_promise": (_check_keep_promise, _apply_keep_promise),
        "renegotiate_promise": (_check_renegotiate, _apply_renegotiate),
        "propose_resolution": (_check_propose, _apply_propose),
        "confirm_resolution": (_check_confirm, _apply_confirm),
    }
