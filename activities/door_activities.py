"""The problem door's activities: the `cases` table and the Temporal client.

Each is idempotent, so Temporal may retry it freely: reads change nothing, a
contact carries a request_id (and the same update id) built from the contact's
complaint_id, and a case start recognises its own earlier attempt by its memo.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Callable

import asyncpg
import structlog
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest, DescribeWorkflowExecutionResponse
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from schemas.actions import NewContact
from schemas.door import CaseRef, CaseStarted, DeliverContact, Delivery, LatestCaseInput, StartCaseInput
from schemas.intake import ComplaintIntake
from schemas.state import CaseState
from workflows.start_input import workflow_id_for

CASE_WORKFLOW_TYPE = "ComplaintWorkflow"
# The memo key naming who opened a case through the door.
OPENED_BY_MEMO = "opened_by"
# How long one attempt waits for a case to apply a contact. The wait holds one of
# the worker's activity slots, and the case may need slots of its own (routing, the
# event write) to finish: an attempt gives its slot back after this and retries,
# finding the same update by its id. Below the door's start-to-close timeout.
CONTACT_WAIT = timedelta(seconds=20)


def _logger(**context: Any) -> structlog.typing.FilteringBoundLogger:
    if activity.in_activity():
        info = activity.info()
        context.update(activity=info.activity_type, attempt=info.attempt, door=info.workflow_id)
    return structlog.get_logger().bind(**context)


def contact_request_id(contact_id: str) -> str:
    """The new_contact request_id of one contact: business keys only, so a retry is recognised."""
    return f"contact:{contact_id}"


def contact_of(intake: ComplaintIntake) -> NewContact:
    """The intake of a second contact, as the new_contact action the open case records."""
    return NewContact(
        actor=f"customer:{intake.customer.customer_id}",
        request_id=contact_request_id(intake.complaint_id),
        channel=intake.channel,
        summary=intake.summary,
        facts=intake.facts,
        contact_id=intake.complaint_id,
    )


class DoorActivities:
    def __init__(self, client: Client, pool: asyncpg.Pool, task_queue: str) -> None:
        self.client = client
        self.pool = pool
        # Cases the door opens run on the worker's own task queue.
        self.task_queue = task_queue

    def all(self) -> list[Callable[..., Any]]:
        """The bound activities, for Worker(activities=...)."""
        return [self.find_latest_case, self.case_exists, self.deliver_contact, self.start_case]

    # -- find_latest_case ---------------------------------------------------

    @activity.defn(name="find_latest_case")
    async def find_latest_case(self, inp: LatestCaseInput) -> CaseRef | None:
        """The customer's case about this category that a new contact belongs to, if any (read only).

        An open case wins over a closed one; among closed ones, the last to close
        (its feedback window is the one that may still be open).
        """
        row = await self.pool.fetchrow(
            """
            SELECT complaint_id, status, closed_at FROM cases
            WHERE customer_id = $1 AND category = $2
            ORDER BY status = 'closed', COALESCE(closed_at, received_at) DESC, created_at DESC
            LIMIT 1
            """,
            inp.customer_id,
            inp.category,
        )
        found = CaseRef(**dict(row)) if row is not None else None
        _logger(actor=f"customer:{inp.customer_id}", category=inp.category).info(
            "latest case looked up", complaint_id=found.complaint_id if found else None, status=found.status if found else None
        )
        return found

    # -- case_exists --------------------------------------------------------

    @activity.defn(name="case_exists")
    async def case_exists(self, complaint_id: str) -> bool:
        """Whether complaint_id is already a case (running or not) on this namespace."""
        return await self._describe(complaint_id) is not None

    # -- deliver_contact ----------------------------------------------------

    @activity.defn(name="deliver_contact")
    async def deliver_contact(self, inp: DeliverContact) -> Delivery:
        """Record the intake on case inp.case_id as a new_contact, or say the case is gone."""
        intake = inp.intake
        log = _logger(complaint_id=inp.case_id, contact_id=intake.complaint_id, actor=f"customer:{intake.customer.customer_id}")
        described = await self._describe(inp.case_id)
        if described is None:
            return self._gone(log, f"case {inp.case_id} has no workflow on this namespace")
        status = described.workflow_execution_info.status
        if status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
            return self._gone(log, f"case {inp.case_id} has ended ({WorkflowExecutionStatus.Name(status)})")

        handle = self.client.get_workflow_handle(workflow_id_for(inp.case_id))
        before = await handle.query("state", result_type=CaseState)
        contact = contact_of(intake)
        try:
            # The update id is the request_id: a retried activity finds the first attempt's outcome.
            after = await asyncio.wait_for(
                handle.execute_update("new_contact", contact, id=contact.request_id, result_type=CaseState),
                CONTACT_WAIT.total_seconds(),
            )
        except asyncio.TimeoutError:
            log.warning("case has not applied the contact yet; retrying", waited_s=CONTACT_WAIT.total_seconds())
            raise ApplicationError(
                f"case {inp.case_id} did not apply the contact within {CONTACT_WAIT}", type="ContactPending"
            ) from None
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return self._gone(log, f"case {inp.case_id} completed as the contact arrived")
            raise
        except WorkflowUpdateFailedError as error:
            return await self._refused(handle, inp.case_id, error, log)
        outcome = "reopened" if after.reopened > before.reopened else "joined"
        log.info("contact delivered", outcome=outcome, owner=after.owner, reopened=after.reopened)
        return Delivery(outcome=outcome, state=after)

    async def _refused(self, handle, case_id: str, error: WorkflowUpdateFailedError, log) -> Delivery:  # type: ignore[no-untyped-def]
        """A case that refuses a contact because it is closed (its feedback window over) is gone; any other refusal is the caller's."""
        cause = error.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
        kind = cause.type if isinstance(cause, ApplicationError) and cause.type else "ContactRefused"
        state = await handle.query("state", result_type=CaseState)
        if state.status == "closed":
            return self._gone(log, message)
        log.warning("contact refused", reason=message, kind=kind)
        raise ApplicationError(f"case {case_id} refused the contact: {message}", type=kind, non_retryable=True)

    @staticmethod
    def _gone(log, reason: str) -> Delivery:  # type: ignore[no-untyped-def]
        log.info("case takes no more contacts", reason=reason)
        return Delivery(outcome="gone", reason=reason)

    # -- start_case ---------------------------------------------------------

    @activity.defn(name="start_case")
    async def start_case(self, inp: StartCaseInput) -> CaseStarted:
        """Start the intake's case; a complaint_id that is already a case is never started again."""
        intake = inp.intake
        log = _logger(complaint_id=intake.complaint_id, actor=f"customer:{intake.customer.customer_id}")
        try:
            handle = await self.client.start_workflow(
                CASE_WORKFLOW_TYPE,
                intake,
                id=workflow_id_for(intake.complaint_id),
                task_queue=self.task_queue,
                # A closed case's id is never reused either: one complaint, one case.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                memo={OPENED_BY_MEMO: inp.opened_by},
            )
        except WorkflowAlreadyStartedError as error:
            if await self._opened_by(intake.complaint_id) == inp.opened_by:
                # This activity's earlier attempt started it and then lost the answer.
                log.info("case already started by an earlier attempt", related_case=intake.related_case)
                return CaseStarted(created=True, run_id=error.run_id)
            log.info("case already exists; not started again")
            return CaseStarted(created=False)
        log.info("case opened", related_case=intake.related_case, run_id=handle.first_execution_run_id)
        return CaseStarted(created=True, run_id=handle.first_execution_run_id)

    async def _opened_by(self, complaint_id: str) -> str | None:
        described = await self._describe(complaint_id)
        if described is None:
            return None
        payload = described.workflow_execution_info.memo.fields.get(OPENED_BY_MEMO)
        if payload is None:
            return None
        try:
            value = self.client.data_converter.payload_converter.from_payload(payload)
        except Exception:
            return None  # someone else's memo of that name
        return value if isinstance(value, str) else None

    # -- helpers ------------------------------------------------------------

    async def _describe(self, complaint_id: str) -> DescribeWorkflowExecutionResponse | None:
        """The raw description of a case's workflow, None if there is none.

        Raw, so nothing is decoded: the Java test server's Datetime search
        attributes do not decode through the typed describe().
        """
        request = DescribeWorkflowExecutionRequest(
            namespace=self.client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id_for(complaint_id)),
        )
        try:
            return await self.client.workflow_service.describe_workflow_execution(request, retry=True)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
