"""Sending a notification on one route once, and recording how it went: what the delivery workflow's
`deliver` and the first try at commit share (activities/delivery_activities.py, activities/first_try.py).

Each send follows the route's claim (activities/route_claims.py) and is cut off at the settings' send
limit, so it never outlives the claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from activities import delivery_store as store
from activities.sending import HttpSender, cut_off
from delivery import metrics
from delivery.email import EmailFailure, message_id, send_email
from delivery.messages import NotificationContext, chat_payload, email_message, webhook_payload
from delivery.retry import Verdict, email_verdict, webhook_verdict
from delivery.settings import DeliverySettings
from delivery.webhooks import post_webhook
from schemas.delivery import Route


@dataclass(frozen=True)
class SendResult:
    verdict: Verdict
    code: int | None = None
    # The receiver's Retry-After, in seconds.
    retry_after: float | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        """Nothing more to send on this route: delivered, or given up (410 Gone disables the endpoint)."""
        return self.verdict in ("delivered", "disable", "give_up")


class RouteSender:
    def __init__(self, pool: asyncpg.Pool, settings: DeliverySettings) -> None:
        self.pool = pool
        self.settings = settings
        self.http = HttpSender(settings)

    async def send(self, row: asyncpg.Record, delivery_id: str, route: Route) -> SendResult:
        """Send the notification `row` once on `route`, cut off at the settings' send limit."""
        return await cut_off(self.settings.send_limit, self._send_now(row, delivery_id, route),
                             lambda why: SendResult("retry", error=why))  # fmt: skip

    async def _send_now(self, row: asyncpg.Record, delivery_id: str, route: Route) -> SendResult:
        context = self.context(row, delivery_id)
        if route.channel == "email":
            smtp = self.settings.smtp
            if smtp is None:
                return SendResult("give_up", error="SMTP_URL is not set on this worker")
            try:
                await send_email(smtp, email_message(context, route.target, message_id(delivery_id, smtp)))
            except EmailFailure as failure:
                return SendResult(email_verdict(failure.retryable), failure.code, None, failure.reason)
            return SendResult("delivered", 250)
        payload = webhook_payload(context) if route.channel == "webhook" else chat_payload(context)
        secrets = await store.endpoint_secrets(self.pool, route.target)
        answer = await post_webhook(self.http.client, route.target, delivery_id, payload, secrets)
        error = answer.error or (None if answer.status and answer.status < 300 else f"HTTP {answer.status}")
        return SendResult(webhook_verdict(answer.status), answer.status, answer.retry_after, error)

    async def record(self, attempt_id: int, notification_id: int, route: Route, result: SendResult, log: Any,
                     retry_in: timedelta | None = None, hold_route: bool = False) -> None:
        """The attempt's outcome, the row's status and the metrics; a 410 disables the endpoint.
        retry_in: after a failure, how long until the route is tried again; hold_route: record that on the
        attempt, so that no claim sends before then (a first try's; route_claims.py)."""
        async with self.pool.acquire() as conn:
            if result.verdict == "delivered":
                await store.end_attempt(conn, attempt_id, notification_id, "delivered", result.code)
                metrics.DELIVERED.labels(route.channel).inc()
                log.info("notification delivered", response_code=result.code)
                return
            if result.final:
                if result.verdict == "disable":
                    await store.disable_endpoint(conn, route.target, f"answered {result.code} Gone")
                await store.end_attempt(conn, attempt_id, notification_id, "gave_up", result.code, result.error)
                log.warning("route gave up", response_code=result.code, error=result.error,
                            endpoint_disabled=result.verdict == "disable")  # fmt: skip
                return
            await store.end_attempt(conn, attempt_id, notification_id, "failed", result.code, result.error,
                                    retry_in if hold_route else None)  # fmt: skip
        metrics.RETRIED.labels(route.channel).inc()
        log.warning("delivery attempt failed", response_code=result.code, error=result.error,
                    retry_in=retry_in.total_seconds() if retry_in is not None else None)  # fmt: skip

    def context(self, row: asyncpg.Record, delivery_id: str) -> NotificationContext:
        return NotificationContext(
            notification_id=row["id"],
            delivery_id=delivery_id,
            complaint_id=row["complaint_id"],
            clock=row["clock"],
            level=row["level"],
            recipient=row["recipient"],
            recipient_name=row["recipient_name"] or row["recipient"],
            recipient_role=row["recipient_role"],
            reason=row["reason"],
            due_at=row["due_at"],
            deadline=row["deadline"],
            owner=row["owner"],
            case_url=f"{self.settings.public_url}/cases/{row['complaint_id']}",
        )
