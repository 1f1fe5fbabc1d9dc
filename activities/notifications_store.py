"""The notifications outbox in the application database: list it, mark rows delivered.

Rows are written by CaseActivities.record_case_events, one per escalation
(see activities/migrations/0001_initial.sql); whoever delivers one
(a person through `starter.py notifications ack`, or a sender process)
marks it delivered here.
"""

from __future__ import annotations

from typing import Iterable

import asyncpg
import structlog

from schemas.notifications import Notification

log = structlog.get_logger()

NOTIFICATION_COLUMNS = (
    "id, complaint_id, clock, level, occurrence, recipient, recipient_role, reason, "
    "due_at, deadline, event_seq, created_at, delivered_at, acknowledged_by"
)


def notification_from_row(row: asyncpg.Record) -> Notification:
    return Notification.model_validate(dict(row))


async def list_notifications(
    pool: asyncpg.Pool | asyncpg.Connection,
    *,
    recipient: str | None = None,
    recipients: Iterable[str] | None = None,
    complaint_id: str | None = None,
    pending_only: bool = True,
    limit: int = 100,
    after: int | None = None,
) -> list[Notification]:
    """Notifications matching every filter given.

    Pending only (the default): the outbox, oldest first, the order to deliver
    them in. With pending_only=False: delivered ones too, newest first.
    recipients: any of these (the HTTP API's reader's); after: the id a previous page ended at.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    where = []
    params: list[object] = []
    if recipient is not None:
        params.append(recipient)
        where.append(f"recipient = ${len(params)}")
    if recipients is not None:
        params.append(sorted(recipients))
        where.append(f"recipient = ANY(${len(params)}::text[])")
    if complaint_id is not None:
        params.append(complaint_id)
        where.append(f"complaint_id = ${len(params)}")
    if pending_only:
        where.append("delivered_at IS NULL")
    if after is not None:
        params.append(after)
        where.append(f"id {'>' if pending_only else '<'} ${len(params)}")
    # Ids grow with created_at: ordering by id keeps pages stable.
    order = "id" if pending_only else "id DESC"
    params.append(limit)
    rows = await pool.fetch(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notifications"
        f"{' WHERE ' + ' AND '.join(where) if where else ''}"
        f" ORDER BY {order} LIMIT ${len(params)}",
        *params,
    )
    return [notification_from_row(row) for row in rows]


async def get_notifications(pool: asyncpg.Pool | asyncpg.Connection, ids: Iterable[int]) -> list[Notification]:
    """The notifications with these ids (unknown ids are left out), by id."""
    rows = await pool.fetch(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ANY($1::bigint[]) ORDER BY id",
        sorted(set(ids)),
    )
    return [notification_from_row(row) for row in rows]


async def mark_delivered(
    pool: asyncpg.Pool | asyncpg.Connection, ids: Iterable[int], acknowledged_by: str | None = None
) -> int:
    """Mark these notifications delivered; returns how many were pending (and now are not).

    acknowledged_by: the person who acted on them (`notifications ack`); None for a sender.
    Idempotent: a row already delivered keeps its first delivered_at and acknowledger, an unknown id is ignored.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    rows = await pool.fetch(
        """
        UPDATE notifications SET delivered_at = clock_timestamp(), acknowledged_by = $2
        WHERE id = ANY($1::bigint[]) AND delivered_at IS NULL
        RETURNING id
        """,
        wanted,
        acknowledged_by,
    )
    if rows:
        log.info("notifications delivered", ids=sorted(r["id"] for r in rows), actor=acknowledged_by)
    return len(rows)
