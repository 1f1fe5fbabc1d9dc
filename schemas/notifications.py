"""The notifications outbox: who must hear of an escalation, and whether they have.

An `escalated` timeline event carries an EscalationNotice as its data;
record_case_events turns each into one Notification row, once per
(complaint_id, clock, level, occurrence) however often it is recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.common import OutputMessage, text


class EscalationNotice(OutputMessage):
    """The data of an `escalated` event that the outbox needs (other keys are kept in the timeline only)."""

    # acknowledge, first_response, customer_update, resolution, confirmation, or promise:<promise_id>
    clock: text(100)
    level: int = Field(ge=1, le=3)
    # The n-th time this clock reached this level in the case (a restarted clock may breach again).
    occurrence: int = Field(default=1, ge=1)
    recipient: text(64)
    recipient_role: text(32)
    reason: text(2_000)
    due_at: AwareDatetime
    deadline: AwareDatetime | None = None


DeliveryStatus = Literal["queued", "sending", "retrying", "delivered", "dead"]


class DeliveryAttempt(OutputMessage):
    """One try on one channel (outcome None: on the wire, or the worker died before it could say)."""

    id: int
    delivery_id: str
    channel: Literal["email", "webhook", "chat"]
    target: str
    # 0: the first try, made at once by the worker that committed the escalation; 1 and up: the delivery
    # workflow's attempts (docs/delivery.md).
    attempt: int
    started_at: datetime
    finished_at: datetime | None = None
    outcome: Literal["delivered", "failed", "gave_up"] | None = None
    response_code: int | None = None
    error: str | None = None
    # A failed first try: the route is not tried again before this instant (its backoff, or Retry-After).
    retry_at: datetime | None = None


class Notification(OutputMessage):
    """One row of the outbox, with its delivery's status (and, when asked for, its attempts)."""

    id: int
    complaint_id: str
    clock: str
    level: int
    occurrence: int
    recipient: str
    recipient_role: str
    reason: str
    due_at: datetime
    deadline: datetime | None = None
    event_seq: int
    created_at: datetime
    status: DeliveryStatus = "queued"
    attempts: int = 0
    last_error: str | None = None
    delivered_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    attempt_log: list[DeliveryAttempt] | None = None

    @property
    def pending(self) -> bool:
        """Waiting for a person: nobody has acknowledged it yet (delivered or not)."""
        return self.acknowledged_at is None
