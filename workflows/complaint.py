"""ComplaintWorkflow: one durable workflow per customer complaint.

The workflow is the state machine and nothing else. The rules live in
workflows/case/ and workflows/rules.py (pure); I/O happens in activities,
called by name so this module never imports asyncpg.

Every action is an Update (validated; it answers with the CaseState once the
action is applied, its events durable in the history, and `wait_for_writes`
answers once they are in PostgreSQL) and a Signal of the same name (the same
rules; a rejection becomes one command_rejected event). How a message's payload
becomes an action, or a rejection, is workflows/messages.py.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.actions import Action
    from schemas.state import CaseOutcome, CaseState, ContinuedCase, TimelineEvent
    from workflows import messages, opening
    from workflows.case_writes import CaseWrites
    from workflows.lookups import look_up_for
    from workflows.alarm import Alarm
    from workflows import search_attributes as sa
    from workflows.case import Case
    from identity.assertion import Assertion
    from workflows.identity_check import CaseIdentity
    from workflows.letters import LetterPost
    from workflows.payload_keys import PayloadKeys
    from workflows.rules import Rejection
    from workflows.start_input import read_start

# A run continues as new after this many actions (Temporal allows 2,000 updates
# per run), or sooner when the server suggests it because the history is large.
MAX_ACTIONS_PER_RUN = 1_000


@workflow.defn(name="ComplaintWorkflow")
@messages.with_action_handlers
class ComplaintWorkflow:
    # Each message's actor assertion reaches its handler beside its payloads (identity/interceptors.py).
    takes_actor_assertions = True

    @workflow.init
    def __init__(self, intake: RawValue) -> None:
        self._case: Case | None = None
        self._intake_error: str | None = None
        self._runs = 1
        self._actions_this_run = 0
        self._search_attributes: dict[str, Any] = {}
        # Actions apply one at a time in arrival order, even when one waits on a roster lookup.
        self._action_lock = asyncio.Lock()
        # Actions begun and not yet applied or refused: the main loop issues no command meanwhile (_loop_has_work).
        self._actions_in_turn = 0
        # What is in PostgreSQL, and when the next write is due (workflows/case_writes.py).
        self._writes = CaseWrites()
        # The durable timers of the case's next clock instant and of a gathering's end (workflows/alarm.py).
        self._clock_alarm = Alarm("clocks")
        self._gather_alarm = Alarm("gathering")
        # The encryption keys this case reads signals under (workflows/payload_keys.py).
        self._keys = PayloadKeys()
        self._keys.meet(intake)
        # The letters on their way to the customer (workflows/letters.py).
        self._post = LetterPost()
        # Who is acting, proven or taken as written (workflows/identity_check.py); the intake as its assertion covers it.
        self._identity = CaseIdentity()
        start = read_start(intake)
        self._intake_payload = start.payload
        self._intake_error = start.error
        self._case = start.case
        if start.continued is not None:
            self._resume(start.continued)

    def _resume(self, continued: ContinuedCase) -> None:
        carried = continued.continued_case
        self._case = Case.resume(carried)
        self._keys.known.update(continued.key_ids)
        if workflow.info().continued_run_id is not None:  # the case's own continue-as-new, not a caller's start
            self._identity.mode = continued.identity_mode or "trusted-callers"
        self._writes = CaseWrites(carried.persisted_seq)
        self._runs = carried.runs + 1

    @workflow.run
    async def run(self, intake: RawValue) -> CaseOutcome:
        case = self._opened_case()
        if workflow.info().continued_run_id is None:
            # Any start from outside proves its actor, a continued case's included: a caller could send one.
            verified_by = await self._identity.check_start(self._intake_payload)
            if verified_by is not None and case.policy is None:  # a new case: its intake's events
                for event in case.timeline:
                    event.data["verified_by"] = verified_by
        if case.policy is None:
            await self._open(case)
        await self._run_until_run_ends()
        if not case.closed:
            carried = case.carry(self._writes.persisted_seq, self._runs)
            info = workflow.info()
            self._log(
                "continuing as new",
                actor="system:engine",
                run=self._runs,
                actions=self._actions_this_run,
                events=case.event_count,
                events_carried=len(carried.timeline),
                request_ids=len(carried.applied_requests),
                history_events=info.get_current_history_length(),
                history_bytes=info.get_current_history_size(),
                suggested=info.is_continue_as_new_suggested(),
            )
            workflow.continue_as_new(ContinuedCase(continued_case=carried, key_ids=self._keys.ids(), identity_mode=self._identity.mode))
        outcome = case.outcome()
        self._log("case finished", actor="system:engine", outcome=outcome.outcome, feedback=outcome.satisfaction)
        return outcome

    async def _open(self, case: Case) -> None:
        self._log("complaint received", actor=f"customer:{case.state.customer.customer_id}")
        await opening.open_case(case)
        self._log("owner assigned", actor="system:routing", owner=case.state.owner)

    # --- queries -----------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> CaseState:
        return self._opened_case().state

    @workflow.query(name="timeline")
    def timeline(self) -> list[TimelineEvent]:
        """The events this run holds, in seq order: the whole timeline, unless the case continued as
        new, when it starts with the carried tail (first seq > 1) and the earlier events are in
        PostgreSQL's case_events (ComplaintClient.timeline and `starter.py show` join the two)."""
        return self._opened_case().timeline

    @workflow.query(name="outcome")
    def outcome(self) -> CaseOutcome | None:
        """The outcome once the case is closed (the workflow result comes when the feedback window ends)."""
        case = self._opened_case()
        return case.outcome() if case.closed else None

    # --- actions: an Update and a Signal of each name (messages.with_action_handlers) ---

    @workflow.signal(dynamic=True)
    async def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal no action answers to is recorded, never silently dropped."""
        if self._case is None:
            return
        self._actions_this_run += 1
        payloads, _ = messages.split_assertion(args)
        actor = messages.raw_actor(payloads[0], self._keys) if payloads else "unknown"
        action = messages.storable(name, 100)
        self._case.reject(action, actor, messages.unknown_action(name), workflow.now())
        self._log("signal rejected", actor=actor, action=action, reason_code="UnknownAction")

    @workflow.update(dynamic=True)
    async def unknown_update(self, name: str, args: Sequence[RawValue]) -> CaseState:
        raise ApplicationError(messages.unknown_action(name), type="InvalidCommand", non_retryable=True)

    @unknown_update.validator
    def validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        """An update no action answers to is an invalid command like any other (nothing is recorded)."""
        raise ApplicationError(messages.unknown_action(name), type="InvalidCommand", non_retryable=True)

    def _validate_update(self, name: str, payload: RawValue, assertion: Assertion) -> None:
        try:
            action = messages.parse_action(name, payload)
            self._identity.require_assertion(name, assertion)
            case = self._opened_case()
            if case.assigned:
                case.check(name, action, workflow.now(), roster_unknown_ok=True)
        except Rejection as rejection:
            raise ApplicationError(rejection.message, type=rejection.kind, non_retryable=True)

    async def _run_update(self, name: str, payload: RawValue, assertion: Assertion) -> CaseState:
        self._actions_this_run += 1
        self._actions_in_turn += 1
        try:
            action, data = messages.read_action(name, payload)
            async with self._action_lock:
                await self._apply_in_turn(name, action, data, assertion)
        except Rejection as rejection:
            raise ApplicationError(rejection.message, type=rejection.kind, non_retryable=True)
        finally:
            self._actions_in_turn -= 1
        return self._opened_case().state

    async def _wait_for_writes(self, *payloads: RawValue) -> int:
        """Answers once every event up to seq (default: every event so far) is in PostgreSQL: read your writes.

        Returns the last seq written (at least seq). Changes nothing, records nothing.
        """
        return await self._writes.wait_for(self._seq_to_wait_for(payloads))

    def _validate_wait_for_writes(self, *payloads: RawValue) -> None:
        self._seq_to_wait_for(payloads)

    # Its payload arrives raw, as an action's does: a seq the SDK cannot convert must be refused, not fail the task.
    wait_for_writes = workflow.update(name="wait_for_writes")(messages.takes_one_raw_payload(_wait_for_writes, int))
    wait_for_writes.validator(messages.takes_one_raw_payload(_validate_wait_for_writes, None))
    del _wait_for_writes, _validate_wait_for_writes  # one name per handler for the SDK

    def _seq_to_wait_for(self, payloads: Sequence[RawValue]) -> int:
        case = self._opened_case()
        seq = messages.optional_seq(payloads)
        if seq is None:
            return case.event_count
        if not 0 <= seq <= case.event_count:
            raise ApplicationError(
                f"wait_for_writes: seq must be between 0 and the case's last event, {case.event_count} (got {seq})",
                type="InvalidCommand",
                non_retryable=True,
            )
        return seq

    def receive_start_assertion(self, assertion: Assertion) -> None:
        """The start's actor assertion, from identity.interceptors, before the run begins."""
        self._identity.start_assertion = assertion

    async def _run_signal(self, name: str, payload: RawValue, assertion: Assertion) -> None:
        if self._case is None:
            return  # the workflow is failing for a bad intake; nothing to record
        self._actions_this_run += 1
        self._actions_in_turn += 1
        try:
            async with self._action_lock:
                await self._keys.learn(payload)
                action, data = messages.read_action(name, payload, self._keys)
                await self._apply_in_turn(name, action, data, assertion)
        except Rejection as rejection:
            self._reject_signal(name, payload, rejection.message, rejection.kind, rejection.fields)
        except ActivityError as error:
            self._reject_signal(name, payload, f"could not check the roster: {error.cause or error}", "RosterUnavailable")
        except Exception as error:
            # A signal handler must never raise: an unexpected error becomes a
            # recorded rejection, so the case keeps running and the fault is visible.
            self._reject_signal(name, payload, f"internal error: {type(error).__name__}: {error}", "InternalError")
            workflow.logger.exception("signal handler failed", extra={"action": name})
        finally:
            self._actions_in_turn -= 1

    def _reject_signal(
        self, name: str, payload: RawValue, reason: str, code: str, fields: tuple[str, ...] = ()
    ) -> None:
        """One command_rejected event saying why; the log line says only the kind and the fields at fault,
        since the reason may quote what the case knows (a fact's value)."""
        actor = messages.raw_actor(payload, self._keys)
        self._opened_case().reject(name, actor, messages.storable(reason), workflow.now())
        self._log("signal rejected", actor=actor, action=name, reason_code=code, fields=list(fields))

    async def _apply_in_turn(
        self, name: str, action: Action, data: dict[str, Any], assertion: Assertion
    ) -> list[TimelineEvent]:
        """Apply an action in its turn (under the action lock): its actor proven first (in signed mode), then the
        roster records its rules read, then the rules; data is the JSON the action was read from."""
        verified_by = await self._identity.check_action(name, data, action.actor, assertion)
        case = self._opened_case()
        # Actions wait for the owner to be assigned (the first activity) before the rules apply.
        await workflow.wait_condition(lambda: case.assigned)
        await look_up_for(case, name, action)
        # Checking and applying happen with no await between them, so concurrent
        # handlers always see each other's effects.
        now = workflow.now()
        joins_pending_batch = self._writes.joins_pending_batch(case)
        events = case.apply(name, action, now)
        if not events:
            return events
        if verified_by is not None:  # the audit trail shows who vouched for the actor (workflows/identity_check.py)
            for event in events:
                event.data["verified_by"] = verified_by
        self._writes.action_applied(now, joins_pending_batch, case.closed)
        self._keep_alarms()
        self._post.send_due(case, self._keep_alarms)  # the owner's letter, sent by email
        self._log("action applied", actor=action.actor, action=name, seq=events[-1].seq)
        return events

    # --- clocks and persistence --------------------------------------------

    async def _run_until_run_ends(self) -> None:
        """Fire clocks on durable timers and write every event to PostgreSQL, until the run ends.

        One loop does both, so escalations and actions are written in timeline
        order by a single writer. It sleeps on a durable timer until the next
        escalation instant (no polling), and wakes early when an action adds
        events or moves that instant. A run ends when the case closes or should
        continue as new, once every handler has finished and every event is written.
        """
        case = self._opened_case()
        self._keep_alarms()  # the opening set the clocks
        self._post.send_due(case, self._keep_alarms)  # and the letters on receipt (or a continued run's)
        while True:
            if not self._loop_has_work():
                await workflow.wait_condition(self._loop_has_work)
            # Clocks fire, and a gathering ends, when their alarm rings, never merely because a task
            # came late enough: what the loop does then follows from the history's timer events.
            clocks_due, gathering_over = self._clock_alarm.rang(), self._gather_alarm.rang()
            self._clock_alarm.hear()
            self._gather_alarm.hear()
            fired = case.advance_clocks(workflow.now()) if clocks_due else []
            if clocks_due:  # the next instant may be a letter's, which moves it without an event
                self._keep_alarms()
                self._post.send_due(case, self._keep_alarms)  # a letter whose time has come
            if fired:
                self._writes.gather_until = None  # escalations and their notifications are never held
                self._keep_alarms()
                for event in fired:
                    if event.kind == "escalated":
                        self._log(
                            "escalated",
                            actor=event.actor,
                            clock=event.data.get("clock"),
                            level=event.data.get("level"),
                            recipient=event.data.get("recipient"),
                        )
            if self._writes.unwritten(case) and self._writes.due(case, gathering_over, self._run_should_end):
                await self._flush()
            elif self._run_should_end() and workflow.all_handlers_finished():
                return

    def _loop_has_work(self) -> bool:
        """Events to write, the run's end, or an alarm that rang: the main loop's reasons to wake.

        None while an action is in its turn. An action's identity check is a local activity, and the SDK
        hands a live worker its result at times a replay does not (with the next task, say, beside an
        activity's completion): were the loop to schedule a write between two actions' checks, the
        replay would number its commands otherwise and the case would not replay (TMPRL1100). Waiting
        for the actions in turn puts their commands first, however the results come.
        """
        if self._actions_in_turn:
            return False
        case = self._opened_case()
        return (
            (self._writes.unwritten(case) and self._writes.due(case, False, self._run_should_end))
            or (self._run_should_end() and workflow.all_handlers_finished())
            or self._clock_alarm.rang()
            or self._gather_alarm.rang()
        )

    def _keep_alarms(self) -> None:
        """Point the alarms at the case's next clock instant and at the end of a gathering.

        Called right where either instant can move (an action applied, clocks fired, a write begun,
        the opening done), so the timers a task starts or cancels follow from the task's own jobs,
        however the SDK hands them over (workflows/alarm.py).
        """
        self._clock_alarm.set(self._opened_case().next_wake())
        self._gather_alarm.set(self._writes.gather_until)

    def _run_should_end(self) -> bool:
        case = self._opened_case()
        if not self._post.idle:
            return False  # a letter's answer is still to come (workflows/letters.py)
        if case.finished(workflow.now()):
            return True
        if case.closed:
            return False  # the feedback window is open: feedback or a new contact may still come
        return self._actions_this_run >= MAX_ACTIONS_PER_RUN or workflow.info().is_continue_as_new_suggested()

    async def _flush(self) -> None:
        case = self._opened_case()
        # The search attributes follow the case once per write, not once per action: each upsert is
        # a visibility write on the server, and the actions a write batches need only the last.
        self._sync_search_attributes()
        batch = self._writes.take_batch(case)
        self._keep_alarms()
        await self._writes.write(batch, case.state)

    # --- helpers -----------------------------------------------------------

    def _opened_case(self) -> Case:
        if self._case is None:
            raise ApplicationError(self._intake_error or "no case", type="InvalidIntake", non_retryable=True)
        return self._case

    def _sync_search_attributes(self) -> None:
        updates = sa.changes(sa.of_case(self._opened_case().state), self._search_attributes)
        if updates:
            workflow.upsert_search_attributes(updates)

    def _log(self, message: str, **fields: Any) -> None:
        case = self._case
        extra = {"complaint_id": case.state.complaint_id if case else None, **fields}
        workflow.logger.info(message, extra=extra)
