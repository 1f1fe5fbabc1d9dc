"""The case feed's activities: read a subscription's next events of a case, send one, stop at one that died.

`deliver_case_event` sends like the notifications' `deliver`
(activities/delivery_activities.py): the same Standard Webhooks signing with
the endpoint's secrets, the same verdicts and backoff (delivery/retry.py), the
same claim on its route (activities/route_claims.py): an attempt recorded in
delivery_attempts before the request and completed after.
Its delivery id, the `webhook-id`, is `evt-<subscription>-<complaint>-<seq>`:
a retry after a worker died mid-send repeats it, so a receiver that
deduplicates by it sees each event once. A delivered event moves the feed's
cursor in the same transaction as its attempt's outcome.
"""

from __future__ import annotations

from typing import Any, Callable

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import case_feed_store as feeds
from activities.delivery_store import disable_endpoint, endpoint_secrets
from activities.route_claims import claim_route
from activities.sending import HttpSender, activity_log, cut_off, worker_name
from delivery import metrics
from delivery.case_events import case_event_delivery_id, event_payload
from delivery.retry import Verdict, webhook_verdict
from delivery.settings import DeliverySettings
from delivery.webhooks import WebhookAnswer, post_webhook
from schemas.case_feed import CaseEventDelivery, CaseEventOutcome, FeedBatch, FeedRead, FeedStop
from workflows.delivery import GAVE_UP

# A feed reads at most this many events at a time (it reads again at once when there were more).
BATCH = 100
# A feed's run continues as new after delivering this many events.
EVENTS_PER_RUN = 500

class CaseFeedActivities:
    def __init__(self, pool: asyncpg.Pool, settings: DeliverySettings, events_per_run: int = EVENTS_PER_RUN) -> None:
        self.pool = pool
        self.settings = settings
        self.events_per_run = events_per_run
        self.backoff = settings.backoff
        self.worker = worker_name()
        self.sender = HttpSender(settings)

    def all(self) -> list[Callable[..., Any]]:
        return [self.next_case_events, self.deliver_case_event, self.stop_case_feed]

    @activity.defn(name="next_case_events")
    async def next_case_events(self, read: FeedRead) -> FeedBatch:
        """The next events of the case the subscription wants, after the feed's cursor (read only but for
        creating the cursor)."""
        settings = self.settings
        timing = dict(idle=settings.feed_idle, give_up=settings.give_up, attempt_timeout=settings.attempt_timeout,
                      first_retry=settings.first_retry, max_retry=settings.max_retry, events_per_run=self.events_per_run)  # fmt: skip
        async with self.pool.acquire() as conn:
            position = await feeds.feed_position(conn, read.subscription_id, read.complaint_id)
            cursor = max(position.last_seq, read.after or 0)
            if not position.subscribed:
                return FeedBatch(status="unsubscribed", cursor=cursor, **timing)
            if position.stopped_seq is not None:
                return FeedBatch(status="stopped", cursor=cursor, **timing)
            seqs = await feeds.next_event_seqs(conn, read.subscription_id, read.complaint_id, cursor, BATCH + 1)
        return FeedBatch(status="active", cursor=cursor, seqs=seqs[:BATCH], more=len(seqs) > BATCH, **timing)

    @activity.defn(name="deliver_case_event")
    async def deliver_case_event(self, request: CaseEventDelivery) -> CaseEventOutcome:
        """Send one event once. Raises to be retried after the delay it names, or GAVE_UP when it never can succeed."""
        attempt = activity.info().attempt
        delivery_id = case_event_delivery_id(request.subscription_id, request.complaint_id, request.seq)
        log = activity_log(complaint_id=request.complaint_id, subscription_id=request.subscription_id, seq=request.seq)
        row = await feeds.event_for_delivery(self.pool, request.subscription_id, request.complaint_id, request.seq)
        if row is None or not row["active"]:
            log.info("subscription removed: event not sent")
            return "unsubscribed"
        if row["seq"] is None:
            raise ApplicationError(f"case event {request.seq} not found", type=GAVE_UP, non_retryable=True)
        url = row["url"]
        claim = await claim_route(
            self.pool, delivery_id=delivery_id, target=url, channel="event", attempt=attempt, worker=self.worker,
            lease=self.settings.route_lease,
        )  # fmt: skip
        if claim.delivered:  # by an attempt that timed out, perhaps before a 410 disabled the endpoint
            await feeds.advance_cursor(self.pool, request.subscription_id, request.complaint_id, request.seq)
            log.info("case event already delivered by an earlier attempt")
            return "delivered"
        if claim.disabled is not None:
            raise ApplicationError(f"endpoint disabled: {claim.disabled}", type=GAVE_UP, non_retryable=True)
        if claim.busy:
            log.info("another attempt is still sending this event; waiting")
            raise ApplicationError("another attempt is still sending", type="DeliveryBusy", next_retry_delay=self.settings.first_retry)
        payload = event_payload(request.complaint_id, row["seq"], row["kind"], row["actor"], row["at"], row["channel"], row["data"])
        secrets = await endpoint_secrets(self.pool, url)
        answer = await cut_off(
            self.settings.send_limit, post_webhook(self.sender.client, url, delivery_id, payload, secrets),
            lambda why: WebhookAnswer(status=None, error=why),
        )
        code = answer.status
        error = answer.error or (None if code and code < 300 else f"HTTP {code}")
        verdict = webhook_verdict(code)
        log = log.bind(event_type=payload["type"], response_code=code)
        async with self.pool.acquire() as conn:
            return await self._settle(conn, request, url, claim.attempt_id, verdict, code, error, answer.retry_after, attempt, log)

    async def _settle(self, conn: asyncpg.Connection, request: CaseEventDelivery, url: str, attempt_id: int, verdict: Verdict,
                      code: int | None, error: str | None, retry_after: float | None, attempt: int, log: Any) -> CaseEventOutcome:
        if verdict == "delivered":
            async with conn.transaction():
                await feeds.end_event_attempt(conn, attempt_id, "delivered", code, None)
                await feeds.advance_cursor(conn, request.subscription_id, request.complaint_id, request.seq)
            metrics.DELIVERED.labels("event").inc()
            log.info("case event delivered")
            return "delivered"
        if verdict == "disable":
            await disable_endpoint(conn, url, f"answered {code} Gone")
            await feeds.end_event_attempt(conn, attempt_id, "gave_up", code, error)
            log.warning("case event endpoint gone: endpoint disabled")
            raise ApplicationError(f"event gave up: {error}", type=GAVE_UP, non_retryable=True)
        await feeds.end_event_attempt(conn, attempt_id, "failed", code, error)
        delay = self.backoff.delay(attempt, verdict, retry_after)
        metrics.RETRIED.labels("event").inc()
        log.warning("case event attempt failed", error=error, retry_in=delay.total_seconds())
        raise ApplicationError(f"event attempt {attempt} failed: {error}", type="DeliveryFailed", next_retry_delay=delay)

    @activity.defn(name="stop_case_feed")
    async def stop_case_feed(self, stop: FeedStop) -> None:
        """An event could not be delivered before its give-up time: the case's feed to this subscription
        stops at it (sending later events would break their order) until `webhooks resume`."""
        stopped = await feeds.stop_feed(self.pool, stop.subscription_id, stop.complaint_id, stop.seq, stop.error)
        if not stopped:
            return
        metrics.CASE_EVENTS_DEAD.inc()
        activity_log(complaint_id=stop.complaint_id, subscription_id=stop.subscription_id, seq=stop.seq).error(
            "case event dead: the feed stops at it until `webhooks resume`", error=stop.error
        )
