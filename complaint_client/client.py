"""ComplaintClient: a thin typed layer over the Temporal client.

Every message is a model from schemas/, so a support system gets validation
errors before anything is sent, and typed state back.
"""

from __future__ import annotations

import hashlib

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from complaint_client.errors import CommandRejected, IncompleteTimeline, rejection
from complaint_client.fleet import WORKFLOW_TYPE, CaseSummary, case_summary, list_query
from complaint_client.messages import validated, validated_action
from complaint_client.timeline import join_timeline, stored_events
from config import DEFAULT_TASK_QUEUE
from schemas import Action, CaseOutcome, CaseState, ComplaintIntake, TimelineEvent
from schemas.door import DoorOutcome, DoorResult, DoorStart
from schemas.errors import QUERY_DEFERRED_MESSAGE
from workflows import problem_door
from workflows.start_input import workflow_id_for

# How long a query the worker deferred is asked again (workflow_runner.py): the case's workflow task
# reaches a live worker within the sticky queue's 10 s schedule-to-start timeout after a restart.
QUERY_DEFERRED_PATIENCE = timedelta(seconds=30)


@dataclass(frozen=True)
class StartResult:
    complaint_id: str  # the case that now holds the contact: the intake's own, unless it joined or reopened another
    workflow_id: str
    run_id: str | None  # opened: the new case's first run
    created: bool  # True only when a case was opened: False when the contact joined a case or its id already was one
    owner: str | None = None  # None when routing had not assigned one within the wait
    outcome: DoorOutcome = "opened"  # opened, joined, reopened or existing (schemas/door.py)
    contact_id: str | None = None  # the intake's complaint_id (the caller's own reference)
    related_case: str | None = None  # opened: the problem's earlier case, closed past its feedback window
    door_workflow_id: str | None = None  # the problem door that decided (None for start_case)


def update_id(action_name: str, model: Action) -> str | None:
    """The Update's id for an action with a request_id: an exact resend is the same Update (Temporal answers it
    again), while the same request_id with another payload is a new one, which the case refuses (InvalidCommand)."""
    if model.request_id is None:
        return None
    digest = hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:16]
    return f"{action_name}/{model.request_id}/{digest}"


class ComplaintClient:
    def __init__(
        self, client: Client, task_queue: str = DEFAULT_TASK_QUEUE, *, database: Any = None, read_your_writes: bool = False
    ) -> None:
        """database: an asyncpg pool (or connection) on the engine's PostgreSQL, for the complete
        timeline of a case that continued as new (`timeline`); nothing else needs it.

        read_your_writes: `act` returns only once the action's events are in PostgreSQL too (one more
        update per action, `wait_for_writes`), for callers that read case_events or cases next. Without
        it an update answers as soon as the case applied the action (its events are durable in the
        workflow's history) and they reach PostgreSQL in the case's next write, milliseconds later.
        """
        self.client = client
        self.task_queue = task_queue
        self.database = database
        self.read_your_writes = read_your_writes

    # --- starting ----------------------------------------------------------

    async def start(
        self, intake: ComplaintIntake | dict[str, Any], *, wait_for_owner: timedelta | None = timedelta(seconds=10)
    ) -> StartResult:
        """Report a complaint through its problem's door: one case per problem (README, "One case per problem").

        The contact opens a case, joins the customer's open case about the same
        category (contact_received), reopens it if it closed within its feedback
        window, or opens a new case linked to it (related_case) after that; a
        complaint_id that is already a case is never started again (`existing`).
        For an opened case, waits (up to wait_for_owner) until routing has named
        the accountable owner, so the caller can tell the customer who owns it.
        """
        intake = validated(ComplaintIntake, intake, "complaint intake")
        door = await self.open_or_join(intake)
        owner = door.owner
        if door.outcome == "opened" and owner is None and wait_for_owner:
            owner = await self.wait_for_owner(door.complaint_id, wait_for_owner)
        return StartResult(
            complaint_id=door.complaint_id,
            workflow_id=workflow_id_for(door.complaint_id),
            run_id=door.run_id,
            created=door.outcome == "opened",
            owner=owner,
            outcome=door.outcome,
            contact_id=intake.complaint_id,
            related_case=door.related_case,
            door_workflow_id=problem_door.door_id(intake.customer.customer_id, intake.category),
        )

    async def open_or_join(self, intake: ComplaintIntake | dict[str, Any]) -> DoorResult:
        """The door's decision for one intake (update-with-start on the problem's door).

        Retried once when the door's run completed (idle) just as the update
        reached it: the retry starts a fresh run. A refused intake raises CommandRejected.
        """
        intake = validated(ComplaintIntake, intake, "complaint intake")
        try:
            return await self._through_the_door(intake)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        return await self._through_the_door(intake)

    async def _through_the_door(self, intake: ComplaintIntake) -> DoorResult:
        customer_id, category = intake.customer.customer_id, intake.category
        door = WithStartWorkflowOperation(
            problem_door.WORKFLOW_TYPE,
            DoorStart(customer_id=customer_id, category=category),
            id=problem_door.door_id(customer_id, category),
            task_queue=self.task_queue,
            # Two systems reporting the same problem at once meet in one door run.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            return await self.client.execute_update_with_start_workflow(
                problem_door.UPDATE_NAME, intake, start_workflow_operation=door, result_type=DoorResult
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError):
                raise CommandRejected(cause.type or "InvalidIntake", cause.message) from None
            raise

    async def start_case(
        self, intake: ComplaintIntake | dict[str, Any], *, wait_for_owner: timedelta | None = timedelta(seconds=10)
    ) -> StartResult:
        """Start a case under the intake's own complaint_id, bypassing the problem door.

        For callers that deliberately open a separate case (a migration, a
        test); starting the same complaint_id twice still never creates a second case.
        """
        intake = validated(ComplaintIntake, intake, "complaint intake")
        workflow_id = workflow_id_for(intake.complaint_id)
        try:
            handle = await self.client.start_workflow(
                WORKFLOW_TYPE,
                intake,
                id=workflow_id,
                task_queue=self.task_queue,
                # A closed case's id is never reused either: one complaint, one case.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return StartResult(
                intake.complaint_id, workflow_id, None, created=False, outcome="existing", contact_id=intake.complaint_id
            )
        owner = await self.wait_for_owner(intake.complaint_id, wait_for_owner) if wait_for_owner else None
        return StartResult(
            intake.complaint_id,
            workflow_id,
            handle.result_run_id,
            created=True,
            owner=owner,
            contact_id=intake.complaint_id,
            related_case=intake.related_case,
        )

    async def wait_for_owner(self, complaint_id: str, timeout: timedelta = timedelta(seconds=10)) -> str | None:
        """The case's owner once assigned, or None if routing has not assigned one within timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout.total_seconds()
        delay = 0.02
        while True:
            state = await self.state(complaint_id)
            if state.owner is not None or loop.time() >= deadline:
                return state.owner
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    # --- acting ------------------------------------------------------------

    async def act(self, complaint_id: str, action_name: str, action: Action | dict[str, Any]) -> CaseState:
        """Apply an action as an Update: returns the state after it, or raises CommandRejected."""
        model = validated_action(action_name, action)
        try:
            state = await self.handle(complaint_id).execute_update(
                action_name,
                model,
                id=update_id(action_name, model),
                result_type=CaseState,
            )
        except WorkflowUpdateFailedError as error:
            raise rejection(error) from None
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND or not await self._exists(complaint_id):
                raise
            # The workflow has completed: the case closed and its feedback window ended.
            raise CommandRejected(
                "InvalidCommand",
                f"case {complaint_id} is closed and its feedback window has ended, so it takes no more "
                "actions (a new contact about the same problem opens a related case)",
            ) from None
        if self.read_your_writes:
            await self.wait_written(complaint_id, state.event_count)
        return state

    async def wait_written(self, complaint_id: str, seq: int | None = None) -> None:
        """Return once the case's events up to seq (default: all so far) are in PostgreSQL.

        A case whose workflow has completed wrote every event before it ended.
        """
        try:
            await self.handle(complaint_id).execute_update("wait_for_writes", seq, result_type=int)
        except WorkflowUpdateFailedError as error:
            raise rejection(error) from None
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            status = await self._status(complaint_id)
            if status != WorkflowExecutionStatus.COMPLETED:
                raise IncompleteTimeline(
                    f"case {complaint_id}: its workflow is {status.name.lower() if status else 'not found'}, "
                    "so its last events may never have been written"
                ) from None
            # Completed: a run ends only once every event is written.

    async def _status(self, complaint_id: str) -> WorkflowExecutionStatus | None:
        try:
            return (await self.handle(complaint_id).describe()).status
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def _exists(self, complaint_id: str) -> bool:
        try:
            await self.handle(complaint_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        except Exception:
            pass  # described, but not decodable (the Java test server's Datetime search attributes)
        return True

    async def send(self, complaint_id: str, action_name: str, action: Action | dict[str, Any]) -> None:
        """Send an action as a Signal: fire and forget; a rejection shows in the timeline."""
        await self.handle(complaint_id).signal(action_name, validated_action(action_name, action))

    # --- reading -----------------------------------------------------------

    async def state(self, complaint_id: str) -> CaseState:
        return await self._query(complaint_id, "state", CaseState)

    async def timeline(self, complaint_id: str) -> list[TimelineEvent]:
        """The case's complete timeline, seq 1 to the last.

        The `timeline` query answers with the events the workflow holds: all of
        them, unless the case continued as new (a long-lived case), when it holds
        the most recent ones and the earlier events are read from PostgreSQL's
        case_events (the system of record) through `database`. Without a database,
        such a case raises IncompleteTimeline (recent_timeline gives what the workflow holds).
        """
        held = await self.recent_timeline(complaint_id)
        if not held or held[0].seq == 1:
            return held
        if self.database is None:
            raise IncompleteTimeline(
                f"case {complaint_id} continued as new: its workflow holds events {held[0].seq}..{held[-1].seq}, "
                f"events 1..{held[0].seq - 1} are in PostgreSQL (case_events); give ComplaintClient a database "
                "to read them, or use recent_timeline"
            )
        earlier = await stored_events(self.database, complaint_id, before_seq=held[0].seq)
        return join_timeline(complaint_id, earlier, held)

    async def recent_timeline(self, complaint_id: str) -> list[TimelineEvent]:
        """What the `timeline` query answers: the whole timeline, or after a continue-as-new the carried tail and since."""
        return await self._query(complaint_id, "timeline", list[TimelineEvent])

    async def _query(self, complaint_id: str, name: str, result_type: Any) -> Any:
        """The query's answer; a query the worker deferred (a restarted worker catching up on the
        case, workflow_runner.py) is asked again for up to QUERY_DEFERRED_PATIENCE."""
        handle = self.handle(complaint_id)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + QUERY_DEFERRED_PATIENCE.total_seconds()
        delay = 0.1
        while True:
            try:
                return await handle.query(name, result_type=result_type)
            except WorkflowQueryFailedError as error:
                if QUERY_DEFERRED_MESSAGE not in str(error) or loop.time() + delay > give_up:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def outcome(self, complaint_id: str, *, timeout: timedelta | None = None) -> CaseOutcome:
        """Wait for the case to close and return its outcome.

        A closed case's workflow runs on through the feedback window (feedback, or a
        reopening contact, may still come), so this watches the `outcome` query
        rather than waiting for the workflow result. TimeoutError after timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout.total_seconds()
        delay = 0.05
        while True:
            outcome = await self._query(complaint_id, "outcome", CaseOutcome | None)
            if outcome is not None:
                return outcome
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"case {complaint_id} did not close within {timeout}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def list(
        self,
        *,
        owner: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        category: str | None = None,
        customer_id: str | None = None,
        min_escalation_level: int | None = None,
        limit: int = 100,
    ) -> list[CaseSummary]:
        """Cases matching every given filter, newest first (visibility is eventually consistent)."""
        query = list_query(
            owner=owner,
            status=status,
            severity=severity,
            category=category,
            customer_id=customer_id,
            min_escalation_level=min_escalation_level,
        )
        found: list[CaseSummary] = []
        async for execution in self.client.list_workflows(query, limit=limit):
            found.append(case_summary(execution))
        return found

    def handle(self, complaint_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id_for(complaint_id))

