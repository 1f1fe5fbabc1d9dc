"""ComplaintWorkflow: one durable workflow per customer complaint.

The workflow is the state machine and nothing else. The rules live in
workflows/case.py and workflows/rules.py (pure); I/O happens in activities,
called by name so this module never imports asyncpg.

Every action is an Update (validated, returns CaseState after the action is
persisted) and a Signal of the same name (the same rules; a rejection becomes
one command_rejected event). Payloads arrive as RawValue and are validated
here, because a payload the SDK cannot decode into a typed parameter would
fail the workflow task (run, updates) or be dropped silently (signals).
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from schemas.actions import ACTIONS, Action
    from schemas.activity_io import (
        AssignOwnerInput,
        CustomerHistoryInput,
        OpenCaseInput,
        OpenedCase,
        RecordCaseEvents,
        WriteCaseEvents,
    )
    from schemas.errors import describe_validation_error
    from schemas.intake import ComplaintIntake
    from schemas.policy import ResolvedPolicy, ResolvePolicyInput
    from schemas.roster import AgentRef, AgentWorkload, Assignment
    from schemas.state import CaseOutcome, CaseState, ContinuedCase, CustomerHistory, TimelineEvent
    from workflows import pacing
    from workflows import search_attributes as sa
    from workflows.case import Case
    from workflows.rules import Rejection, check_received_at

WORKFLOW_ID_PREFIX = "complaint-"

# Activities retry until they succeed: a case never loses an event because the
# database was briefly away. The backoff is capped so recovery is quick.
_DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# A batch write takes milliseconds; a worker that dies mid-write is noticed after this and the write retried.
_DB_TIMEOUT = timedelta(seconds=10)
_POLICY_TIMEOUT = timedelta(seconds=10)
# A run continues as new after this many actions (Temporal allows 2,000 updates
# per run), or sooner when the server suggests it because the history is large.
MAX_ACTIONS_PER_RUN = 1_000
# workflow.patched id: since this change a closed case runs on through its policy's feedback window
# (feedback, reopening contacts); a history recorded before it completed at the close.
FEEDBACK_WINDOW_PATCH = "feedback-window"
# workflow.patched id: since this change one record_case_events write carries at most
# FLUSH_MAX_EVENTS events and about FLUSH_MAX_BYTES of them (an activity input must stay under
# Temporal's 2 MB payload limit, however many signals arrived during the previous write);
# a history recorded before it wrote whatever had accumulated in one activity.
BOUNDED_WRITES_PATCH = "bounded-event-writes"
# workflow.patched id: since this change a case whose state is full (rules.STATE_BUDGET_BYTES) refuses the
# actions that would grow it. Asked only when the budget bites, so a history recorded before it (which
# accepted such an action) replays as it ran, and a case that never fills up carries no marker.
STATE_BUDGET_PATCH = "state-budget"
FLUSH_MAX_EVENTS = 500
FLUSH_MAX_BYTES = 512 * 1024
# workflow.patched id: since this change the events are written by write_case_events, a local
# activity, inside the workflow task that made them: an update is answered in one workflow task
# instead of two plus an activity task (README, "Performance"). A history recorded before it
# scheduled record_case_events, a regular activity, and a run that began so keeps doing that.
LOCAL_WRITES_PATCH = "local-event-writes"
# workflow.patched id: since this change the opening (resolve_policy, then assign_owner and
# load_customer_history) runs as local activities in the case's first workflow task, so the first
# action no longer waits for three activity tasks and two more workflow tasks. A history recorded
# before it scheduled them as regular activities.
LOCAL_OPENING_PATCH = "local-opening"
# Both local-activity changes are WITHDRAWN for new executions: under the crash drills (kill -9 of the
# worker mid-task) cases that used them stopped replaying (local-activity markers and the patch markers
# themselves out of step with a replay). A new run takes the regular activities and records no marker;
# only a replayed history that recorded a marker keeps the local path, for the whole run, so those
# histories (tests/fixtures/histories/*_local_*) still replay. See _withdrawn_patch.
# workflow.patched id, asked once in a run's first workflow task, for two changes of fewer round trips
# (README, "Performance"), both crash-safe (regular activities):
# - a case opens with one activity, open_case (the policy, the owner and the customer's other cases
#   in one activity task), where it took three (resolve_policy, then assign_owner and
#   load_customer_history) and two more workflow tasks;
# - an update answers with the state as soon as its action is applied (its events are in the
#   workflow's history, durable) and the events reach PostgreSQL in the next write, batched with
#   whatever else came meanwhile; `wait_for_writes` (ComplaintClient.wait_written, or
#   read_your_writes=True) waits for them.
# One patch, not two: each patch marker costs an upsert of TemporalChangeVersion (a visibility write).
# A run that began before it opened with three activities and answers each update after its write,
# to its end; its next run (continue-as-new) takes the new way.
LEAN_ROUND_TRIPS_PATCH = "open-in-one-answer-first"
# workflow.patched id, asked first in a run's first workflow task: since this change a case gathers
# the writes of actions that come in a burst (workflows/pacing.py), and this one marker stands for
# LEAN_ROUND_TRIPS_PATCH and FEEDBACK_WINDOW_PATCH too, which a run that has it never asks: one
# TemporalChangeVersion upsert a run instead of two. A run that began before it asks those two as before.
PACED_WRITES_PATCH = "paced-writes"
# A failed local write is retried after a durable timer, never inside the workflow task: the task
# completes, so a worker asked to stop (or one that dies) never holds it while the database is away.
_LOCAL_RETRY_THRESHOLD = timedelta(milliseconds=500)


def _withdrawn_patch(patch_id: str) -> bool:
    """A patch no new execution takes: True only while replaying a history that recorded its marker.

    Live (not replaying), the old branch is taken and no marker is recorded, so a later replay of
    the same point finds no marker either and takes the old branch again: deterministic both ways.
    """
    if not workflow.unsafe.is_replaying():
        return False
    return workflow.patched(patch_id)


def _state_budget_in_force() -> bool:
    return workflow.patched(STATE_BUDGET_PATCH)


def _raise_if_unknown_policy(error: ActivityError) -> None:
    """An intake naming a policy the worker does not know fails the case, saying so (never retried)."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type == "UnknownPolicy":
        raise ApplicationError(f"invalid complaint intake: {cause.message}", type="InvalidIntake", non_retryable=True)


def _routing_facts(case: Case) -> dict[str, Any]:
    """What routing needs of a case, for the opening activities' inputs."""
    state = case.state
    return {
        "complaint_id": state.complaint_id,
        "workflow_id": workflow.info().workflow_id,
        "customer_id": state.customer.customer_id,
        "category": state.category,
        "severity": state.severity,
        "summary": state.summary,
        "received_at": state.received_at,
        "received_by": state.received_by,
    }


def workflow_id_for(complaint_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{complaint_id}"


def _decode(raw: RawValue) -> Any:
    return workflow.payload_converter().from_payload(raw.payload)


class _PayloadCount:
    """Stands for the payload of a message that carried none, or several: an action takes exactly one."""

    def __init__(self, count: int) -> None:
        self.count = count


def _one_payload(payloads: Sequence[Any]) -> Any:
    return payloads[0] if len(payloads) == 1 else _PayloadCount(len(payloads))


def _takes_one_raw_payload(fn: Callable, returns: Any) -> Callable:
    """Declare fn, which takes any number of payloads, to the SDK as taking one RawValue.

    The SDK decodes a message's payloads by the handler's declared parameters and calls
    the handler with as many as were sent: a handler taking exactly one would raise
    TypeError for a message with none or several, failing every workflow task of the
    case (a signal) or answering with a TypeError (an update). Taking *payloads, the
    case rejects such a message like any bad payload.
    """
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("payload", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=RawValue),
        ],
        return_annotation=returns,
    )
    fn.__annotations__ = {"payload": RawValue, "return": returns}
    return fn


def _storable(text: str, limit: int | None = None) -> str:
    """Text from a message, made fit for the timeline: PostgreSQL stores no NUL character."""
    text = text.replace("\x00", "\\x00")
    return text if limit is None else text[:limit]


def _parse_action(name: str, raw: RawValue) -> Action:
    """Decode and validate an action payload, or raise Rejection saying what is wrong."""
    if isinstance(raw, _PayloadCount):
        raise Rejection(
            "InvalidCommand", f"{name}: an action takes exactly one payload, a JSON object (got {raw.count} payloads)"
        )
    try:
        data = _decode(raw)
    except Exception:
        raise Rejection("InvalidCommand", f"{name}: the payload is not JSON")
    if not isinstance(data, dict):
        raise Rejection("InvalidCommand", f"{name}: the payload must be a JSON object (got {type(data).__name__})")
    try:
        return ACTIONS[name].model_validate(data)
    except ValidationError as error:
        raise Rejection("InvalidCommand", describe_validation_error(error, name))


def _raw_actor(raw: RawValue) -> str:
    """The actor named in a payload, for the command_rejected event, whatever else is wrong with it."""
    try:
        actor = _decode(raw).get("actor")
    except Exception:
        return "unknown"
    return _storable(actor, 80) if isinstance(actor, str) and actor else "unknown"


def _unknown_action(name: str) -> str:
    return f"unknown action {_storable(name, 100)!r}; actions are: {', '.join(ACTIONS)}"


def _update_handler(name: str):
    async def handler(self, *payloads: RawValue) -> CaseState:
        return await self._run_update(name, _one_payload(payloads))

    def validator(self, *payloads: RawValue) -> None:
        self._validate_update(name, _one_payload(payloads))

    _takes_one_raw_payload(handler, CaseState)
    _takes_one_raw_payload(validator, None)
    handler.__name__ = f"{name}_update"
    validator.__name__ = f"validate_{name}"
    update = workflow.update(name=name)(handler)
    update.validator(validator)
    return update


def _signal_handler(name: str):
    async def handler(self, *payloads: RawValue) -> None:
        await self._run_signal(name, _one_payload(payloads))

    _takes_one_raw_payload(handler, None)
    handler.__name__ = f"{name}_signal"
    return workflow.signal(name=name)(handler)


@workflow.defn(name="ComplaintWorkflow")
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, intake: RawValue) -> None:
        self._case: Case | None = None
        self._intake_error: str | None = None
        self._persisted_seq = 0
        self._runs = 1
        self._actions_this_run = 0
        self._search_attributes: dict[str, Any] = {}
        # Actions apply one at a time in arrival order, even when one waits on a roster lookup.
        self._action_lock = asyncio.Lock()
        # Whether this case keeps running through its feedback window after closing (see FEEDBACK_WINDOW_PATCH).
        self._feedback_window: bool | None = None
        # Whether the opening's activities run locally (see LOCAL_OPENING_PATCH); decided in run().
        self._local_opening = False
        # Whether this run opens in one activity and answers updates before writing (LEAN_ROUND_TRIPS_PATCH); decided in run().
        self._lean = False
        # Whether this run writes its events with the local activity (see LOCAL_WRITES_PATCH); decided at the first write.
        self._local_writes: bool | None = None
        # Whether this run paces its writes (PACED_WRITES_PATCH); decided in run().
        self._paced = False
        # Pacing (workflows/pacing.py): until when the unwritten events may wait, the last event handed to a
        # write, the previous action's time, and how many callers wait for writes.
        self._gather_until: datetime | None = None
        self._claimed_seq = 0
        self._last_action_at: datetime | None = None
        self._writes_awaited = 0
        try:
            data = _decode(intake)
            if isinstance(data, dict) and "continued_case" in data:
                self._resume(ContinuedCase.model_validate(data))
                return
            parsed = ComplaintIntake.model_validate(data)
        except ValidationError as error:
            self._intake_error = describe_validation_error(error, "complaint intake")
        except Exception:
            self._intake_error = "invalid complaint intake: the input is not a JSON object"
        else:
            expected = workflow_id_for(parsed.complaint_id)
            if workflow.info().workflow_id != expected:
                self._intake_error = (
                    f"the workflow id must be {expected!r} for complaint_id {parsed.complaint_id!r} "
                    f"(got {workflow.info().workflow_id!r})"
                )
                return
            try:
                check_received_at(parsed.received_at, workflow.now())
            except Rejection as rejection:
                self._intake_error = f"invalid complaint intake: {rejection.message}"
                return
            self._case = Case.receive(parsed, workflow.now())
            self._case.budget_in_force = _state_budget_in_force

    def _resume(self, continued: ContinuedCase) -> None:
        carried = continued.continued_case
        self._case = Case.resume(carried)
        self._case.budget_in_force = _state_budget_in_force
        self._persisted_seq = carried.persisted_seq
        self._claimed_seq = carried.persisted_seq
        self._runs = carried.runs + 1

    @workflow.run
    async def run(self, intake: RawValue) -> CaseOutcome:
        case = self._opened_case()
        self._paced = workflow.patched(PACED_WRITES_PATCH)
        self._lean = self._paced or workflow.patched(LEAN_ROUND_TRIPS_PATCH)
        if self._paced:
            self._feedback_window = True
        unopened = case.policy is None and not case.assigned and case.state.customer_history is None
        if case.policy is None or not case.assigned or case.state.customer_history is None:
            self._local_opening = _withdrawn_patch(LOCAL_OPENING_PATCH)
        if unopened and not self._local_opening and self._lean:
            await self._open(case)
        else:
            await self._open_in_three(case)
        if not self._lean:
            self._sync_search_attributes()  # since LEAN_ROUND_TRIPS_PATCH, with each write (_flush)
        await self._run_until_run_ends()
        if not case.closed:
            carried = case.carry(self._persisted_seq, self._runs)
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
            workflow.continue_as_new(ContinuedCase(continued_case=carried))
        outcome = case.outcome()
        self._log("case finished", actor="system:engine", outcome=outcome.outcome, feedback=outcome.satisfaction)
        return outcome

    async def _open(self, case: Case) -> None:
        """The opening in one activity task (LEAN_ROUND_TRIPS_PATCH): policy, owner, the customer's other cases."""
        self._log("complaint received", actor=f"customer:{case.state.customer.customer_id}")
        try:
            opened = await workflow.execute_activity(
                "open_case",
                OpenCaseInput(
                    **_routing_facts(case),
                    policy=None if case.state.policy == "default" else case.state.policy,
                ),
                result_type=OpenedCase,
                start_to_close_timeout=_DB_TIMEOUT,
                retry_policy=_DB_RETRY,
            )
        except ActivityError as error:
            _raise_if_unknown_policy(error)
            raise
        now = workflow.now()
        case.adopt_policy(opened.policy, now)
        case.assign(opened.assignment, now)
        case.state.customer_history = opened.customer_history
        self._log("owner assigned", actor="system:routing", owner=case.state.owner)

    async def _open_in_three(self, case: Case) -> None:
        """The opening of histories recorded before LEAN_ROUND_TRIPS_PATCH (and of a run that began so)."""
        if case.policy is None:
            await self._adopt_policy(case)
        opening = []
        if not case.assigned:
            opening.append(self._assign_owner(case))
        if case.state.customer_history is None:
            opening.append(self._know_the_customer(case))
        await asyncio.gather(*opening)

    async def _adopt_policy(self, case: Case) -> None:
        """Copy the deadline policy into the case: editing the policy file never changes a running case.

        A local activity since LOCAL_OPENING_PATCH. (An earlier engine found
        workflow.now() after a local activity in the first workflow task to differ
        between the live run and replay; tests/test_local_writes.py replays the demo
        cases with no cache and compares every event's time with case_events.)
        """
        try:
            policy = await self._opening_activity(
                "resolve_policy",
                ResolvePolicyInput(
                    complaint_id=case.state.complaint_id,
                    policy=None if case.state.policy == "default" else case.state.policy,
                    severity=case.state.severity,
                    received_at=case.state.received_at,
                ),
                result_type=ResolvedPolicy,
                start_to_close_timeout=_POLICY_TIMEOUT,
                retry_policy=_DB_RETRY,
            )
        except ActivityError as error:
            _raise_if_unknown_policy(error)
            raise
        case.adopt_policy(policy, workflow.now())

    async def _know_the_customer(self, case: Case) -> None:
        """Load the customer's other cases into the state, for the owner's first look."""
        case.state.customer_history = await self._opening_activity(
            "load_customer_history",
            CustomerHistoryInput(complaint_id=case.state.complaint_id, customer_id=case.state.customer.customer_id),
            result_type=CustomerHistory,
            start_to_close_timeout=_DB_TIMEOUT,
            retry_policy=_DB_RETRY,
        )

    async def _assign_owner(self, case: Case) -> None:
        self._log("complaint received", actor=f"customer:{case.state.customer.customer_id}")
        assignment = await self._opening_activity(
            "assign_owner",
            AssignOwnerInput(**_routing_facts(case), policy=case.state.policy),
            result_type=Assignment,
            start_to_close_timeout=_DB_TIMEOUT,
            retry_policy=_DB_RETRY,
        )
        case.assign(assignment, workflow.now())
        self._log("owner assigned", actor="system:routing", owner=case.state.owner)

    def _opening_activity(self, name: str, arg: Any, *, result_type: Any, start_to_close_timeout: timedelta,
                          retry_policy: RetryPolicy) -> Any:
        """One activity of the opening: local since LOCAL_OPENING_PATCH, regular in histories from before."""
        if self._local_opening:
            return workflow.execute_local_activity(
                name, arg, result_type=result_type, start_to_close_timeout=start_to_close_timeout,
                retry_policy=retry_policy, local_retry_threshold=_LOCAL_RETRY_THRESHOLD,
            )
        return workflow.execute_activity(
            name, arg, result_type=result_type, start_to_close_timeout=start_to_close_timeout, retry_policy=retry_policy
        )

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

    # --- actions: an Update and a Signal of each name ----------------------

    accept_ownership = _update_handler("accept_ownership")
    accept_ownership_signal = _signal_handler("accept_ownership")
    contact_customer = _update_handler("contact_customer")
    contact_customer_signal = _signal_handler("contact_customer")
    add_note = _update_handler("add_note")
    add_note_signal = _signal_handler("add_note")
    request_info = _update_handler("request_info")
    request_info_signal = _signal_handler("request_info")
    provide_info = _update_handler("provide_info")
    provide_info_signal = _signal_handler("provide_info")
    make_promise = _update_handler("make_promise")
    make_promise_signal = _signal_handler("make_promise")
    keep_promise = _update_handler("keep_promise")
    keep_promise_signal = _signal_handler("keep_promise")
    renegotiate_promise = _update_handler("renegotiate_promise")
    renegotiate_promise_signal = _signal_handler("renegotiate_promise")
    propose_resolution = _update_handler("propose_resolution")
    propose_resolution_signal = _signal_handler("propose_resolution")
    confirm_resolution = _update_handler("confirm_resolution")
    confirm_resolution_signal = _signal_handler("confirm_resolution")
    withdraw = _update_handler("withdraw")
    withdraw_signal = _signal_handler("withdraw")
    transfer_ownership = _update_handler("transfer_ownership")
    transfer_ownership_signal = _signal_handler("transfer_ownership")
    offer_goodwill = _update_handler("offer_goodwill")
    offer_goodwill_signal = _signal_handler("offer_goodwill")
    approve_goodwill = _update_handler("approve_goodwill")
    approve_goodwill_signal = _signal_handler("approve_goodwill")
    record_feedback = _update_handler("record_feedback")
    record_feedback_signal = _signal_handler("record_feedback")
    # The contract's new_contact is a signal (from other systems); the update form tells the caller the outcome.
    new_contact = _update_handler("new_contact")
    new_contact_signal = _signal_handler("new_contact")

    @workflow.signal(dynamic=True)
    async def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal no action answers to is recorded, never silently dropped."""
        if self._case is None:
            return
        self._actions_this_run += 1
        actor = _raw_actor(args[0]) if args else "unknown"
        action = _storable(name, 100)
        reason = _unknown_action(name)
        self._case.reject(action, actor, reason, workflow.now())
        self._log("signal rejected", actor=actor, action=action, reason=reason)

    @workflow.update(dynamic=True)
    async def unknown_update(self, name: str, args: Sequence[RawValue]) -> CaseState:
        raise ApplicationError(_unknown_action(name), type="InvalidCommand", non_retryable=True)

    @unknown_update.validator
    def validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        """An update no action answers to is an invalid command like any other (nothing is recorded)."""
        raise ApplicationError(_unknown_action(name), type="InvalidCommand", non_retryable=True)

    def _validate_update(self, name: str, payload: RawValue) -> None:
        try:
            action = _parse_action(name, payload)
            case = self._opened_case()
            if case.assigned:
                case.check(name, action, workflow.now(), roster_unknown_ok=True)
        except Rejection as rejection:
            raise ApplicationError(rejection.message, type=rejection.kind, non_retryable=True)

    async def _run_update(self, name: str, payload: RawValue) -> CaseState:
        self._actions_this_run += 1
        try:
            action = _parse_action(name, payload)
            events = await self._apply(name, action)
        except Rejection as rejection:
            raise ApplicationError(rejection.message, type=rejection.kind, non_retryable=True)
        if events and not self._lean:
            # Histories from before the patch: the caller heard "done" only once the events were written.
            last_seq = events[-1].seq
            await workflow.wait_condition(lambda: self._persisted_seq >= last_seq)
        return self._opened_case().state

    @workflow.update(name="wait_for_writes")
    async def wait_for_writes(self, seq: int | None = None) -> int:
        """Answers once every event up to seq (default: every event so far) is in PostgreSQL: read your writes.

        Returns the last seq written (at least seq). Changes nothing, records nothing.
        """
        wanted = self._opened_case().event_count if seq is None else seq
        self._writes_awaited += 1  # a paced case writes at once while anyone waits
        try:
            await workflow.wait_condition(lambda: self._persisted_seq >= wanted)
        finally:
            self._writes_awaited -= 1
        return self._persisted_seq

    @wait_for_writes.validator
    def validate_wait_for_writes(self, seq: int | None = None) -> None:
        case = self._opened_case()
        if seq is not None and not 0 <= seq <= case.event_count:
            raise ApplicationError(
                f"wait_for_writes: seq must be between 0 and the case's last event, {case.event_count} (got {seq})",
                type="InvalidCommand",
                non_retryable=True,
            )

    async def _run_signal(self, name: str, payload: RawValue) -> None:
        if self._case is None:
            return  # the workflow is failing for a bad intake; nothing to record
        self._actions_this_run += 1
        try:
            action = _parse_action(name, payload)
            await self._apply(name, action)
        except Rejection as rejection:
            self._reject_signal(name, payload, rejection.message)
        except ActivityError as error:
            self._reject_signal(name, payload, f"could not check the roster: {error.cause or error}")
        except Exception as error:
            # A signal handler must never raise: an unexpected error becomes a
            # recorded rejection, so the case keeps running and the fault is visible.
            self._reject_signal(name, payload, f"internal error: {type(error).__name__}: {error}")
            workflow.logger.exception("signal handler failed", extra={"action": name})

    def _reject_signal(self, name: str, payload: RawValue, reason: str) -> None:
        actor = _raw_actor(payload)
        reason = _storable(reason)
        self._opened_case().reject(name, actor, reason, workflow.now())
        self._log("signal rejected", actor=actor, action=name, reason=reason)

    async def _apply(self, name: str, action: Action) -> list[TimelineEvent]:
        async with self._action_lock:
            return await self._apply_in_turn(name, action)

    async def _apply_in_turn(self, name: str, action: Action) -> list[TimelineEvent]:
        case = self._opened_case()
        # Actions wait for the owner to be assigned (the first activity) before the rules apply.
        await workflow.wait_condition(lambda: case.assigned)
        for agent_id in case.agents_to_look_up(name, action):
            agent = await workflow.execute_activity(
                "lookup_agent",
                agent_id,
                result_type=AgentRef | None,
                start_to_close_timeout=_DB_TIMEOUT,
                retry_policy=_DB_RETRY,
            )
            if agent is not None:
                case.learn_agent(agent)
        target = case.workload_to_look_up(name, action)
        if target is not None:
            workload = await workflow.execute_activity(
                "agent_workload",
                target,
                result_type=AgentWorkload,
                start_to_close_timeout=_DB_TIMEOUT,
                retry_policy=_DB_RETRY,
            )
            case.learn_workload(workload)
        # Checking and applying happen with no await between them, so concurrent
        # handlers always see each other's effects.
        now = workflow.now()
        joins_pending_batch = case.event_count > self._claimed_seq
        events = case.apply(name, action, now)
        if not events:
            return events
        if self._paced:
            self._gather_until = pacing.gather_until(
                applied_at=now,
                previous_action_at=self._last_action_at,
                joins_pending_batch=joins_pending_batch,
                pending_until=self._gather_until,
                closed=case.closed,
            )
            self._last_action_at = now
        if not self._lean:
            self._sync_search_attributes()
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
        while True:
            if case.closed and self._feedback_window is None:
                # Cases closed before the feedback window existed completed at once: replaying their
                # histories must do the same. Decided here, before sleeping, never inside a condition.
                self._feedback_window = workflow.patched(FEEDBACK_WINDOW_PATCH)
            wake_at = self._next_wake()
            await self._sleep_until(wake_at, lambda: self._next_wake() != wake_at)
            fired = case.advance_clocks(workflow.now())
            if fired:
                self._gather_until = None  # escalations and their notifications are never held
                if not self._lean:
                    self._sync_search_attributes()
                for event in fired:
                    if event.kind == "escalated":
                        self._log(
                            "escalated",
                            actor=event.actor,
                            clock=event.data.get("clock"),
                            level=event.data.get("level"),
                            recipient=event.data.get("recipient"),
                        )
            if self._has_unpersisted() and self._write_due():
                await self._flush()
            elif self._run_should_end() and workflow.all_handlers_finished():
                return
            elif wake_at is not None and wake_at <= workflow.now() and self._next_wake() == wake_at:
                # Nothing fired, nothing to write, the wake-up instant already passed and the schedule
                # is unchanged: the next turn would do exactly this again without yielding, a spin in
                # one workflow task (TMPRL1101 deadlock). It happens when a write held up past a closed
                # case's feedback window ends while an update still waits for it (drills/crash.py, DB
                # outage). Yield until a handler moves on instead. No task ever completed through this
                # branch before it existed, so every recorded history replays as it did.
                await workflow.wait_condition(
                    lambda: self._has_unpersisted()
                    or case.next_wake() != wake_at
                    or (self._run_should_end() and workflow.all_handlers_finished())
                )

    async def _sleep_until(self, wake_at: datetime | None, schedule_changed: Callable[[], bool]) -> None:
        """Wait for work: events to write, a changed schedule, the run's end, or wake_at (a durable timer)."""

        def work_waiting() -> bool:
            return (
                (self._has_unpersisted() and self._write_due(on_its_timer=False))
                or schedule_changed()
                or (self._run_should_end() and workflow.all_handlers_finished())
            )

        if work_waiting():
            return  # no timer for work already here
        if wake_at is None:
            await workflow.wait_condition(work_waiting)
            return
        remaining = (wake_at - workflow.now()).total_seconds()
        if remaining <= 0:
            return
        try:
            # Temporal timers have millisecond resolution: never ask for less, never fire early.
            await workflow.wait_condition(work_waiting, timeout=max(remaining, 0.001))
        except asyncio.TimeoutError:
            pass

    def _run_should_end(self) -> bool:
        case = self._opened_case()
        if case.closed and self._feedback_window is False:
            return True
        if case.finished(workflow.now()):
            return True
        if case.closed:
            return False  # the feedback window is open: feedback or a new contact may still come
        return self._actions_this_run >= MAX_ACTIONS_PER_RUN or workflow.info().is_continue_as_new_suggested()

    def _has_unpersisted(self) -> bool:
        return self._persisted_seq < self._opened_case().event_count

    def _write_due(self, on_its_timer: bool = True) -> bool:
        """Whether the unwritten events go now: always, unless a paced case is gathering a burst.

        A gathering's end is its timer's to tell (on_its_timer=False while sleeping on it): were a
        task that comes after the end but before the timer's firing to end the wait, the timer
        would be canceled after it fired, which the time-skipping test server cannot take
        (temporalio/sdk-java#3088) and a real server takes as one more task.
        """
        if self._gather_until is None:
            return True
        return pacing.write_due(
            now=workflow.now() if on_its_timer else None,
            until=self._gather_until,
            writes_awaited=self._writes_awaited > 0,
            closed=self._opened_case().closed,
            run_ending=self._run_should_end(),
        )

    def _next_wake(self) -> datetime | None:
        """The case's next clock instant, or sooner the end of a burst's gathering while events wait for it."""
        wake_at = self._opened_case().next_wake()
        if self._gather_until is None or not self._has_unpersisted():
            return wake_at
        return self._gather_until if wake_at is None else min(wake_at, self._gather_until)

    def _next_batch(self) -> list[TimelineEvent]:
        """The events to write next: all not yet written, bounded since BOUNDED_WRITES_PATCH.

        workflow.patched is asked only when the bound would cut the batch, so a
        history that never needed it carries no marker and replays either way.
        """
        unwritten = self._opened_case().events_after(self._persisted_seq)
        count, size = 0, 0
        for event in unwritten[:FLUSH_MAX_EVENTS]:
            size += len(event.model_dump_json())
            if count and size > FLUSH_MAX_BYTES:
                break
            count += 1
        if count < len(unwritten) and workflow.patched(BOUNDED_WRITES_PATCH):
            return unwritten[:count]
        return unwritten

    async def _flush(self) -> None:
        case = self._opened_case()
        if self._lean:
            # The search attributes follow the case once per write, not once per action: each upsert is
            # a visibility write on the server, and the actions a write batches need only the last.
            self._sync_search_attributes()
        batch = self._next_batch()
        self._gather_until = None
        self._claimed_seq = batch[-1].seq
        info = workflow.info()
        if self._local_writes is None:
            self._local_writes = _withdrawn_patch(LOCAL_WRITES_PATCH)  # once per run, then kept
        if self._local_writes:
            await workflow.execute_local_activity(
                "write_case_events",
                WriteCaseEvents(
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                    events=batch,
                    state=case.state,
                    committed_seq=self._persisted_seq,
                    fence=info.get_current_history_length(),
                ),
                start_to_close_timeout=_DB_TIMEOUT,
                retry_policy=_DB_RETRY,
                local_retry_threshold=_LOCAL_RETRY_THRESHOLD,
            )
        else:
            await workflow.execute_activity(
                "record_case_events",
                RecordCaseEvents(workflow_id=info.workflow_id, run_id=info.run_id, events=batch, state=case.state),
                start_to_close_timeout=_DB_TIMEOUT,
                retry_policy=_DB_RETRY,
            )
        self._persisted_seq = batch[-1].seq

    # --- helpers -----------------------------------------------------------

    def _opened_case(self) -> Case:
        if self._case is None:
            raise ApplicationError(self._intake_error or "no case", type="InvalidIntake", non_retryable=True)
        return self._case

    def _sync_search_attributes(self) -> None:
        state = self._opened_case().state
        wanted: dict[str, Any] = {
            sa.STATUS.name: state.status,
            sa.OWNER.name: state.owner,
            sa.SEVERITY.name: state.severity,
            sa.CATEGORY.name: state.category,
            sa.CUSTOMER.name: state.customer.customer_id,
            sa.ESCALATION_LEVEL.name: state.escalation_level,
            sa.NEXT_DEADLINE.name: state.next_deadline,
        }
        updates: list[SearchAttributeUpdate] = []
        for key in sa.ALL:
            value = wanted[key.name]
            if self._search_attributes.get(key.name, ...) == value:
                continue
            self._search_attributes[key.name] = value
            updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)

    def _log(self, message: str, **fields: Any) -> None:
        case = self._case
        extra = {"complaint_id": case.state.complaint_id if case else None, **fields}
        workflow.logger.info(message, extra=extra)
