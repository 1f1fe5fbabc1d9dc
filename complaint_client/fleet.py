"""Finding cases across the fleet: the visibility query for the list filters, and what each match reads as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus

from workflows import search_attributes as sa
from workflows.start_input import WORKFLOW_ID_PREFIX

# The case workflow's registered name (workflows/complaint.py): what a list filters on and start_case starts.
WORKFLOW_TYPE = "ComplaintWorkflow"


@dataclass(frozen=True)
class CaseSummary:
    complaint_id: str
    workflow_id: str
    status: str | None
    owner: str | None
    severity: str | None
    category: str | None
    customer_id: str | None
    escalation_level: int | None
    next_deadline: datetime | None
    execution_status: str


def case_summary(execution: WorkflowExecution) -> CaseSummary:
    """A listed case, from its search attributes."""
    attrs = execution.typed_search_attributes
    return CaseSummary(
        complaint_id=execution.id.removeprefix(WORKFLOW_ID_PREFIX),
        workflow_id=execution.id,
        status=attrs.get(sa.STATUS),
        owner=attrs.get(sa.OWNER),
        severity=attrs.get(sa.SEVERITY),
        category=attrs.get(sa.CATEGORY),
        customer_id=attrs.get(sa.CUSTOMER),
        escalation_level=attrs.get(sa.ESCALATION_LEVEL),
        next_deadline=attrs.get(sa.NEXT_DEADLINE),
        execution_status=(execution.status or WorkflowExecutionStatus.RUNNING).name.lower(),
    )


def list_query(**filters: Any) -> str:
    """A visibility query for the given filters (None means any)."""
    clauses = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    keyword_filters = {
        "owner": sa.OWNER,
        "status": sa.STATUS,
        "severity": sa.SEVERITY,
        "category": sa.CATEGORY,
        "customer_id": sa.CUSTOMER,
    }
    for field, key in keyword_filters.items():
        value = filters.get(field)
        if value is not None:
            clauses.append(f"{key.name} = {_quoted(value)}")
    level = filters.get("min_escalation_level")
    if level is not None:
        clauses.append(f"{sa.ESCALATION_LEVEL.name} >= {int(level)}")
    return " AND ".join(clauses)


def _quoted(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"filter values cannot contain quotes or backslashes (got {value!r})")
    return f"'{value}'"
