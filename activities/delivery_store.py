"""The delivery's reads and writes: a notification with its case and recipient, attempts, endpoints."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from delivery.webhooks import new_secret

# The notification, its case's owner and the recipient's channels, in one read.
NOTIFICATION_FOR_DELIVERY = """
SELECT n.id, n.complaint_id, n.clock, n.level, n.recipient, n.recipient_role, n.reason, n.due_at, n.deadline,
       n.event_seq, n.created_at, n.status, n.last_error,
       c.owner, c.policy, a.name AS recipient_name, a.team AS recipient_team, a.email, a.webhook_url, a.chat_webhook_url
FROM notifications n
LEFT JOIN cases c ON c.complaint_id = n.complaint_id
LEFT JOIN agents a ON a.id = n.recipient
WHERE n.id = $1
"""


async def notification_for_delivery(conn: asyncpg.Pool | asyncpg.Connection, notification_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(NOTIFICATION_FOR_DELIVERY, notification_id)


async def endpoint_secrets(conn: asyncpg.Pool | asyncpg.Connection, url: str) -> list[str]:
    """The endpoint's signing secrets, newest first; a first use creates its secret (`starter.py webhooks secret`)."""
    await conn.execute(
        "INSERT INTO webhook_endpoints (url, secrets) VALUES ($1, $2) ON CONFLICT (url) DO NOTHING", url, [new_secret()]
    )
    return list(await conn.fetchval("SELECT secrets FROM webhook_endpoints WHERE url = $1", url))


async def disabled_endpoints(conn: asyncpg.Pool | asyncpg.Connection, urls: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT url FROM webhook_endpoints WHERE url = ANY($1::text[]) AND disabled_at IS NOT NULL", urls)
    return {row["url"] for row in rows}


async def disable_endpoint(conn: asyncpg.Pool | asyncpg.Connection, url: str, reason: str) -> None:
    await conn.execute(
        """
        INSERT INTO webhook_endpoints (url, secrets, disabled_at, disabled_reason) VALUES ($1, $2, now(), $3)
        ON CONFLICT (url) DO UPDATE SET disabled_at = COALESCE(webhook_endpoints.disabled_at, now()),
                                        disabled_reason = COALESCE(webhook_endpoints.disabled_reason, $3)
        """,
        url,
        [new_secret()],
        reason,
    )


async def end_attempt(conn: asyncpg.Connection, attempt_id: int, notification_id: int, outcome: str,
                      response_code: int | None = None, error: str | None = None, retry_in: timedelta | None = None) -> None:
    """Complete the attempt and move the row: delivered, or retrying (a row some route delivered stays delivered).
    retry_in: the route is not claimed again before this much time from now (activities/route_claims.py)."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE delivery_attempts SET finished_at = clock_timestamp(), outcome = $2, response_code = $3, error = $4, "
            "retry_at = clock_timestamp() + $5::interval WHERE id = $1",
            attempt_id, outcome, response_code, error, retry_in,
        )  # fmt: skip
        if outcome == "delivered":
            await conn.execute(
                "UPDATE notifications SET status = 'delivered', delivered_at = COALESCE(delivered_at, clock_timestamp()) "
                "WHERE id = $1",
                notification_id,
            )
        else:
            await conn.execute(
                "UPDATE notifications SET last_error = $2, "
                "status = CASE WHEN status = 'delivered' THEN status ELSE 'retrying' END WHERE id = $1",
                notification_id, error,
            )  # fmt: skip


async def finish(conn: asyncpg.Pool | asyncpg.Connection, notification_id: int, delivered: bool) -> str:
    """The row's final status: delivered, or dead when no route took it."""
    return await conn.fetchval(
        "UPDATE notifications SET status = CASE WHEN $2 OR status = 'delivered' THEN 'delivered' ELSE 'dead' END "
        "WHERE id = $1 RETURNING status",
        notification_id,
        delivered,
    )


async def attempted_targets(conn: asyncpg.Pool | asyncpg.Connection, notification_id: int) -> set[str]:
    rows = await conn.fetch("SELECT DISTINCT target FROM delivery_attempts WHERE notification_id = $1", notification_id)
    return {row["target"] for row in rows}


async def queue_dead_letter_notice(conn: asyncpg.Connection, dead: asyncpg.Record, recipient: dict[str, Any]) -> int:
    """Queue (once) the notice that `dead` reached nobody, for `recipient` (the case's supervisor or manager)."""
    reason = (
        f"Notification {dead['id']} ({dead['clock']}, level {dead['level']}) to {dead['recipient']} could not be "
        f"delivered: {dead['last_error'] or 'every channel gave up'}. It said: {dead['reason']}"
    )[:2_000]
    clock = f"undelivered:{dead['id']}"
    level = 3 if recipient["role"] == "manager" else 2
    notice_id = await conn.fetchval(
        """
        INSERT INTO notifications (complaint_id, clock, level, occurrence, recipient, recipient_role, reason,
                                   due_at, deadline, event_seq)
        VALUES ($1, $2, $3, 1, $4, $5, $6, clock_timestamp(), NULL, $7)
        ON CONFLICT (complaint_id, clock, level, occurrence) DO NOTHING
        RETURNING id
        """,
        dead["complaint_id"], clock, level, recipient["id"], recipient["role"], reason, dead["event_seq"],
    )  # fmt: skip
    if notice_id is None:
        notice_id = await conn.fetchval(
            "SELECT id FROM notifications WHERE complaint_id = $1 AND clock = $2 AND level = $3",
            dead["complaint_id"], clock, level,
        )  # fmt: skip
    return notice_id


async def dead_letter_recipient(conn: asyncpg.Pool | asyncpg.Connection, owner: str | None, dead_recipient: str) -> dict[str, Any] | None:
    """Who hears that a notification died: the owner's supervisor, or the manager above them when the
    supervisor was the one it failed to reach; None when the roster names nobody."""
    if owner is None:
        return None
    chain = await conn.fetch(
        """
        WITH RECURSIVE up AS (
            SELECT a.id, a.role, a.supervisor_id, 0 AS depth FROM agents a WHERE a.id = $1
            UNION ALL
            SELECT b.id, b.role, b.supervisor_id, up.depth + 1 FROM agents b JOIN up ON b.id = up.supervisor_id
            WHERE up.depth < 5
        )
        SELECT id, role FROM up WHERE depth > 0 ORDER BY depth
        """,
        owner,
    )
    for row in chain:
        if row["id"] != dead_recipient:
            return {"id": row["id"], "role": row["role"]}
    return None
