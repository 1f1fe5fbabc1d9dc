"""Inputs of the activities (their outputs are roster and state models)."""

from __future__ import annotations

from datetime import datetime

from schemas.common import InputMessage
from schemas.state import CaseState, TimelineEvent


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
