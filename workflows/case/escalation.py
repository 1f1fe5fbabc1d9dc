"""Clocks and escalation: every deadline the policy sets is watched, and a missed one climbs the chain."""

from __future__ import annotations

from datetime import datetime

from schemas.common import Status
from schemas.policy import ClockSpec
from schemas.state import Clock, ClockKind, Promise, RecipientRole, TimelineEvent
from workflows import clocks
from workflows.case.common import ENGINE_ACTOR, ESCALATION_ACTOR

CLOCK_LABELS: dict[str, str] = {
    "acknowledge": "acknowledging the complaint",
    "first_response": "the first response to the customer",
    "customer_update": "updating the customer",
    "resolution": "resolving the complaint",
    "confirmation": "the customer's confirmation window",
    "acceptance": "the new owner's acceptance of the transfer (the current owner stays accountable meanwhile)",
    "goodwill_approval": "the decision on a goodwill gesture above the owner's authority",
}


class EscalationRules:
    """Starting, stopping and firing clocks, escalating and pausing them; a part of Case (aggregate.py)."""

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
        if (letter_due := self._scheduled_letters_wake()) is not None:
            moments.append(letter_due)  # a letter the engine sends a while after receipt (letters.py)
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
        if not self.closed and self.policy is not None:
            self._letters_due(now)
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
        if clock.kind == "customer_update" and clock.level == 1:
            self._letters_on("update_due", now)  # the policy's update letter, drafted for the owner
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
