"""The notifications outbox in the application database: list it, read attempts, acknowledge rows.

Rows are written by CaseActivities.record_case_events, one per escalation
(see activities/migrations/0001_initial.sql), delivered by the delivery
workflow (workflows/delivery.py, activities/delivery_store.py), and
acknowledged by the person who acted on one (`starter.py notifications ack`).
"""

from __future__ import annotations

from typing import Iterable

import asyncpg
import structlog

from schemas.notifications import DeliveryAttempt, Notification

log = structlog.get_logger()

NOTIFICATION_COLUMNS = (
    "id, complaint_id, clock, level, occurrence, recipient, recipient_role, reason, "
    "due_at, deadline, event_seq, created_at, status, attempts, last_error, delivered_at, "
    "acknowledged_by, acknowledged_at"
)
ATTEMPT_COLUMNS = (
    "id, delivery_id, channel, target, attempt, started_at, finished_at, outcome, response_code, error, retry_at"
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
    status: str | None = None,
    limit: int = 100,
    after: int | None = None,
) -> list[Notification]:
    """Notifications matching every filter given.

    Pending only (the default): those nobody has acknowledged, oldest first. With
    pending_only=False: acknowledged ones too, newest first. status: one delivery status.
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
    if status is not None:
        params.append(status)
        where.append(f"status = ${len(params)}")
    if pending_only:
        where.append("acknowledged_at IS NULL")
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


async def get_notifications(
    pool: asyncpg.Pool | asyncpg.Connection, ids: Iterable[int], *, with_attempts: bool = False
) -> list[Notification]:
    """The notifications with these ids (unknown ids are left out), by id; with_attempts: each with its attempt log."""
    wanted = sorted(set(ids))
    rows = await pool.fetch(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ANY($1::bigint[]) ORDER BY id", wanted)
    notifications = [notification_from_row(row) for row in rows]
    if with_attempts:
        await attach_attempts(pool, notifications)
    return notifications


async def attach_attempts(pool: asyncpg.Pool | asyncpg.Connection, notifications: list[Notification]) -> None:
    """Fill each notification's attempt_log, oldest attempt first."""
    rows = await pool.fetch(
        f"SELECT notification_id, {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE notification_id = ANY($1::bigint[]) ORDER BY id",
        [n.id for n in notifications],
    )
    by_id: dict[int, list[DeliveryAttempt]] = {n.id: [] for n in notifications}
    for row in rows:
        values = dict(row)
        by_id[values.pop("notification_id")].append(DeliveryAttempt.model_validate(values))
    for notification in notifications:
        notification.attempt_log = by_id[notification.id]


async def acknowledge(pool: asyncpg.Pool | asyncpg.Connection, ids: Iterable[int], acknowledged_by: str) -> int:
    """Record that `acknowledged_by` acted on these notifications; returns how many were not yet acknowledged.

    Idempotent: a row already acknowledged keeps its first acknowledger and time; an unknown id is ignored.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    rows = await pool.fetch(
        """
        UPDATE notifications SET acknowledged_at = clock_timestamp(), acknowledged_by = $2
        WHERE id = ANY($1::bigint[]) AND acknowledged_at IS NULL
        RETURNING id
        """,
        wanted,
        acknowledged_by,
    )
    if rows:
        log.info("notifications acknowledged", ids=sorted(r["id"] for r in rows), actor=acknowledged_by)
    return len(rows)
