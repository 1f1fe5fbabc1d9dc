"""Inputs of the activities (their outputs are roster and state models)."""

from __future__ import annotations

from datetime import datetime

from schemas.common import InputMessage, OutputMessage, Severity
from schemas.policy import ResolvedPolicy
from schemas.roster import Assignment
from schemas.state import CaseState, CustomerHistory, TimelineEvent


class AssignOwnerInput(InputMessage):
    complaint_id: str
    workflow_id: str
    customer_id: str
    category: str
    severity: str
    policy: str
    summary: str
    received_at: datetime
    received_by: str | None = None


class RecordCaseEvents(InputMessage):
    """A batch of new timeline events and the case snapshot after them.

    Idempotent by (complaint_id, seq): a retried activity writes each row once.
    """

    workflow_id: str
    run_id: str
    events: list[TimelineEvent]
    state: CaseState


class CustomerHistoryInput(InputMessage):
    complaint_id: str
    customer_id: str


class OpenCaseInput(InputMessage):
    """What open_case needs: the intake's routing facts and the policy it asked for (None: the severity's default)."""

    complaint_id: str
    workflow_id: str
    customer_id: str
    category: str
    severity: Severity
    policy: str | None = None
    summary: str
    received_at: datetime
    received_by: str | None = None


class OpenedCase(OutputMessage):
    """The opening in one answer: the policy the case copies, its owner, and the customer's other cases."""

    policy: ResolvedPolicy
    assignment: Assignment
    customer_history: CustomerHistory
