"""The case aggregate: state, timeline and request memory, changed only by actions.

Pure and deterministic: time comes in as `now`, nothing is read from outside.
`check` decides without changing anything (used by update validators);
`apply` checks, then changes state and appends timeline events.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from schemas.actions import (
    AcceptOwnership,
    Action,
    AddNote,
    ApproveGoodwill,
    ConfirmResolution,
    ContactCustomer,
    KeepPromise,
    MakePromise,
    NewContact,
    OfferGoodwill,
    ProposeResolution,
    ProvideInfo,
    RecordFeedback,
    RenegotiatePromise,
    RequestInfo,
    TransferOwnership,
    Withdraw,
)
from schemas.common import Channel, Outcome, Status
from schemas.intake import ComplaintIntake
from schemas.policy import ClockSpec, ResolvedPolicy
from schemas.roster import AgentRef, AgentWorkload, Assignment
from schemas.state import (
    CarriedCase,
    CaseOutcome,
    CaseState,
    Clock,
    ClockKind,
    Fact,
    Feedback,
    Goodwill,
    Handoff,
    Promise,
    RecipientRole,
    Resolution,
    TimelineEvent,
)
from workflows import business_time, clocks, rules
from workflows.rules import Actor, invalid, parse_actor

ROUTING_ACTOR = "system:routing"
ENGINE_ACTOR = "system:engine"
ESCALATION_ACTOR = "system:escalation"
CLOCK_LABELS: dict[str, str] = {
    "acknowledge": "acknowledging the complaint",
    "first_response": "the first response to the customer",
    "customer_update": "updating the customer",
    "resolution": "resolving the complaint",
    "confirmation": "the customer's confirmation window",
    "acceptance": "the new owner's acceptance of the transfer (the current owner stays accountable meanwhile)",
    "goodwill_approval": "the decision on a goodwill gesture above the owner's authority",
}
# A customer who rates the handling this low (of 5) is reviewed by the supervisor.
FEEDBACK_REVIEW_AT_OR_BELOW = 2
# Continuing as new carries the events not yet in PostgreSQL plus the most recent ones, at most
# this many and about this many bytes of JSON: case_events is the complete timeline, and the
# continue-as-new payload stays far below Temporal's 2 MB limit however long the case runs.
CARRIED_TAIL_EVENTS = 200
CARRIED_TAIL_BYTES = 256 * 1024
# request_id memory: the most recent ids applied (oldest forgotten first). A resent request
# older than this many later requests with ids is applied again (README, "Long-lived cases").
REQUEST_ID_MEMORY = 2_000


class _RosterNeeded(Exception):
    """A check needs the roster's current record, which an update validator cannot read."""


class Case:
    def __init__(self, state: CaseState, timeline: list[TimelineEvent] | None = None, timeline_offset: int = 0) -> None:
        self.state = state
        # The events this run holds, in seq order: all of them, unless the case continued as new,
        # when the first `timeline_offset` events are in PostgreSQL (case_events) only.
        self.timeline: list[TimelineEvent] = list(timeline or [])
        self.timeline_offset = timeline_offset
        # The request ids applied, oldest first (a dict keeps insertion order), at most REQUEST_ID_MEMORY.
        self.applied_requests: dict[str, None] = {}
        # What the roster said of agents who acted on this case (owner, supervisor, note writers).
        self.agents: dict[str, AgentRef] = {}
        self.escalations = 0
        # The policy copied into the case when it opened; None until then.
        self.policy: ResolvedPolicy | None = None
        # The last state of each clock that stopped: a restart continues its occurrence count.
        self.stopped_clocks: dict[str, Clock] = {}
        # Transfer targets' open-case counts, read for the action being applied (never carried).
        self.workloads: dict[str, AgentWorkload] = {}
        self._lenient = False
        # Whether a full case refuses what would grow it (rules.STATE_BUDGET_BYTES) when an action is applied.
        # The workflow asks workflow.patched here, only when the budget bites, so that a history recorded
        # before the budget replays as it ran; a validator (lenient) always refuses, it leaves no history.
        self.budget_in_force: Callable[[], bool] = lambda: True

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
            policy=intake.policy or "default",
            summary=intake.summary,
            details=intake.details,
            received_at=received_at,
            received_by=intake.received_by,
            facts={
                name: Fact(value=value, channel=intake.channel, source=customer_actor, at=received_at)
                for name, value in intake.facts.items()
            },
            related_case=intake.related_case,
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
            related_case=intake.related_case,
        )
        return case

    def assign(self, assignment: Assignment, now: datetime) -> None:
        owner = assignment.owner
        for agent in (assignment.owner, assignment.supervisor, assignment.manager):
            if agent is not None:
                self.agents[agent.agent_id] = agent
        self.state.owner = owner.agent_id
        self.state.supervisor = assignment.supervisor.agent_id if assignment.supervisor else None
        self.state.manager = assignment.manager.agent_id if assignment.manager else None
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

    def adopt_policy(self, policy: ResolvedPolicy, now: datetime) -> None:
        """Copy the policy into the case and start its clocks from receipt."""
        self.policy = policy
        self.state.policy = policy.name
        received = self.state.received_at
        if policy.summary_resolution_by is not None:
            self.state.summary_resolution_by = business_time.deadline(
                received, policy.summary_resolution_by, policy.calendar
            )
        for kind in ("acknowledge", "first_response", "resolution"):
            self._start_clock(kind, received, now)  # type: ignore[arg-type]
        self._record(
            "policy_applied",
            ENGINE_ACTOR,
            now,
            policy=policy.name,
            severity=policy.severity,
            calendar=policy.calendar.name,
            time_zone=policy.calendar.time_zone,
            deadlines={clock.name: clock.due_at.isoformat() for clock in self.state.clocks},
            summary_resolution_by=_iso(self.state.summary_resolution_by),
        )
        self._refresh_derived()

    # --- continuing as new -------------------------------------------------

    def carry(self, persisted_seq: int, runs: int) -> CarriedCase:
        """What the next run needs: the whole state, and a bounded timeline (see carried_timeline)."""
        timeline = self.carried_timeline(persisted_seq)
        return CarriedCase(
            state=self.state,
            timeline=timeline,
            timeline_offset=self.event_count - len(timeline),
            applied_requests=list(self.applied_requests),
            agents=list(self.agents.values()),
            escalations=self.escalations,
            policy=self.policy,
            stopped_clocks=list(self.stopped_clocks.values()),
            persisted_seq=persisted_seq,
            runs=runs,
        )

    def carried_timeline(self, persisted_seq: int) -> list[TimelineEvent]:
        """The events after persisted_seq (never dropped), after the most recent written ones:
        at most CARRIED_TAIL_EVENTS of them and about CARRIED_TAIL_BYTES of JSON (at least one)."""
        unwritten = self.events_after(persisted_seq)
        written = self.timeline[: len(self.timeline) - len(unwritten)]
        tail: list[TimelineEvent] = []
        size = 0
        for event in reversed(written):
            size += len(event.model_dump_json())
            if len(tail) >= CARRIED_TAIL_EVENTS or (tail and size > CARRIED_TAIL_BYTES):
                break
            tail.append(event)
        tail.reverse()
        return tail + unwritten

    @classmethod
    def resume(cls, carried: CarriedCase) -> "Case":
        # A payload from before the bound carried the whole timeline, with offset 0: the same thing.
        case = cls(carried.state, carried.timeline, carried.timeline_offset)
        case.applied_requests = dict.fromkeys(carried.applied_requests[-REQUEST_ID_MEMORY:])
        case.agents = {agent.agent_id: agent for agent in carried.agents}
        case.escalations = carried.escalations
        case.policy = carried.policy
        case.stopped_clocks = {clock.name: clock for clock in carried.stopped_clocks}
        return case

    @property
    def event_count(self) -> int:
        """Events recorded since the case opened, in every run (the last seq)."""
        return self.timeline_offset + len(self.timeline)

    def events_after(self, seq: int) -> list[TimelineEvent]:
        """The events after `seq`; seq must not be before what this run holds."""
        if seq < self.timeline_offset:
            raise ValueError(f"events up to seq {self.timeline_offset} are in PostgreSQL only (asked after {seq})")
        return self.timeline[seq - self.timeline_offset :]

    @property
    def assigned(self) -> bool:
        return self.state.owner is not None

    @property
    def closed(self) -> bool:
        return self.state.status == "closed"

    # --- actions -----------------------------------------------------------

    def already_applied(self, action: Action) -> bool:
        return action.request_id is not None and action.request_id in self.applied_requests

    def agents_to_look_up(self, name: str, action: Action) -> list[str]:
        """The roster members whose current record the who-may rules of `name` need."""
        actor = parse_actor(action.actor)
        if actor.kind != "agent":
            return []
        if name in ("add_note", "new_contact") and actor.id not in self.agents:
            return [actor.id]
        if name == "transfer_ownership" and actor.id not in (self.state.owner, self.state.supervisor):
            return [actor.id]  # may they transfer? only a manager may, besides the owner and supervisor
        if name in ("offer_goodwill", "approve_goodwill"):
            return [actor.id]  # authority limits change: always the roster's current one
        return []

    def workload_to_look_up(self, name: str, action: Action) -> str | None:
        """The agent whose open-case count the action needs (a transfer's target)."""
        if isinstance(action, TransferOwnership):
            return action.to_agent
        return None

    def learn_agent(self, agent: AgentRef) -> None:
        self.agents[agent.agent_id] = agent

    def learn_workload(self, workload: AgentWorkload) -> None:
        self.workloads[workload.agent_id] = workload
        if workload.agent is not None:
            self.learn_agent(workload.agent)

    def _roster_record(self, agent_id: str, *, current: bool = False) -> AgentRef | None:
        """The roster's record of agent_id (None: not on the roster).

        In an update validator the roster cannot be read: a record the case lacks,
        or one that must be current, ends the check there and the handler finishes it.
        """
        if self._lenient and (current or agent_id not in self.agents):
            raise _RosterNeeded
        return self.agents.get(agent_id)

    def _workload(self, agent_id: str) -> AgentWorkload:
        if self._lenient:
            raise _RosterNeeded
        return self.workloads.get(agent_id) or AgentWorkload(agent_id=agent_id)

    def check(self, name: str, action: Action, now: datetime, *, roster_unknown_ok: bool = False) -> None:
        """Raise Rejection if the action may not be applied now. Changes nothing.

        With roster_unknown_ok, an agent the case has not looked up yet passes the
        roster-member rule (an update validator cannot look them up; the handler does).
        """
        if self.already_applied(action):
            return
        checker, _ = self._handlers[name]
        actor = parse_actor(action.actor)
        self._lenient = roster_unknown_ok
        try:
            checker(self, action, actor, now)
        except _RosterNeeded:
            pass  # the rest of the rule needs the roster: the handler reads it and checks again
        finally:
            self._lenient = False

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
            self._remember_request(action.request_id)
        self.workloads.clear()
        self._refresh_derived()
        return self.timeline[first:]

    def _remember_request(self, request_id: str) -> None:
        self.applied_requests[request_id] = None
        while len(self.applied_requests) > REQUEST_ID_MEMORY:
            del self.applied_requests[next(iter(self.applied_requests))]

    def _require_room(self, action: Action, name: str) -> None:
        """Refuse an action that would grow the state past rules.STATE_BUDGET_BYTES (see budget_in_force)."""
        used = rules.state_bytes(self.state)
        if rules.has_room(used, len(action.model_dump_json().encode())):
            return
        if self._lenient or self.budget_in_force():
            raise rules.case_full(self.state.complaint_id, name, used)

    def reject(self, name: str, actor: str, reason: str, now: datetime, request_id: str | None = None) -> TimelineEvent:
        """Record a signal that could not be applied: the only trace a rejected signal leaves."""
        return self._record("command_rejected", actor, now, action=name, reason=reason, request_id=request_id)

    # accept_ownership

    def _check_accept(self, a: AcceptOwnership, actor: Actor, now: datetime) -> None:
        rules.may_accept_ownership(self.state, actor)

    def _apply_accept(self, a: AcceptOwnership, actor: Actor, now: datetime) -> None:
        if actor.id == self.state.pending_owner:
            self._take_over(actor, now)
            return
        self.state.owner_accepted = True
        if self.state.status == "assigned":
            self._enter_status("in_progress", now)
        self._record("ownership_accepted", actor.name, now, owner=self.state.owner)
        self._stop_clock("acknowledge", now, "ownership accepted")

    def _take_over(self, actor: Actor, now: datetime) -> None:
        """The pending owner accepts: they become the owner, with every promise, fact and clock."""
        previous = self.state.owner
        self.state.owner = actor.id
        self.state.pending_owner = None
        self.state.owner_accepted = True
        self.state.transfers += 1
        known = self.agents.get(actor.id)
        if known is not None:
            self.state.supervisor = known.supervisor_id if known.supervisor_id != actor.id else None
        inherited = []
        for promise in self.state.open_promises:
            if promise.owed_by == previous:
                promise.owed_by = actor.id
                inherited.append(promise.promise_id)
        handoff = self.state.handoff
        if handoff is not None and handoff.to_agent == actor.id:
            handoff.accepted_at = now
        if self.state.status == "assigned":
            self._enter_status("in_progress", now)
        self._record(
            "ownership_transferred",
            actor.name,
            now,
            from_owner=previous,
            to_owner=actor.id,
            handoff_note=handoff.note if handoff is not None else None,
            promises_inherited=inherited or None,
            open_promises=[p.promise_id for p in self.state.open_promises] or None,
            facts_known=sorted(self.state.facts) or None,
            supervisor=self.state.supervisor,
        )
        self._record("ownership_accepted", actor.name, now, owner=actor.id)
        self._stop_clock("acceptance", now, "transfer accepted")
        self._stop_clock("acknowledge", now, "ownership accepted")

    # transfer_ownership

    def _check_transfer(self, a: TransferOwnership, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        if a.to_agent == self.state.owner:
            raise invalid(f"{a.to_agent} already owns this case; transfer it to someone else")
        pending = self.state.pending_owner
        if pending is not None:
            since = self.state.handoff.requested_at.isoformat() if self.state.handoff else "earlier"
            raise invalid(
                f"a transfer to {pending} is already pending (requested {since}); {pending} must accept it "
                "(accept_ownership) before the case can move again, so it always has one accountable owner"
            )
        if actor.kind != "agent" or actor.id not in (self.state.owner, self.state.supervisor):
            who = self._roster_record(actor.id, current=True) if actor.kind == "agent" else None
            rules.may_transfer(self.state, actor, who)
        rules.require_transfer_target(self._workload(a.to_agent))

    def _apply_transfer(self, a: TransferOwnership, actor: Actor, now: datetime) -> None:
        self._request_transfer(a.to_agent, a.handoff_note, actor.name, now)

    def _request_transfer(
        self, to_agent: str, note: str, requested_by: str, now: datetime, reason: str | None = None
    ) -> None:
        """Make to_agent the pending owner; the current owner stays accountable until they accept."""
        self.state.pending_owner = to_agent
        self.state.handoff = Handoff(
            from_owner=self.state.owner, to_agent=to_agent, note=note, requested_by=requested_by, requested_at=now
        )
        clock = None
        if self.policy is not None:
            clock = self._start_named_clock("acceptance", "acceptance", self.policy.transfer_acceptance, now, now)
        self._record(
            "ownership_transfer_requested",
            requested_by,
            now,
            from_owner=self.state.owner,
            to_agent=to_agent,
            handoff_note=note,
            reason=reason,
            accept_by=clock.due_at.isoformat() if clock is not None else None,
        )

    # contact_customer

    def _check_contact(self, a: ContactCustomer, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "contact_customer")

    def _apply_contact(self, a: ContactCustomer, actor: Actor, now: datetime) -> None:
        reminder = self.state.status == "resolution_proposed"
        if reminder:
            self.state.reminders_since_proposal += 1
        self._record("customer_contacted", actor.name, now, channel=a.channel, summary=a.summary, reminder=reminder or None)
        self._stop_clock("first_response", now, "customer contacted")
        if reminder:
            self._lapse_confirmation_if_due(now)
        else:
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

    # promises

    def _check_make_promise(self, a: MakePromise, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "make_promise")
        rules.require_future(a.due_at, now, "due_at")
        self._require_room(a, "make_promise")

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
        self._start_promise_clock(promise, now)

    def _check_keep_promise(self, a: KeepPromise, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "keep_promise")
        rules.find_open_promise(self.state, a.promise_id)

    def _apply_keep_promise(self, a: KeepPromise, actor: Actor, now: datetime) -> None:
        promise = rules.find_open_promise(self.state, a.promise_id)
        clock = self._clock(clocks.promise_clock_name(promise.promise_id))
        deadline = clock.due_at if clock is not None else promise.due_at
        promise.status = "kept"
        promise.kept_at = now
        promise.kept_on_time = now <= deadline
        promise.evidence = a.evidence
        self._record(
            "promise_kept",
            actor.name,
            now,
            promise_id=promise.promise_id,
            evidence=a.evidence,
            on_time=promise.kept_on_time,
            deadline=deadline.isoformat(),
        )
        self._stop_clock(clocks.promise_clock_name(promise.promise_id), now, "promise kept")
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
        self._stop_clock(clocks.promise_clock_name(promise.promise_id), now, "promise renegotiated")
        self._start_promise_clock(promise, now)

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
        self.state.reminders_since_proposal = 0
        self.state.confirmation_lapsed = False
        self._record("resolution_proposed", actor.name, now, resolution=a.resolution, root_cause=a.root_cause)
        self._enter_status("resolution_proposed", now)
        self._stop_clock("resolution", now, "resolution proposed")
        self._stop_clock("customer_update", now, "resolution proposed")
        self._restart_clock("confirmation", now, "resolution proposed")

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
        self._stop_clock("confirmation", now, "customer answered")
        if not a.satisfied:
            self._record("resolution_rejected", actor.name, now, channel=channel, comment=a.comment)
            self._enter_status("in_progress", now)
            self._resume_stopped_clock("resolution", now)
            self._restart_clock("customer_update", now, "resolution rejected")
            return
        self._record(
            "resolution_confirmed",
            actor.name,
            now,
            channel=channel,
            comment=a.comment,
            open_promises=[p.promise_id for p in self.state.open_promises] or None,
        )
        self._enter_status("follow_through", now)
        if self.state.open_promises:
            self._restart_clock("customer_update", now, "follow-through on open promises")
        self._close_if_followed_through(now)

    # withdraw

    def _check_withdraw(self, a: Withdraw, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        if actor.kind != "customer":
            raise rules.not_allowed(
                f"only the customer (customer:{self.state.customer.customer_id}) may withdraw the complaint; "
                f"{actor.name} is not the customer"
            )
        rules.require_this_customer(self.state, actor)

    def _apply_withdraw(self, a: Withdraw, actor: Actor, now: datetime) -> None:
        self._close("withdrawn", now, actor=actor.name, reason=a.reason)

    # goodwill

    def _check_offer_goodwill(self, a: OfferGoodwill, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "offer_goodwill")
        if a.settles_case:
            rules.require_status(
                self.state, {"in_progress", "waiting_on_customer", "resolution_proposed"}, "settle the case with goodwill"
            )
            settling = [g.goodwill_id for g in self.state.goodwill if g.settles_case and g.status == "awaiting_approval"]
            if settling:
                raise invalid(
                    f"goodwill {settling[0]} that settles the case already awaits approval; "
                    "wait for the decision (approve_goodwill) before offering another"
                )
        self._require_room(a, "offer_goodwill")
        self._roster_record(actor.id, current=True)

    def _apply_offer_goodwill(self, a: OfferGoodwill, actor: Actor, now: datetime) -> None:
        owner = self.agents.get(actor.id)
        limit = owner.authority_limit if owner is not None else Decimal(0)
        within = (a.amount or Decimal(0)) <= limit
        gesture = Goodwill(
            goodwill_id=f"G{len(self.state.goodwill) + 1}",
            kind=a.kind,
            amount=a.amount,
            currency=a.currency,
            description=a.description,
            settles_case=a.settles_case,
            root_cause=a.root_cause,
            offered_by=actor.id,
            offered_at=now,
            status="awaiting_approval",
            owner_limit=None if within else limit,
        )
        self.state.goodwill.append(gesture)
        approval = None
        if not within and self.policy is not None:
            approval = self._start_named_clock(
                _goodwill_clock_name(gesture.goodwill_id), "goodwill_approval", self.policy.goodwill_approval, now, now
            )
        self._record(
            "goodwill_offered",
            actor.name,
            now,
            goodwill_id=gesture.goodwill_id,
            kind=gesture.kind,
            amount=_money(gesture.amount),
            currency=gesture.currency,
            description=gesture.description,
            settles_case=gesture.settles_case or None,
            within_authority=within,
            authority_limit=_money(limit),
            decide_by=approval.due_at.isoformat() if approval is not None else None,
        )
        if within:
            self._decide_goodwill(gesture, True, actor.name, now, "within the owner's authority")

    def _check_approve_goodwill(self, a: ApproveGoodwill, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        gesture = rules.find_goodwill_awaiting_approval(self.state, a.goodwill_id)
        if actor.kind != "agent":
            raise rules.not_allowed(f"only a supervisor or manager may decide on goodwill; {actor.name} is not an agent")
        rules.may_approve_goodwill(actor, self._roster_record(actor.id, current=True), gesture)

    def _apply_approve_goodwill(self, a: ApproveGoodwill, actor: Actor, now: datetime) -> None:
        gesture = rules.find_goodwill_awaiting_approval(self.state, a.goodwill_id)
        self._decide_goodwill(gesture, a.approve, actor.name, now, a.comment)

    def _decide_goodwill(self, gesture: Goodwill, approve: bool, by: str, now: datetime, comment: str | None) -> None:
        gesture.status = "granted" if approve else "declined"
        gesture.decided_by = by
        gesture.decided_at = now
        gesture.comment = comment
        self._record(
            "goodwill_decided",
            by,
            now,
            goodwill_id=gesture.goodwill_id,
            approved=approve,
            amount=_money(gesture.amount),
            currency=gesture.currency,
            comment=comment,
            settles_case=gesture.settles_case or None,
        )
        self._stop_clock(_goodwill_clock_name(gesture.goodwill_id), now, "goodwill decided")
        if approve and gesture.settles_case:
            self._settle_with_goodwill(gesture, now)

    def _settle_with_goodwill(self, gesture: Goodwill, now: datetime) -> None:
        """A granted settling gesture ends the work on the complaint: follow through on open promises, then close."""
        self.state.root_cause = gesture.root_cause
        self._enter_status("follow_through", now)
        for name in ("resolution", "customer_update", "confirmation"):
            self._stop_clock(name, now, f"settled with goodwill {gesture.goodwill_id}")
        if self.state.open_promises:
            self._start_clock("customer_update", now, now)
        self._close_if_followed_through(now)

    # feedback

    def _check_feedback(self, a: RecordFeedback, actor: Actor, now: datetime) -> None:
        if actor.kind != "customer":
            raise rules.not_allowed(
                f"only the customer (customer:{self.state.customer.customer_id}) may record feedback; "
                f"{actor.name} is not the customer"
            )
        rules.require_this_customer(self.state, actor)
        rules.require_feedback_open(self.state, now)

    def _apply_feedback(self, a: RecordFeedback, actor: Actor, now: datetime) -> None:
        self.state.feedback = Feedback(score=a.score, comment=a.comment, at=now)
        review = a.score <= FEEDBACK_REVIEW_AT_OR_BELOW
        recipient, role = self._recipient(2)
        self._record(
            "feedback_recorded",
            actor.name,
            now,
            score=a.score,
            comment=a.comment,
            review_by=recipient if review else None,
        )
        if review:
            # Through the outbox, like an escalation: exactly one notice per closing of the case.
            self._record(
                "escalated",
                ESCALATION_ACTOR,
                now,
                clock="feedback",
                level=2,
                occurrence=self.state.reopened + 1,
                recipient=recipient,
                recipient_role=role,
                reason=f"the customer rated the handling {a.score}/5: review the case"
                + (f" ({a.comment[:200]})" if a.comment else ""),
                due_at=now.isoformat(),
                deadline=now.isoformat(),
                overdue=False,
            )

    # new_contact

    def _check_new_contact(self, a: NewContact, actor: Actor, now: datetime) -> None:
        if actor.kind == "customer":
            rules.require_this_customer(self.state, actor)
        elif actor.kind == "agent":
            rules.require_roster_member(actor, self._roster_record(actor.id), "record a contact")
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
        self._record(
            "case_reopened",
            actor,
            now,
            previous_outcome=previous_outcome,
            closed_at=_iso(closed_at),
            owner=self.state.owner,
            reason="the customer got in touch again about the same problem within the feedback window",
        )
        for kind in ("first_response", "customer_update", "resolution"):
            self._start_clock(kind, now, now)  # type: ignore[arg-type]

    # --- closing -----------------------------------------------------------

    def _close_if_followed_through(self, now: datetime) -> None:
        if self.state.status != "follow_through":
            return
        outcome = rules.closing_outcome(self.state)
        if outcome is None:
            return
        self._close(outcome, now)

    def _close(self, outcome: Outcome, now: datetime, actor: str = ENGINE_ACTOR, reason: str | None = None) -> None:
        self.state.status = "closed"
        self.state.outcome = outcome
        self.state.closed_at = now
        self.state.pending_owner = None
        if self.policy is not None:
            self.state.feedback_until = business_time.deadline(now, self.policy.feedback_window, self.policy.calendar)
        summary_by = self.state.summary_resolution_by
        self._record(
            "case_closed",
            actor,
            now,
            outcome=outcome,
            reason=reason,
            root_cause=self.state.root_cause,
            promises_kept=self._promises_kept(),
            promises_kept_on_time=self._promises_kept_on_time(),
            promises_total=len(self.state.promises),
            summary_resolution=(outcome == "resolved" and now <= summary_by) if summary_by else None,
            goodwill=[g.goodwill_id for g in self.state.goodwill if g.status == "granted"] or None,
            feedback_until=_iso(self.state.feedback_until),
        )
        for clock in list(self.state.clocks):
            self._stop_clock(clock.name, now, "case closed")

    def outcome(self) -> CaseOutcome:
        if self.state.outcome is None or self.state.closed_at is None:
            raise RuntimeError("the case is not closed")
        return CaseOutcome(
            complaint_id=self.state.complaint_id,
            outcome=self.state.outcome,
            closed_at=self.state.closed_at,
            owner=self.state.owner,
            promises_kept=self._promises_kept(),
            promises_kept_on_time=self._promises_kept_on_time(),
            promises_total=len(self.state.promises),
            escalations=self.escalations,
            root_cause=self.state.root_cause,
            satisfaction=self.state.feedback.score if self.state.feedback is not None else None,
        )

    def _promises_kept(self) -> int:
        return sum(1 for p in self.state.promises if p.status == "kept")

    def _promises_kept_on_time(self) -> int:
        return sum(1 for p in self.state.promises if p.status == "kept" and p.kept_on_time)

    # --- clocks and escalation ---------------------------------------------

    def finished(self, now: datetime) -> bool:
        """Closed, and the feedback window (when feedback and a reopening contact are accepted) is over."""
        if not self.closed:
            return False
        return self.state.feedback_until is None or now >= self.state.feedback_until

    def next_wake(self) -> datetime | None:
        """When the next escalation level fires or a clock reaches its deadline (None: nothing pending).

        A closed case wakes once more, when its feedback window ends.
        """
        if self.closed:
            return self.state.feedback_until
        moments = [m for m in (clocks.next_wake(clock) for clock in self.state.clocks) if m is not None]
        return min(moments) if moments else None

    def advance_clocks(self, now: datetime) -> list[TimelineEvent]:
        """Fire, in time order, every deadline and escalation level due by `now`."""
        first = len(self.timeline)
        while not self.closed:
            due = [
                (moment, clock.name, clock)
                for clock in self.state.clocks
                if (moment := clocks.next_wake(clock)) is not None and moment <= now
            ]
            if not due:
                break
            _, _, clock = min(due, key=lambda item: (item[0], item[1]))
            if not clock.breached and clock.due_at <= now and (
                clock.next_escalation_at is None or clock.due_at <= clock.next_escalation_at
            ):
                self._breach(clock, now)
            else:
                self._escalate(clock, now)
        self._refresh_derived()
        return self.timeline[first:]

    def _escalate(self, clock: Clock, now: datetime) -> None:
        assert self.policy is not None and clock.next_escalation_at is not None
        due_at = clock.next_escalation_at
        clock.level += 1
        clocks.refresh(clock, self.policy.calendar)
        recipient, role = self._recipient(clock.level)
        transfer_to = self._supervisor_takeover_candidate() if clock.level == clocks.TOP_LEVEL else None
        self.escalations += 1
        self._record(
            "escalated",
            ESCALATION_ACTOR,
            now,
            clock=clock.name,
            level=clock.level,
            occurrence=clock.occurrence,
            recipient=recipient,
            recipient_role=role,
            reason=self._escalation_reason(clock, due_at, transfer_to),
            due_at=due_at.isoformat(),
            deadline=clock.due_at.isoformat(),
            overdue=now >= clock.due_at,
        )
        if transfer_to is not None:
            self._request_transfer(
                transfer_to,
                self._escalation_handoff_note(clock),
                ESCALATION_ACTOR,
                now,
                reason=f"level 3 escalation of {clock.name}; the policy transfers the case to the supervisor",
            )

    def _breach(self, clock: Clock, now: datetime) -> None:
        clock.breached = True
        if clock.kind == "promise":
            promise = self.state.promise(clocks.promise_id_of(clock))
            if promise is not None and promise.is_open:
                promise.status = "overdue"
                self._record(
                    "promise_overdue",
                    ESCALATION_ACTOR,
                    now,
                    promise_id=promise.promise_id,
                    owed_by=promise.owed_by,
                    due_at=promise.due_at.isoformat(),
                    deadline=clock.due_at.isoformat(),
                )
        if clock.kind == "confirmation":
            self._lapse_confirmation_if_due(now)

    def _recipient(self, level: int) -> tuple[str, RecipientRole]:
        """Level 1 warns the owner, level 2 their supervisor, level 3 a manager (nearest one that exists)."""
        owner = self.state.owner or "unassigned"
        chain: list[tuple[str | None, RecipientRole]] = [
            (self.state.owner, "owner"),
            (self.state.supervisor, "supervisor"),
            (self.state.manager, "manager"),
        ]
        for agent_id, role in reversed(chain[:level]):
            if agent_id is not None:
                return agent_id, role
        return owner, "owner"

    def _supervisor_takeover_candidate(self) -> str | None:
        supervisor = self.state.supervisor
        if self.policy is None or not self.policy.transfer_to_supervisor_at_level3:
            return None
        if supervisor is None or supervisor == self.state.owner or self.state.pending_owner is not None:
            return None
        return supervisor

    def _escalation_reason(self, clock: Clock, due_at: datetime, transfer_to: str | None) -> str:
        if clock.kind == "promise":
            promise_id = clocks.promise_id_of(clock)
            promise = self.state.promise(promise_id)
            what = f"promise {promise_id}"
            if promise is not None:
                what += f" ({promise.description[:80]}, owed by {promise.owed_by})"
        else:
            what = CLOCK_LABELS.get(clock.kind, clock.name)
        deadline = clock.due_at.isoformat()
        if due_at < clock.due_at:
            reason = f"level {clock.level}: {what} is due at {deadline}"
        elif due_at == clock.due_at:
            reason = f"level {clock.level}: {what} reached its deadline ({deadline})"
        else:
            reason = f"level {clock.level}: {what} is overdue since {deadline}"
        if transfer_to is not None:
            reason += f"; ownership offered to the supervisor {transfer_to}"
        return reason

    def _escalation_handoff_note(self, clock: Clock) -> str:
        open_promises = ", ".join(f"{p.promise_id} due {p.due_at.isoformat()}" for p in self.state.open_promises)
        return (
            f"Escalated: {clock.name} is overdue. {self.state.summary}. Status {self.state.status}; "
            f"open promises: {open_promises or 'none'}; facts known: {', '.join(sorted(self.state.facts)) or 'none'}."
        )

    def _clock(self, name: str) -> Clock | None:
        return next((clock for clock in self.state.clocks if clock.name == name), None)

    def _start_clock(self, kind: ClockKind, start: datetime, now: datetime) -> Clock | None:
        """Start a policy clock (a new occurrence if it ran before); None if the policy has no such clock."""
        if self.policy is None:
            return None
        spec = self.policy.confirmation_window if kind == "confirmation" else self.policy.clocks.get(kind)  # type: ignore[arg-type]
        if spec is None:
            return None
        return self._start_named_clock(kind, kind, spec, start, now)

    def _start_named_clock(self, name: str, kind: ClockKind, spec: ClockSpec, start: datetime, now: datetime) -> Clock:
        assert self.policy is not None
        if kind in ("confirmation", "acceptance", "goodwill_approval"):
            # Waiting on the customer does not stop these: they wait on the customer, or on us.
            spec = spec.model_copy(update={"pauses": False})
        occurrence = self._next_occurrence(name)
        clock = clocks.start_policy_clock(name, kind, spec, start, self.policy.calendar, occurrence)
        return self._add_clock(clock, now)

    def _start_promise_clock(self, promise: Promise, now: datetime) -> None:
        if self.policy is None:
            return
        name = clocks.promise_clock_name(promise.promise_id)
        occurrence = self._next_occurrence(name)
        clock = clocks.start_promise_clock(promise, self.policy.promise, now, self.policy.calendar, occurrence)
        self._add_clock(clock, now)

    def _next_occurrence(self, name: str) -> int:
        """A clock started again after it stopped is its next occurrence (each notifies afresh)."""
        previous = self.stopped_clocks.pop(name, None)
        return previous.occurrence + 1 if previous is not None else 1

    def _add_clock(self, clock: Clock, now: datetime) -> Clock:
        self.state.clocks.append(clock)
        if self.state.status == "waiting_on_customer":
            clocks.pause(clock, now)
        return clock

    def _restart_clock(self, kind: ClockKind, now: datetime, cause: str) -> None:
        self._stop_clock(kind, now, cause)
        self._start_clock(kind, now, now)

    def _stop_clock(self, name: str, now: datetime, cause: str) -> None:
        """Stop a clock; if it had escalated, its cause is cured and the level clears."""
        clock = self._clock(name)
        if clock is None:
            return
        self.state.clocks.remove(clock)
        if clock.level > 0:
            self._record(
                "escalation_cleared",
                ENGINE_ACTOR,
                now,
                clock=clock.name,
                level=clock.level,
                occurrence=clock.occurrence,
                cause=cause,
            )
        if not clock.paused:
            clock.paused_since = now  # remembered, so a resumed clock can count the gap
        self.stopped_clocks[name] = clock

    def _resume_stopped_clock(self, name: str, now: datetime) -> None:
        """Restart a stopped clock where it left off (the resolution clock after a rejected resolution).

        The time it was stopped counts as paused for a clock that pauses while the
        case waits on the customer; a regulatory clock (pauses = false) kept running.
        """
        clock = self.stopped_clocks.pop(name, None)
        if clock is None or self.policy is None:
            return
        if clock.pauses and clock.paused_since is not None:
            clock.paused_seconds += clocks.elapsed(clock.paused_since, now, clock.business, self.policy.calendar)
        clock.paused = False
        clock.paused_since = None
        clock.occurrence += 1
        clock.level = 0
        clock.breached = False
        clocks.refresh(clock, self.policy.calendar)
        self._add_clock(clock, now)

    def _enter_status(self, status: Status, now: datetime) -> None:
        """Change status; clocks pause while the case waits on the customer and resume after."""
        previous = self.state.status
        self.state.status = status
        if status == previous or self.policy is None:
            return
        if status == "waiting_on_customer":
            paused = [clock.name for clock in self.state.clocks if clocks.pause(clock, now)]
            if paused:
                self._record("clocks_paused", ENGINE_ACTOR, now, clocks=paused, reason="waiting on the customer")
        elif previous == "waiting_on_customer":
            resumed: dict[str, float] = {}
            for clock in self.state.clocks:
                if clock.paused:
                    resumed[clock.name] = round(clocks.resume(clock, now, self.policy.calendar), 3)
            if resumed:
                self._record(
                    "clocks_resumed",
                    ENGINE_ACTOR,
                    now,
                    paused_seconds=resumed,
                    due_at={clock.name: clock.due_at.isoformat() for clock in self.state.clocks},
                )

    def _lapse_confirmation_if_due(self, now: datetime) -> None:
        """The confirmation window passed and the customer was reminded: follow-through, unconfirmed."""
        if self.state.status != "resolution_proposed" or self.state.reminders_since_proposal < 1:
            return
        clock = self._clock("confirmation")
        if clock is not None and not clock.breached:
            return
        self.state.confirmation_lapsed = True
        self._stop_clock("confirmation", now, "confirmation window passed after a reminder")
        self._enter_status("follow_through", now)
        self._close_if_followed_through(now)

    # --- helpers -----------------------------------------------------------

    def _owner_working(self, actor: Actor, action: str) -> None:
        rules.require_open(self.state)
        rules.require_owner(self.state, actor, action)
        rules.require_accepted(self.state, action)

    def _record(
        self, kind: str, actor: str, now: datetime, /, channel: Channel | None = None, **data: Any
    ) -> TimelineEvent:
        event = TimelineEvent(
            seq=self.event_count + 1,
            at=now,
            kind=kind,  # type: ignore[arg-type]
            actor=actor,
            channel=channel,
            data={key: value for key, value in data.items() if value is not None},
        )
        self.timeline.append(event)
        self.state.event_count = self.event_count
        return event


    def _refresh_derived(self) -> None:
        """Recompute what follows from the clocks: the case's escalation level and next deadline."""
        self.state.escalation_level = max((clock.level for clock in self.state.clocks), default=0)
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
        "withdraw": (_check_withdraw, _apply_withdraw),
        "transfer_ownership": (_check_transfer, _apply_transfer),
        "offer_goodwill": (_check_offer_goodwill, _apply_offer_goodwill),
        "approve_goodwill": (_check_approve_goodwill, _apply_approve_goodwill),
        "record_feedback": (_check_feedback, _apply_feedback),
        "new_contact": (_check_new_contact, _apply_new_contact),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _money(amount: Decimal | None) -> str | None:
    return f"{amount:.2f}" if amount is not None else None


def _goodwill_clock_name(goodwill_id: str) -> str:
    return f"goodwill:{goodwill_id}"
