"""The first try at commit: the worker that commits an escalation's row sends it at once (decision 0013).

Under a burst, most of a delivery's time was the trip through Temporal: the
delivery workflow's start, its first task, then the send's activity task, on
a server that was itself the busiest process (decision 0011). So as soon as
record_case_events has committed the rows, this worker tries each route of
each new notification once, in the background, claiming the route as any
attempt does (activities/route_claims.py) and recording the attempt as try 0.
Only a route nobody has tried, of a row still `queued`: a write that Temporal
retries after its deliveries began must not send beside them.

The delivery workflow stays the durable path and starts as before. Its
`deliver` then finds the route delivered and sends nothing; or busy while this
try is on the wire; or it heeds what this try recorded: a give-up (410 Gone, a
5xx SMTP reply) ends the route, a failure waits for the retry time this try
wrote (its backoff, or the receiver's Retry-After). A worker killed during a
first try leaves an attempt without an outcome, exactly as a killed `deliver`
does: the workflow sends again once the claim's lease is over, with the same
idempotency key (at most twice, never lost).

A first try never raises: whatever goes wrong is logged, and the workflow sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import timedelta

import asyncpg
import structlog

from activities import delivery_store as store
from activities.delivery_routes import routes_for
from activities.route_claims import claim_route
from activities.route_sender import RouteSender
from activities.sending import worker_name
from delivery.settings import DeliverySettings
from schemas.delivery import Route, delivery_id_for

# The attempt number a first try records: the delivery workflow's own attempts count from 1.
FIRST_TRY = 0
# Sends a worker's first tries make at once (each on one route), so a burst does not open a connection per
# row to one SMTP server.
FIRST_TRY_SLOTS = 20

log = structlog.get_logger()


class FirstTry:
    def __init__(self, pool: asyncpg.Pool, settings: DeliverySettings, sender: RouteSender | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self.sender = sender or RouteSender(pool, settings)
        self.backoff = settings.backoff
        self.worker = worker_name()
        self._slots = asyncio.Semaphore(FIRST_TRY_SLOTS)
        self._running: set[asyncio.Task[None]] = set()

    def begin(self, complaint_id: str, notification_ids: Iterable[int]) -> None:
        """Try each notification's routes once, in the background: the caller (a committed write) does not wait."""
        for notification_id in sorted(set(notification_ids)):
            task = asyncio.create_task(self._try(complaint_id, notification_id), name=f"first-try-{notification_id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def drain(self, timeout: timedelta) -> None:
        """Let the first tries under way finish (a worker stopping), cancelling what is left after `timeout`:
        a cancelled try leaves its claim to lapse, and the delivery workflow sends."""
        if not self._running:
            return
        _, pending = await asyncio.wait(set(self._running), timeout=timeout.total_seconds())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _try(self, complaint_id: str, notification_id: int) -> None:
        tried = log.bind(complaint_id=complaint_id, notification_id=notification_id, attempt=FIRST_TRY, first_try=True)
        try:
            row = await store.notification_for_delivery(self.pool, notification_id)
            if row is None or row["status"] != "queued":
                return  # a write retried after its deliveries began: they go on without a first try
            routes, _ = await routes_for(self.pool, self.settings, row)
        except Exception:
            tried.exception("first try failed: the delivery workflow will send")
            return
        sent = await asyncio.gather(*(self._try_route(row, route, tried.bind(channel=route.channel)) for route in routes),
                                    return_exceptions=True)  # fmt: skip
        for route, outcome in zip(routes, sent):
            if isinstance(outcome, Exception):
                tried.error("first try failed: the delivery workflow will send", channel=route.channel,
                            error=f"{type(outcome).__name__}: {outcome}")  # fmt: skip

    async def _try_route(self, row: asyncpg.Record, route: Route, tried: structlog.typing.FilteringBoundLogger) -> None:
        delivery_id = delivery_id_for(row["id"])
        async with self._slots:
            claim = await claim_route(
                self.pool, delivery_id=delivery_id, target=route.target, channel=route.channel, attempt=FIRST_TRY,
                worker=self.worker, lease=self.settings.route_lease, notification_id=row["id"], untried_only=True,
            )  # fmt: skip
            if claim.attempt_id is None:
                return  # tried already (by the workflow, or another first try): its attempts take it from there
            result = await self.sender.send(row, delivery_id, route)
            delay = None if result.final else self.backoff.delay(1, result.verdict, result.retry_after)
            await self.sender.record(claim.attempt_id, row["id"], route, result, tried, retry_in=delay, hold_route=True)
