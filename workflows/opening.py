"""A case's opening, in one activity: its policy, its owner, the customer's other cases."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.activity_io import OpenCaseInput, OpenedCase
    from workflows.activity_options import DB_RETRY, DB_TIMEOUT
    from workflows.case import Case


def routing_facts(case: Case) -> dict[str, Any]:
    """What routing needs of a case, for the opening's input."""
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


def _raise_if_unknown_policy(error: ActivityError) -> None:
    """An intake naming a policy the worker does not know fails the case, saying so (never retried)."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type == "UnknownPolicy":
        raise ApplicationError(f"invalid complaint intake: {cause.message}", type="InvalidIntake", non_retryable=True)


async def open_case(case: Case) -> None:
    """Give the case its policy, its owner and the customer's history, from the open_case activity."""
    try:
        opened = await workflow.execute_activity(
            "open_case",
            OpenCaseInput(**routing_facts(case), policy=None if case.state.policy == "default" else case.state.policy),
            result_type=OpenedCase,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
    except ActivityError as error:
        _raise_if_unknown_policy(error)
        raise
    now = workflow.now()
    case.adopt_policy(opened.policy, now)
    case.assign(opened.assignment, now)
    case.state.customer_history = opened.customer_history
