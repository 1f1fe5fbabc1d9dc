"""The stall monitor: reads the outbox's backlog into the gauges (delivery/metrics.py) and logs
`delivery_stalled` once for each row undelivered longer than DELIVERY_STALLED_SECONDS.

Every worker runs one beside its Temporal worker (worker.serve), so each reports the
same backlog. A row is reported once per stall: the monitor remembers the ids it
reported and forgets those no longer stalled (delivered, dead, or past the cap).
The log lines carry ids, status and age, never an address or anything the customer said.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator, Sequence

import asyncpg
import structlog

from delivery import metrics
from delivery.settings import DeliverySettings

log = structlog.get_logger("delivery.monitor")

UNDELIVERED = ("queued", "sending", "retrying")
# At most this many stalled rows are read (oldest first) and logged per check; the gauge counts them all.
STALLED_ROWS_CAP = 100

# One query: per undelivered status its count, oldest age and stalled count; then the stalled rows, oldest first.
# $1: the instant to measure from (NULL: the database's now()); $2: stalled after; $3: the cap.
BACKLOG = """
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS at),
undelivered AS (
    SELECT n.id, n.complaint_id, n.status, greatest(extract(epoch FROM clock.at - n.created_at), 0)::float8 AS age,
           n.created_at < clock.at - $2::interval AS stalled
    FROM notifications n, clock
    WHERE n.status IN ('queued', 'sending', 'retrying')
)
SELECT status, count(*) AS pending, max(age) AS age, count(*) FILTER (WHERE stalled) AS stalled,
       NULL::bigint AS id, NULL::text AS complaint_id
FROM undelivered GROUP BY status
UNION ALL
(SELECT status, NULL, age, NULL, id, complaint_id FROM undelivered WHERE stalled ORDER BY age DESC, id LIMIT $3)
"""


@dataclass(frozen=True)
class StalledRow:
    notification_id: int
    complaint_id: str
    status: str
    age_seconds: float


@dataclass(frozen=True)
class MonitorReading:
    # Rows per undelivered status (each of UNDELIVERED, 0 when none).
    pending: dict[str, int]
    # Age of the oldest undelivered row; 0 when there is none.
    oldest_pending_seconds: float
    # Every stalled row, counted; `stalled` lists the oldest STALLED_ROWS_CAP of them.
    stalled_count: int
    stalled: tuple[StalledRow, ...] = ()
    # The stalled rows this check reported (logged) for the first time.
    newly_stalled: tuple[StalledRow, ...] = ()


def newly_stalled(reported: frozenset[int], stalled: Sequence[StalledRow]) -> tuple[tuple[StalledRow, ...], frozenset[int]]:
    """The rows to report now (stalled, not reported before) and the ids to remember: exactly those stalled now,
    so a row that stops being stalled is forgotten and reported again if it ever stalls again."""
    fresh = tuple(row for row in stalled if row.notification_id not in reported)
    return fresh, frozenset(row.notification_id for row in stalled)


def reading_from_rows(rows: Sequence[asyncpg.Record] | Sequence[dict]) -> MonitorReading:
    pending = dict.fromkeys(UNDELIVERED, 0)
    oldest, stalled_count, stalled = 0.0, 0, []
    for row in rows:
        if row["id"] is None:
            pending[row["status"]] = row["pending"]
            oldest = max(oldest, row["age"])
            stalled_count += row["stalled"]
        else:
            stalled.append(StalledRow(row["id"], row["complaint_id"], row["status"], round(row["age"], 3)))
    return MonitorReading(pending, oldest, stalled_count, tuple(stalled))


class DeliveryMonitor:
    def __init__(self, pool: asyncpg.Pool, settings: DeliverySettings, cap: int = STALLED_ROWS_CAP) -> None:
        self.pool = pool
        self.settings = settings
        self.cap = cap
        self.reported: frozenset[int] = frozenset()

    async def check_once(self, now: datetime | None = None) -> MonitorReading:
        """Read the backlog as of `now` (default: the database's clock), set the gauges, log new stalls."""
        rows = await self.pool.fetch(BACKLOG, now, self.settings.stalled_after, self.cap)
        reading = reading_from_rows(rows)
        for status, count in reading.pending.items():
            metrics.PENDING.labels(status).set(count)
        metrics.OLDEST_PENDING.set(reading.oldest_pending_seconds)
        metrics.STALLED.set(reading.stalled_count)
        fresh, self.reported = newly_stalled(self.reported, reading.stalled)
        for row in fresh:
            log.warning(
                "delivery_stalled",
                notification_id=row.notification_id,
                complaint_id=row.complaint_id,
                status=row.status,
                age_seconds=row.age_seconds,
                stalled_after_seconds=self.settings.stalled_after.total_seconds(),
            )
        return MonitorReading(reading.pending, reading.oldest_pending_seconds, reading.stalled_count, reading.stalled, fresh)

    async def run(self, stop: asyncio.Event, every: float) -> None:
        """Check every `every` seconds until `stop` is set (or the task is cancelled). A failed check
        (the database away) is logged and tried again at the next tick, so the worker keeps running."""
        while not stop.is_set():
            try:
                await self.check_once()
            except Exception as error:  # noqa: BLE001 - the monitor must not stop the worker
                log.warning("delivery monitor check failed", error=f"{type(error).__name__}: {error}")
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except asyncio.TimeoutError:
                pass


@asynccontextmanager
async def delivery_monitoring(pool: asyncpg.Pool, settings: DeliverySettings) -> AsyncIterator[DeliveryMonitor]:
    """The monitor checking every settings.monitor_every, and /metrics served on settings.metrics_port
    when one is set (OSError when it is taken), for the block; both stop when it ends."""
    stop_metrics = metrics.serve_metrics(settings.metrics_port, settings.metrics_address) if settings.metrics_port is not None else None
    monitor = DeliveryMonitor(pool, settings)
    checking = asyncio.create_task(monitor.run(asyncio.Event(), settings.monitor_every.total_seconds()), name="delivery monitor")
    if settings.metrics_port is not None:
        log.info("metrics served", address=settings.metrics_address, port=settings.metrics_port, path="/metrics")
    try:
        yield monitor
    finally:
        checking.cancel()
        await asyncio.wait({checking})  # wait, not await: the monitor's CancelledError is not the caller's
        if stop_metrics is not None:
            stop_metrics()
