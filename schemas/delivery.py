"""The messages of a notification's delivery (workflows/delivery.py and its activities)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from schemas.common import OutputMessage
from schemas.notifications import DeliveryStatus

DeliveryChannel = Literal["email", "webhook", "chat"]


def delivery_id_for(notification_id: int) -> str:
    """The idempotency key a receiver sees for a notification: its webhook-id, the root of its Message-ID."""
    return f"ntf-{notification_id}"


class DeliveryRequest(OutputMessage):
    """Start a notification's delivery (its workflow id is built from both fields)."""

    notification_id: int
    complaint_id: str


class Route(OutputMessage):
    """One way to reach the recipient: an email address or a webhook URL."""

    channel: DeliveryChannel
    target: str


class DeliveryPlan(OutputMessage):
    """Where the notification goes and the timing the worker's settings gave it, fixed once in history."""

    delivery_id: str
    routes: list[Route]
    # Why there is no route (no address, no webhook, SMTP_URL unset), when there is none.
    unrouted: str | None = None
    give_up_at: datetime
    attempt_timeout: timedelta
    first_retry: timedelta
    max_retry: timedelta


class ChannelDelivery(OutputMessage):
    """One channel's delivery: the activity that tries it once per Temporal attempt."""

    notification_id: int
    delivery_id: str
    route: Route


class ChannelResult(OutputMessage):
    route: Route
    delivered: bool
    error: str | None = None


class DeliveryFinish(OutputMessage):
    notification_id: int
    complaint_id: str
    results: list[ChannelResult]


class DeliveryOutcome(OutputMessage):
    """How a delivery ended: delivered, dead, or queued (no route: a person must act)."""

    notification_id: int
    status: DeliveryStatus
    # The notice queued for the case's supervisor (or manager) when this one died.
    dead_letter_notice: int | None = None
