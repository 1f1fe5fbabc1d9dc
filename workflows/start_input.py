"""How a run's input becomes a case: a new complaint's intake, or a continued case, or the reason it is neither."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from schemas.errors import describe_validation_error
    from schemas.intake import ComplaintIntake
    from schemas.state import ContinuedCase
    from workflows import messages
    from workflows.case import Case
    from workflows.rules import Rejection, check_received_at

WORKFLOW_ID_PREFIX = "complaint-"


def workflow_id_for(complaint_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{complaint_id}"


@dataclass
class StartInput:
    payload: dict[str, Any] | None = None  # the JSON object the input held (what a start's assertion covers)
    case: Case | None = None  # a new case, received now
    continued: ContinuedCase | None = None  # or the case of an earlier run
    error: str | None = None  # or why the input makes no case (the run fails as InvalidIntake)


def read_start(intake: RawValue) -> StartInput:
    try:
        data = messages.json_object(intake, "invalid complaint intake: the input")
    except Rejection as rejection:
        return StartInput(error=rejection.message)
    try:
        if "continued_case" in data:
            return StartInput(payload=data, continued=ContinuedCase.model_validate(data))
        parsed = ComplaintIntake.model_validate(data)
    except ValidationError as error:
        return StartInput(payload=data, error=describe_validation_error(error, "complaint intake"))
    expected = workflow_id_for(parsed.complaint_id)
    if workflow.info().workflow_id != expected:
        return StartInput(
            payload=data,
            error=f"the workflow id must be {expected!r} for complaint_id {parsed.complaint_id!r} "
            f"(got {workflow.info().workflow_id!r})",
        )
    try:
        check_received_at(parsed.received_at, workflow.now())
    except Rejection as rejection:
        return StartInput(payload=data, error=f"invalid complaint intake: {rejection.message}")
    return StartInput(payload=data, case=Case.receive(parsed, workflow.now()))
