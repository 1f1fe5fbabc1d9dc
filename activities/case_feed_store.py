"""The case feeds' reads and writes: a subscription's next events of a case, the event to send, the cursor."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from delivery.case_events import timeline_kinds_for

Db = asyncpg.Pool | asyncpg.Connection


@dataclass(frozen=True)
class FeedPosition:
    """Where a case's feed to a subscription stands; subscribed False: the subscription is gone or inactive."""

    subscribed: bool
    last_seq: int = 0
    stopped_seq: int | None = None


async def feed_position(conn: asyncpg.Connection, subscription_id: int, complaint_id: str) -> FeedPosition:
    """The feed's cursor, created at 0 on its first read."""
    subscription = await conn.fetchrow("SELECT active FROM webhook_subscriptions WHERE id = $1", subscription_id)
    if subscription is None or not subscription["active"]:
        return FeedPosition(subscribed=False)
    await conn.execute(
        "INSERT INTO subscription_cursors (subscription_id, complaint_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        subscription_id, complaint_id,
    )  # fmt: skip
    row = await conn.fetchrow(
        "SELECT last_seq, stopped_seq FROM subscription_cursors WHERE subscription_id = $1 AND complaint_id = $2",
        subscription_id, complaint_id,
    )  # fmt: skip
    return FeedPosition(subscribed=True, last_seq=row["last_seq"], stopped_seq=row["stopped_seq"])


async def next_event_seqs(conn: Db, subscription_id: int, complaint_id: str, after: int, limit: int) -> list[int]:
    """The seqs after `after` of the case's events whose types the subscription wants, recorded since it was
    created, in order; at most `limit`."""
    kinds = await conn.fetchval("SELECT kinds FROM webhook_subscriptions WHERE id = $1", subscription_id)
    if not kinds:
        return []
    rows = await conn.fetch(
        """
        SELECT e.seq FROM case_events e, webhook_subscriptions s
        WHERE s.id = $1 AND e.complaint_id = $2 AND e.seq > $3 AND e.kind = ANY($4::text[]) AND e.recorded_at >= s.created_at
        ORDER BY e.seq
        LIMIT $5
        """,
        subscription_id, complaint_id, after, timeline_kinds_for(kinds), limit,
    )  # fmt: skip
    return [row["seq"] for row in rows]


# The subscription and the event in one read; no row: the subscription is gone (the endpoint's state is
# read by the route's claim: activities/route_claims.py).
EVENT_FOR_DELIVERY = """
SELECT s.url, s.active, e.seq, e.at, e.kind, e.actor, e.channel, e.data
FROM webhook_subscriptions s
LEFT JOIN case_events e ON e.complaint_id = $2 AND e.seq = $3
WHERE s.id = $1
"""


async def event_for_delivery(conn: Db, subscription_id: int, complaint_id: str, seq: int) -> asyncpg.Record | None:
    return await conn.fetchrow(EVENT_FOR_DELIVERY, subscription_id, complaint_id, seq)


async def end_event_attempt(conn: asyncpg.Connection, attempt_id: int, outcome: str, response_code: int | None,
                            error: str | None) -> None:
    await conn.execute(
        "UPDATE delivery_attempts SET finished_at = clock_timestamp(), outcome = $2, response_code = $3, error = $4 "
        "WHERE id = $1",
        attempt_id, outcome, response_code, error,
    )  # fmt: skip


async def advance_cursor(conn: Db, subscription_id: int, complaint_id: str, seq: int) -> None:
    """The event at seq is delivered: the feed's cursor moves to it (never back)."""
    await conn.execute(
        """
        INSERT INTO subscription_cursors (subscription_id, complaint_id, last_seq) VALUES ($1, $2, $3)
        ON CONFLICT (subscription_id, complaint_id) DO UPDATE
        SET last_seq = GREATEST(subscription_cursors.last_seq, EXCLUDED.last_seq), updated_at = now()
        """,
        subscription_id, complaint_id, seq,
    )  # fmt: skip


async def stop_feed(conn: Db, subscription_id: int, complaint_id: str, seq: int, error: str) -> bool:
    """Mark the feed stopped at seq; False when the subscription is gone (nothing to stop)."""
    stopped = await conn.fetchval(
        """
        INSERT INTO subscription_cursors (subscription_id, complaint_id, stopped_seq, stopped_at, stopped_error)
        SELECT $1, $2, $3, now(), $4 WHERE EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = $1)
        ON CONFLICT (subscription_id, complaint_id) DO UPDATE
        SET stopped_seq = EXCLUDED.stopped_seq, stopped_at = EXCLUDED.stopped_at,
            stopped_error = EXCLUDED.stopped_error, updated_at = now()
        RETURNING 1
        """,
        subscription_id, complaint_id, seq, error[:2_000],
    )  # fmt: skip
    return stopped is not None
