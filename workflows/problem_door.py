"""ProblemDoorWorkflow: one case per problem.

Every new contact from a support system comes through the door of its
(customer, category): a workflow whose id is built from that key, reached by
update-with-start, so two systems that report the same problem at once meet
in the same door run. The door decides one contact at a time:

- the contact's complaint_id is already a case: `existing`, nothing changes;
- the problem has a case that still takes contacts: the contact is recorded on
  it (`new_contact`): `joined`, or `reopened` if it was closed within its
  feedback window;
- otherwise the contact's complaint_id becomes a case: `opened`, linked by
  `related_case` to the problem's earlier case if there was one.

The door only decides; every read and write is an activity
(activities/door_activities.py). It waits while idle for IDLE_FOR, then
completes: the next contact starts a fresh run, which finds the problem's case
in the `cases` table.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from schemas.door import (
        CaseRef,
        CaseStarted,
        DeliverContact,
        Delivery,
        DoorResult,
        DoorStart,
        LatestCaseInput,
        StartCaseInput,
    )
    from schemas.errors import describe_validation_error
    from schemas.intake import ComplaintIntake
    from workflows import messages
    from workflows.identity_check import verdict_on
    from workflows.rules import Rejection

WORKFLOW_TYPE = "ProblemDoorWorkflow"
UPDATE_NAME = "open_or_join"
DOOR_ID_PREFIX = "problem/"

# How long a door waits for the next contact before it completes. Long enough
# that a burst of contacts (two systems reporting one problem) meets one run;
# short enough that idle doors do not pile up. After it, the `cases` table is the memory.
IDLE_FOR = timedelta(hours=1)
# Temporal allows 2,000 updates per run; continue as new well before.
MAX_REQUESTS_PER_RUN = 500

_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
_READ_TIMEOUT = timedelta(seconds=10)
# Starting a workflow is one RPC; recording a contact waits for the case to apply and
# persist it (each attempt at most door_activities.CONTACT_WAIT, then it retries).
_START_TIMEOUT = timedelta(seconds=30)
_DELIVER_TIMEOUT = timedelta(seconds=30)


def door_id(customer_id: str, category: str) -> str:
    """The door's workflow id. '/' is in neither a customer id nor a category
    (schemas/common.py), so two keys never share a door, whatever '-' and '_' they hold."""
    for part in (customer_id, category):
        if not part or "/" in part:
            raise ValueError(f"a door key part is non-empty and has no '/' (got {part!r})")
    return f"{DOOR_ID_PREFIX}{customer_id}/{category}"


def _invalid_intake(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidIntake", non_retryable=True)


@workflow.defn(name=WORKFLOW_TYPE)
class ProblemDoorWorkflow:
    # Each contact's actor assertion reaches open_or_join beside its payload (identity/interceptors.py).
    takes_actor_assertions = True

    @workflow.init
    def __init__(self, start: RawValue) -> None:
        self._key: DoorStart | None = None
        self._start_error: str | None = None
        # The case this problem's contacts go to, once known.
        self._current: str | None = None
        # Contacts are decided one at a time, so two racing contacts never both open a case.
        self._lock = asyncio.Lock()
        self._requests = 0
        try:
            key = DoorStart.model_validate(messages.json_object(start, "invalid door input: the input"))
        except Rejection as rejection:
            self._start_error = rejection.message
            return
        except ValidationError as error:
            self._start_error = describe_validation_error(error, "door input")
            return
        expected = door_id(key.customer_id, key.category)
        if workflow.info().workflow_id != expected:
            self._start_error = f"the door's workflow id must be {expected!r} (got {workflow.info().workflow_id!r})"
            return
        self._key = key
        self._current = key.current_case

    @workflow.run
    async def run(self, start: RawValue) -> None:
        key = self._opened_key()
        while True:
            seen = self._requests
            try:
                await workflow.wait_condition(
                    lambda: self._requests != seen or self._should_continue_as_new(), timeout=IDLE_FOR
                )
            except asyncio.TimeoutError:
                if workflow.all_handlers_finished():
                    break
                continue
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._log("door continuing as new", requests=self._requests)
                workflow.continue_as_new(key.model_copy(update={"current_case": self._current}))
        # A contact that arrives from here on finds the run completed; the client starts a new one.
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._log("door closing after idle", requests=self._requests)

    # --- the update --------------------------------------------------------

    async def _open_or_join(self, *args: RawValue) -> DoorResult:
        payloads, assertion = messages.split_assertion(args)
        intake = self._one_intake(payloads)
        parsed = self._parse_intake(intake)
        self._requests += 1
        async with self._lock:
            # In signed mode a contact proves who it speaks for (workflows/identity_check.py), in arrival order.
            verdict = await verdict_on(assertion, UPDATE_NAME, messages.decode(intake), None)
            if verdict.refusal is not None:
                raise ApplicationError(
                    f"the actor assertion was refused ({verdict.refusal})", type="NotAllowed", non_retryable=True
                )
            return await self._route(parsed)

    def _validate_open_or_join(self, *args: RawValue) -> None:
        payloads, _ = messages.split_assertion(args)
        self._parse_intake(self._one_intake(payloads))

    open_or_join = workflow.update(name=UPDATE_NAME)(messages.takes_one_raw_payload(_open_or_join, DoorResult))
    open_or_join.validator(messages.takes_one_raw_payload(_validate_open_or_join, None))
    del _open_or_join, _validate_open_or_join  # one name per handler for the SDK

    @staticmethod
    def _one_intake(payloads: list[RawValue]) -> RawValue:
        if len(payloads) != 1:
            raise _invalid_intake(f"invalid complaint intake: a contact takes exactly one payload (got {len(payloads)})")
        return payloads[0]

    @workflow.query(name="current_case")
    def current_case(self) -> str | None:
        return self._current

    # --- deciding ----------------------------------------------------------

    async def _route(self, intake: ComplaintIntake) -> DoorResult:
        if intake.complaint_id == self._current or await self._case_exists(intake.complaint_id):
            return self._existing(intake)
        if self._current is None:
            self._current = await self._latest_case()
        related = intake.related_case
        if self._current is not None:
            delivery = await self._deliver(self._current, intake)
            if delivery.outcome != "gone":
                return self._delivered(self._current, intake, delivery)
            # Closed past its feedback window (or ended): the problem gets a new case that points back.
            related = self._current
        return await self._open(intake, related)

    def _existing(self, intake: ComplaintIntake) -> DoorResult:
        self._log("complaint already a case", complaint_id=intake.complaint_id, intake=intake, outcome="existing")
        return DoorResult(complaint_id=intake.complaint_id, contact_id=intake.complaint_id, outcome="existing")

    def _delivered(self, case_id: str, intake: ComplaintIntake, delivery: Delivery) -> DoorResult:
        owner = delivery.state.owner if delivery.state is not None else None
        self._log(f"contact {delivery.outcome}", complaint_id=case_id, intake=intake, outcome=delivery.outcome, owner=owner)
        return DoorResult(
            complaint_id=case_id,
            contact_id=intake.complaint_id,
            outcome=delivery.outcome,  # type: ignore[arg-type]  (never "gone" here)
            owner=owner,
        )

    async def _open(self, intake: ComplaintIntake, related: str | None) -> DoorResult:
        started = await self._start_case(intake.model_copy(update={"related_case": related}))
        if not started.created:
            # Started directly (not through the door) a moment ago: it is that case's own business.
            return self._existing(intake)
        self._current = intake.complaint_id
        self._log("case opened", complaint_id=intake.complaint_id, intake=intake, outcome="opened", related_case=related)
        return DoorResult(
            complaint_id=intake.complaint_id,
            contact_id=intake.complaint_id,
            outcome="opened",
            related_case=related,
            run_id=started.run_id,
        )

    # --- activities --------------------------------------------------------

    async def _case_exists(self, complaint_id: str) -> bool:
        return await workflow.execute_activity(
            "case_exists", complaint_id, result_type=bool, start_to_close_timeout=_READ_TIMEOUT, retry_policy=_RETRY
        )

    async def _latest_case(self) -> str | None:
        key = self._opened_key()
        found = await workflow.execute_activity(
            "find_latest_case",
            LatestCaseInput(customer_id=key.customer_id, category=key.category),
            result_type=CaseRef | None,
            start_to_close_timeout=_READ_TIMEOUT,
            retry_policy=_RETRY,
        )
        return found.complaint_id if found is not None else None

    async def _deliver(self, case_id: str, intake: ComplaintIntake) -> Delivery:
        try:
            return await workflow.execute_activity(
                "deliver_contact",
                DeliverContact(case_id=case_id, intake=intake),
                result_type=Delivery,
                start_to_close_timeout=_DELIVER_TIMEOUT,
                retry_policy=_RETRY,
            )
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError):
                # The case refused the contact for a reason of its own: the caller hears it as is.
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise

    async def _start_case(self, intake: ComplaintIntake) -> CaseStarted:
        info = workflow.info()
        return await workflow.execute_activity(
            "start_case",
            StartCaseInput(intake=intake, opened_by=f"{info.workflow_id}@{info.run_id}"),
            result_type=CaseStarted,
            start_to_close_timeout=_START_TIMEOUT,
            retry_policy=_RETRY,
        )

    # --- helpers -----------------------------------------------------------

    def _parse_intake(self, raw: RawValue) -> ComplaintIntake:
        """The intake, validated and of this door's customer and category, or InvalidIntake saying what is wrong."""
        key = self._opened_key()
        try:
            data = messages.json_object(raw, "invalid complaint intake: the payload")
        except Rejection as rejection:
            raise _invalid_intake(rejection.message)
        try:
            intake = ComplaintIntake.model_validate(data)
        except ValidationError as error:
            raise _invalid_intake(describe_validation_error(error, "complaint intake"))
        if (intake.customer.customer_id, intake.category) != (key.customer_id, key.category):
            raise _invalid_intake(
                f"this door takes contacts of customer {key.customer_id!r} about {key.category!r}; "
                f"this one is for {intake.customer.customer_id!r} about {intake.category!r} "
                f"(its door is {door_id(intake.customer.customer_id, intake.category)!r})"
            )
        return intake

    def _opened_key(self) -> DoorStart:
        if self._key is None:
            raise ApplicationError(self._start_error or "no door key", type="InvalidDoorInput", non_retryable=True)
        return self._key

    def _should_continue_as_new(self) -> bool:
        return self._requests >= MAX_REQUESTS_PER_RUN or workflow.info().is_continue_as_new_suggested()

    def _log(self, message: str, *, intake: ComplaintIntake | None = None, **fields: Any) -> None:
        extra: dict[str, Any] = {"door": workflow.info().workflow_id, **fields}
        if intake is not None:
            extra["contact_id"] = intake.complaint_id
            extra["actor"] = f"customer:{intake.customer.customer_id}"
        workflow.logger.info(message, extra=extra)
