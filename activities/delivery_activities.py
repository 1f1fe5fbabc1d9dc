"""The delivery activities: plan a notification's routes, try one route once, settle the row.

Each is idempotent. `deliver` is the one that talks to the outside: it
claims its route with the attempt's row before sending (activities/route_claims.py)
and records the outcome after, so a worker killed between the two leaves an
attempt without an outcome, and the retry sends the same message again with
the same idempotency key (at most twice, never lost). Temporal retries it with
the delay it names (delivery/retry.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import delivery_store as store
from activities.sending import HttpSender, activity_log, cut_off, worker_name
from activities.delivery_starter import DeliveryStarter
from activities.policies import PolicyBook
from activities.route_claims import claim_route
from delivery import metrics
from delivery.email import EmailFailure, message_id, send_email
from delivery.messages import NotificationContext, chat_payload, email_message, webhook_payload
from delivery.retry import Backoff, Verdict, email_verdict, give_up_at, webhook_verdict
from delivery.settings import DeliverySettings
from delivery.webhooks import post_webhook
from schemas.delivery import (
    ChannelDelivery,
    DeliveryFinish,
    DeliveryOutcome,
    DeliveryPlan,
    DeliveryRequest,
    Route,
    delivery_id_for,
)
from workflows.delivery import GAVE_UP

# An attempt finding another still on the wire (a timed-out attempt not yet dead) waits this long.
BUSY_RETRY = timedelta(seconds=1)


class DeliveryActivities:
    def __init__(self, pool: asyncpg.Pool, settings: DeliverySettings, starter: DeliveryStarter,
                 policies: PolicyBook | None = None) -> None:
        self.pool = pool
        self.settings = settings
        # Each case's policy may set its own give-up age (delivery_give_up in policies.toml).
        self.policies = policies
        self.starter = starter
        self.backoff = Backoff(settings.first_retry, settings.max_retry, settings.client_error_retry)
        self.worker = worker_name()
        self.sender = HttpSender(settings)

    def local(self) -> list[Callable[..., Any]]:
        """Run as local activities by DeliveryWorkflow: where the workflows run."""
        return [self.plan_delivery, self.finish_delivery]

    def remote(self) -> list[Callable[..., Any]]:
        return [self.deliver]

    # -- plan_delivery ------------------------------------------------------

    @activity.defn(name="plan_delivery")
    async def plan_delivery(self, request: DeliveryRequest) -> DeliveryPlan:
        """The recipient's routes, each once: their email (and their team's address), webhook and chat webhook.
        A dead-letter notice avoids every target the dead notification tried."""
        log = activity_log(complaint_id=request.complaint_id, notification_id=request.notification_id)
        settings = self.settings
        row = await store.notification_for_delivery(self.pool, request.notification_id)
        plan = dict(
            delivery_id=delivery_id_for(request.notification_id),
            attempt_timeout=settings.attempt_timeout,
            first_retry=settings.first_retry,
            max_retry=settings.max_retry,
        )
        if row is None:
            log.error("notification to deliver not found")
            return DeliveryPlan(routes=[], unrouted="no such notification", give_up_at=activity.info().started_time, **plan)
        routes: list[Route] = []
        if settings.smtp is not None:
            for address in (row["email"], settings.team_emails.get(row["recipient_team"] or "")):
                if address:
                    routes.append(Route(channel="email", target=address))
        for channel, url in (("webhook", row["webhook_url"]), ("chat", row["chat_webhook_url"])):
            if url:
                routes.append(Route(channel=channel, target=url))
        avoid = set()
        if row["clock"].startswith("undelivered:"):
            avoid = await store.attempted_targets(self.pool, int(row["clock"].removeprefix("undelivered:")))
        avoid |= await store.disabled_endpoints(self.pool, [r.target for r in routes if r.channel != "email"])
        unique = list({r.target: r for r in routes if r.target not in avoid}.values())
        unrouted = None
        if not unique:
            unrouted = _why_unrouted(row, settings, bool(routes))
            log.warning("notification has no route: left queued for a person", recipient=row["recipient"], why=unrouted)
        else:
            log.info("delivery planned", recipient=row["recipient"], channels=sorted({r.channel for r in unique}))
        policy_age = self.policies.delivery_give_up(row["policy"]) if self.policies is not None else None
        give_up = give_up_at(row["created_at"], settings.give_up, policy_age)
        return DeliveryPlan(routes=unique, unrouted=unrouted, give_up_at=give_up, **plan)

    # -- deliver ------------------------------------------------------------

    @activity.defn(name="deliver")
    async def deliver(self, request: ChannelDelivery) -> None:
        """Try one route once. Raises to be retried after the delay it names, or GAVE_UP when it never can succeed."""
        route = request.route
        attempt = activity.info().attempt
        log = activity_log(notification_id=request.notification_id, channel=route.channel)
        row = await store.notification_for_delivery(self.pool, request.notification_id)
        if row is None:
            raise ApplicationError("notification not found", type=GAVE_UP, non_retryable=True)
        log = log.bind(complaint_id=row["complaint_id"])
        claim = await claim_route(
            self.pool, delivery_id=request.delivery_id, target=route.target, channel=route.channel, attempt=attempt,
            worker=self.worker, lease=self.settings.route_lease, notification_id=request.notification_id,
        )  # fmt: skip
        if claim.delivered:
            # An attempt Temporal had given up on (timed out) got through before this one could start.
            log.info("route already delivered by an earlier attempt")
            return
        if claim.busy:
            log.info("another attempt is still sending; waiting")
            raise ApplicationError("another attempt is still sending", type="DeliveryBusy", next_retry_delay=BUSY_RETRY)
        verdict, code, retry_after, error = await self._send(row, request)
        async with self.pool.acquire() as conn:
            await self._settle(conn, claim.attempt_id, request, verdict, code, retry_after, error, attempt, log)

    async def _send(self, row: asyncpg.Record, request: ChannelDelivery) -> tuple[Verdict, int | None, float | None, str | None]:
        """Send once, cut off at the settings' send limit."""
        return await cut_off(self.settings.send_limit, self._send_now(row, request), lambda why: ("retry", None, None, why))

    async def _send_now(self, row: asyncpg.Record, request: ChannelDelivery) -> tuple[Verdict, int | None, float | None, str | None]:
        context = self._context(row, request.delivery_id)
        route = request.route
        if route.channel == "email":
            smtp = self.settings.smtp
            if smtp is None:
                return "give_up", None, None, "SMTP_URL is not set on this worker"
            try:
                await send_email(smtp, email_message(context, route.target, message_id(request.delivery_id, smtp)))
            except EmailFailure as failure:
                return email_verdict(failure.retryable), failure.code, None, failure.reason
            return "delivered", 250, None, None
        payload = webhook_payload(context) if route.channel == "webhook" else chat_payload(context)
        secrets = await store.endpoint_secrets(self.pool, route.target)
        answer = await post_webhook(self.sender.client, route.target, request.delivery_id, payload, secrets)
        error = answer.error or (None if answer.status and answer.status < 300 else f"HTTP {answer.status}")
        return webhook_verdict(answer.status), answer.status, answer.retry_after, error

    async def _settle(self, conn: asyncpg.Connection, attempt_id: int, request: ChannelDelivery, verdict: Verdict,
                      code: int | None, retry_after: float | None, error: str | None, attempt: int, log: Any) -> None:
        channel = request.route.channel
        if verdict == "delivered":
            await store.end_attempt(conn, attempt_id, request.notification_id, "delivered", code)
            metrics.DELIVERED.labels(channel).inc()
            log.info("notification delivered", response_code=code)
            return
        if verdict in ("disable", "give_up"):
            if verdict == "disable":
                await store.disable_endpoint(conn, request.route.target, f"answered {code} Gone")
            await store.end_attempt(conn, attempt_id, request.notification_id, "gave_up", code, error)
            log.warning("route gave up", response_code=code, error=error, endpoint_disabled=verdict == "disable")
            raise ApplicationError(f"{channel} gave up: {error}", type=GAVE_UP, non_retryable=True)
        await store.end_attempt(conn, attempt_id, request.notification_id, "failed", code, error)
        delay = self.backoff.delay(attempt, verdict, retry_after)
        metrics.RETRIED.labels(channel).inc()
        log.warning("delivery attempt failed", response_code=code, error=error, retry_in=delay.total_seconds())
        raise ApplicationError(f"{channel} attempt {attempt} failed: {error}", type="DeliveryFailed", next_retry_delay=delay)

    def _context(self, row: asyncpg.Record, delivery_id: str) -> NotificationContext:
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

    # -- finish_delivery ----------------------------------------------------

    @activity.defn(name="finish_delivery")
    async def finish_delivery(self, request: DeliveryFinish) -> DeliveryOutcome:
        """Settle the row; a dead one queues (once) a notice for the case's supervisor and starts its delivery."""
        log = activity_log(complaint_id=request.complaint_id, notification_id=request.notification_id)
        delivered = any(result.delivered for result in request.results)
        async with self.pool.acquire() as conn, conn.transaction():
            status = await store.finish(conn, request.notification_id, delivered)
            if status != "dead":
                return DeliveryOutcome(notification_id=request.notification_id, status=status)
            dead = await store.notification_for_delivery(conn, request.notification_id)
            notice = None
            if not dead["clock"].startswith("undelivered:"):
                recipient = await store.dead_letter_recipient(conn, dead["owner"], dead["recipient"])
                if recipient is not None:
                    notice = await store.queue_dead_letter_notice(conn, dead, recipient)
        metrics.DEAD.inc()
        log.error("notification dead: every route gave up", errors=[r.error for r in request.results], notice=notice)
        if notice is not None:
            await self.starter.start(request.complaint_id, [notice])
        return DeliveryOutcome(notification_id=request.notification_id, status="dead", dead_letter_notice=notice)


def _why_unrouted(row: asyncpg.Record, settings: DeliverySettings, had_routes: bool) -> str:
    if had_routes:
        return "every route of the recipient is disabled or already failed"
    if row["recipient_name"] is None:
        return "the recipient is not on the roster"
    if row["email"] and settings.smtp is None:
        return "the recipient has only an email address and SMTP_URL is not set"
    return "the recipient has no email, webhook_url or chat_webhook_url in the roster"
