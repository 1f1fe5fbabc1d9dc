"""Case: the state and timeline every theme changes, and the one table that routes each action to its rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from schemas.actions import Action, TransferOwnership
from schemas.common import Channel
from schemas.intake import ComplaintIntake
from schemas.policy import ResolvedPolicy
from schemas.roster import ENGINE_SYSTEMS, AgentRef, AgentWorkload, Assignment, SystemRef
from schemas.state import AppliedRequest, CarriedCase, CaseState, Clock, Fact, TimelineEvent
from workflows import business_time, rules
from workflows.case.common import ENGINE_ACTOR, ROUTING_ACTOR, iso
from workflows.case.contact import ContactRules
from workflows.case.escalation import EscalationRules
from workflows.case.goodwill import GoodwillRules
from workflows.case.letters import LetterRules
from workflows.case.ownership import OwnershipRules
from workflows.case.promises import PromiseRules
from workflows.case.resolution import ResolutionRules
from workflows.rules import Actor, Rejection, parse_actor, request_digest

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


class Case(OwnershipRules, ContactRules, PromiseRules, ResolutionRules, GoodwillRules, EscalationRules, LetterRules):
    def __init__(self, state: CaseState, timeline: list[TimelineEvent] | None = None, timeline_offset: int = 0) -> None:
        self.state = state
        # The events this run holds, in seq order: all of them, unless the case continued as new,
        # when the first `timeline_offset` events are in PostgreSQL (case_events) only.
        self.timeline: list[TimelineEvent] = list(timeline or [])
        self.timeline_offset = timeline_offset
        # The request ids applied and what for, oldest first (a dict keeps insertion order), at most REQUEST_ID_MEMORY.
        self.applied_requests: dict[str, AppliedRequest] = {}
        # What the roster said of agents who acted on this case (owner, supervisor, note writers).
        self.agents: dict[str, AgentRef] = {}
        self.escalations = 0
        # The policy copied into the case when it opened; None until then.
        self.policy: ResolvedPolicy | None = None
        # The last state of each clock that stopped: a restart continues its occurrence count.
        self.stopped_clocks: dict[str, Clock] = {}
        # Transfer targets' open-case counts, read for the action being applied (never carried).
        self.workloads: dict[str, AgentWorkload] = {}
        # The registered systems acting now, as looked up for this action (None: not registered).
        self.systems: dict[str, SystemRef | None] = {}
        self._lenient = False

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
        if self.policy is not None:
            self._start_letters(now)  # the case is open: its policy's letters on receipt go, the later ones wait

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
            summary_resolution_by=iso(self.state.summary_resolution_by),
            letters=sorted(policy.letters) or None,
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
            applied_requests=list(self.applied_requests.values()),
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
        case.applied_requests = {use.request_id: use for use in carried.applied_requests[-REQUEST_ID_MEMORY:]}
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

    def already_applied(self, name: str, action: Action) -> bool:
        """Whether this exact request was applied before (a resend: a no-op).

        A request_id used before for another action, by another actor or with another payload is
        refused: a resend must be the same request, and an id never silences another one's work.
        """
        if action.request_id is None:
            return False
        use = self.applied_requests.get(action.request_id)
        if use is None:
            return False
        if (use.action, use.actor) != (name, action.actor):
            raise Rejection(
                "InvalidCommand", f"request_id {action.request_id} was already used for {use.action} by {use.actor}"
            )
        if use.digest != request_digest(action):
            raise Rejection(
                "InvalidCommand",
                f"request_id {action.request_id} was already used for {use.action} by {use.actor} with another payload",
            )
        return True

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

    def systems_to_look_up(self, name: str, action: Action) -> list[str]:
        """The registered system whose current record the action needs: a system actor, unless it is the engine's."""
        actor = parse_actor(action.actor)
        if actor.kind != "system" or actor.id in ENGINE_SYSTEMS or actor.id in self.systems:
            return []
        return [actor.id]

    def learn_system(self, name: str, system: SystemRef | None) -> None:
        self.systems[name] = system

    def _require_registered_system(self, name: str, actor: Actor) -> None:
        """A system actor's registration, as looked up for this action (a validator cannot look it up)."""
        if actor.kind != "system":
            return
        if self._lenient and actor.id not in self.systems and actor.id not in ENGINE_SYSTEMS:
            raise _RosterNeeded
        rules.require_registered_system(actor, self.systems.get(actor.id), name)

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
        if self.already_applied(name, action):
            return
        checker, _ = self._handlers[name]
        actor = parse_actor(action.actor)
        self._lenient = roster_unknown_ok
        try:
            self._require_registered_system(name, actor)
            checker(self, action, actor, now)
        except _RosterNeeded:
            pass  # the rest of the rule needs the roster: the handler reads it and checks again
        finally:
            self._lenient = False

    def apply(self, name: str, action: Action, now: datetime) -> list[TimelineEvent]:
        """Check and apply an action; return the timeline events it added."""
        if self.already_applied(name, action):
            return []
        checker, applier = self._handlers[name]
        actor = parse_actor(action.actor)
        self._require_registered_system(name, actor)
        checker(self, action, actor, now)
        first = len(self.timeline)
        applier(self, action, actor, now)
        if action.request_id is not None:
            self._remember_request(name, action)
        self.workloads.clear()
        self.systems.clear()
        self._refresh_derived()
        return self.timeline[first:]

    def _remember_request(self, name: str, action: Action) -> None:
        request_id = action.request_id
        assert request_id is not None
        self.applied_requests[request_id] = AppliedRequest(
            request_id=request_id, action=name, actor=action.actor, digest=request_digest(action)
        )
        while len(self.applied_requests) > REQUEST_ID_MEMORY:
            del self.applied_requests[next(iter(self.applied_requests))]

    def _require_room(self, action: Action, name: str) -> None:
        """Refuse an action that would grow the state past rules.STATE_BUDGET_BYTES."""
        used = rules.state_bytes(self.state)
        if not rules.has_room(used, len(action.model_dump_json().encode())):
            raise rules.case_full(self.state.complaint_id, name, used)

    def reject(self, name: str, actor: str, reason: str, now: datetime, request_id: str | None = None) -> TimelineEvent:
        """Record a signal that could not be applied: the only trace a rejected signal leaves."""
        return self._record("command_rejected", actor, now, action=name, reason=reason, request_id=request_id)

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
        "accept_ownership": (OwnershipRules._check_accept, OwnershipRules._apply_accept),
        "contact_customer": (ContactRules._check_contact, ContactRules._apply_contact),
        "add_note": (ContactRules._check_note, ContactRules._apply_note),
        "request_info": (ContactRules._check_request_info, ContactRules._apply_request_info),
        "provide_info": (ContactRules._check_provide_info, ContactRules._apply_provide_info),
        "make_promise": (PromiseRules._check_make_promise, PromiseRules._apply_make_promise),
        "keep_promise": (PromiseRules._check_keep_promise, PromiseRules._apply_keep_promise),
        "renegotiate_promise": (PromiseRules._check_renegotiate, PromiseRules._apply_renegotiate),
        "propose_resolution": (ResolutionRules._check_propose, ResolutionRules._apply_propose),
        "confirm_resolution": (ResolutionRules._check_confirm, ResolutionRules._apply_confirm),
        "withdraw": (ResolutionRules._check_withdraw, ResolutionRules._apply_withdraw),
        "transfer_ownership": (OwnershipRules._check_transfer, OwnershipRules._apply_transfer),
        "offer_goodwill": (GoodwillRules._check_offer_goodwill, GoodwillRules._apply_offer_goodwill),
        "approve_goodwill": (GoodwillRules._check_approve_goodwill, GoodwillRules._apply_approve_goodwill),
        "record_feedback": (ResolutionRules._check_feedback, ResolutionRules._apply_feedback),
        "new_contact": (ContactRules._check_new_contact, ContactRules._apply_new_contact),
    }
