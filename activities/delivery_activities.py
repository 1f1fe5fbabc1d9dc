"""The delivery activities: plan a notification's routes, try one route once, settle the row.

Each is idempotent. `deliver` is the one that talks to the outside: it
claims its route with the attempt's row before sending (activities/route_claims.py)
and records the outcome after, so a worker killed between the two leaves an
attempt without an outcome, and the retry sends the same message again with
the same idempotency key (at most twice, never lost). Temporal retries it with
the delay it names (delivery/retry.py). Usually the first try at commit
(activities/first_try.py) has delivered already: `deliver` then finds the
route delivered and sends nothing, or heeds that try's give-up or retry time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import delivery_store as store
from activities.delivery_routes import routes_for
from activities.delivery_starter import DeliveryStarter
from activities.policies import PolicyBook
from activities.route_claims import claim_route
from activities.route_sender import RouteSender
from activities.sending import activity_log, worker_name
from delivery import metrics
from delivery.retry import give_up_at
from delivery.settings import DeliverySettings
from schemas.delivery import (
    ChannelDelivery,
    DeliveryFinish,
    DeliveryOutcome,
    DeliveryPlan,
    DeliveryRequest,
    delivery_id_for,
)
from workflows.delivery import GAVE_UP

# An attempt finding another still on the wire (a timed-out attempt not yet dead) waits this long.
BUSY_RETRY = timedelta(seconds=1)


class DeliveryActivities:
    def __init__(self, pool: asyncpg.Pool, settings: DeliverySettings, starter: DeliveryStarter,
                 policies: PolicyBook | None = None, sender: RouteSender | None = None) -> None:
        self.pool = pool
        self.settings = settings
        # Each case's policy may set its own give-up age (delivery_give_up in policies.toml).
        self.policies = policies
        self.starter = starter
        self.backoff = settings.backoff
        self.worker = worker_name()
        # The worker's one sender, shared with the first try at commit (activities/first_try.py).
        self.sender = sender or RouteSender(pool, settings)

    def local(self) -> list[Callable[..., Any]]:
        """Run as local activities by DeliveryWorkflow: where the workflows run."""
        return [self.plan_delivery, self.finish_delivery]

    def remote(self) -> list[Callable[..., Any]]:
        return [self.deliver]

    # -- plan_delivery ------------------------------------------------------

    @activity.defn(name="plan_delivery")
    async def plan_delivery(self, request: DeliveryRequest) -> DeliveryPlan:
        """The recipient's routes, each once (activities/delivery_routes.py), and the timing."""
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
        routes, unrouted = await routes_for(self.pool, settings, row)
        if unrouted is not None:
            log.warning("notification has no route: left queued for a person", recipient=row["recipient"], why=unrouted)
        else:
            log.info("delivery planned", recipient=row["recipient"], channels=sorted({r.channel for r in routes}))
        policy_age = self.policies.delivery_give_up(row["policy"]) if self.policies is not None else None
        give_up = give_up_at(row["created_at"], settings.give_up, policy_age)
        return DeliveryPlan(routes=routes, unrouted=unrouted, give_up_at=give_up, **plan)

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
            heed_first_try=True,
        )  # fmt: skip
        if claim.delivered:
            # The first try at commit, or an attempt Temporal had given up on (timed out), got through first.
            log.info("route already delivered by an earlier attempt")
            return
        if claim.disabled is not None:
            # Disabled (410 Gone) since this notification's plan, by it or by another: nothing more goes there.
            log.warning("endpoint disabled: route given up", reason=claim.disabled)
            raise ApplicationError(f"{route.channel} gave up: endpoint disabled: {claim.disabled}", type=GAVE_UP,
                                   non_retryable=True)  # fmt: skip
        if claim.gave_up is not None:
            log.warning("an earlier attempt gave the route up", error=claim.gave_up)
            raise ApplicationError(f"{route.channel} gave up: {claim.gave_up}", type=GAVE_UP, non_retryable=True)
        if claim.retry_in is not None:
            log.info("the first try failed; waiting for its retry time", retry_in=claim.retry_in.total_seconds())
            raise ApplicationError(f"{route.channel} first try failed: {claim.last_error}", type="DeliveryFailed",
                                   next_retry_delay=claim.retry_in)  # fmt: skip
        if claim.busy:
            log.info("another attempt is still sending; waiting")
            raise ApplicationError("another attempt is still sending", type="DeliveryBusy", next_retry_delay=BUSY_RETRY)
        assert claim.attempt_id is not None
        result = await self.sender.send(row, request.delivery_id, route)
        delay = None if result.final else self.backoff.delay(attempt, result.verdict, result.retry_after)
        await self.sender.record(claim.attempt_id, request.notification_id, route, result, log, retry_in=delay)
        if result.verdict == "delivered":
            return
        if delay is None:
            raise ApplicationError(f"{route.channel} gave up: {result.error}", type=GAVE_UP, non_retryable=True)
        raise ApplicationError(f"{route.channel} attempt {attempt} failed: {result.error}", type="DeliveryFailed",
                               next_retry_delay=delay)  # fmt: skip

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

