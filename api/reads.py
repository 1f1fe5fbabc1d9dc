"""Lists served from PostgreSQL, never from workflow queries: a list never wakes a case.

Cases: filters, keyset pages (newest received first) and a total; notifications: the outbox.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from api.problems import Problem
from api.visibility import Viewer

MAX_PAGE = 200


class CaseFilters(BaseModel):
    owner: str | None = None
    status: str | None = None
    category: str | None = None
    severity: str | None = None
    escalation_level: int | None = None
    customer: str | None = None
    deadline_before: datetime | None = None


class CaseRow(BaseModel):
    complaint_id: str
    customer_id: str
    category: str
    severity: str
    status: str
    owner: str | None
    escalation_level: int
    next_deadline: datetime | None
    received_at: datetime
    closed_at: datetime | None
    outcome: str | None


class CasePage(BaseModel):
    items: list[CaseRow]
    total: int
    next: str | None  # pass as ?after= for the next page; None on the last


def _cursor(row: CaseRow) -> str:
    raw = json.dumps([row.received_at.isoformat(), row.complaint_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        received_at, complaint_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(received_at), str(complaint_id)
    except (ValueError, TypeError):
        raise Problem(400, "after: not a cursor this API gave (use the `next` of the previous page)") from None


async def list_cases(pool, viewer: Viewer, filters: CaseFilters, *, limit: int, after: str | None) -> CasePage:  # type: ignore[no-untyped-def]
    if not 1 <= limit <= MAX_PAGE:
        raise Problem(400, f"limit must be between 1 and {MAX_PAGE} (got {limit})")
    params: list[Any] = []
    where = [viewer.case_filter(params)]
    for column, value in (
        ("owner", filters.owner), ("status", filters.status), ("category", filters.category),
        ("severity", filters.severity), ("escalation_level", filters.escalation_level), ("customer_id", filters.customer),
    ):  # fmt: skip
        if value is not None:
            params.append(value)
            where.append(f"{column} = ${len(params)}")
    if filters.deadline_before is not None:
        params.append(filters.deadline_before)
        where.append(f"next_deadline < ${len(params)}")
    condition = " AND ".join(where)
    total = await pool.fetchval(f"SELECT count(*) FROM cases WHERE {condition}", *params)
    page_params = list(params)
    page_condition = condition
    if after is not None:
        received_at, complaint_id = _after(after)
        page_params += [received_at, complaint_id]
        page_condition += f" AND (received_at, complaint_id) < (${len(page_params) - 1}, ${len(page_params)})"
    page_params.append(limit + 1)
    rows = await pool.fetch(
        f"SELECT {', '.join(CaseRow.model_fields)} FROM cases WHERE {page_condition} "
        f"ORDER BY received_at DESC, complaint_id DESC LIMIT ${len(page_params)}",
        *page_params,
    )
    items = [CaseRow.model_validate(dict(row)) for row in rows[:limit]]
    return CasePage(items=items, total=total, next=_cursor(items[-1]) if len(rows) > limit else None)


class NotificationPage(BaseModel):
    items: list[dict[str, Any]]
    next: int | None  # pass as ?after= for the next page; None on the last


async def list_notifications_page(
    pool, viewer: Viewer, *, pending_only: bool, complaint_id: str | None, limit: int, after: int | None
) -> NotificationPage:  # type: ignore[no-untyped-def]
    """Notifications whose recipient the viewer sees: pending oldest first (the order to act on them), or all
    newest first; keyset pages by id."""
    from activities.notifications_store import list_notifications

    if not 1 <= limit <= MAX_PAGE:
        raise Problem(400, f"limit must be between 1 and {MAX_PAGE} (got {limit})")
    found = await list_notifications(
        pool, recipients=viewer.owners, complaint_id=complaint_id, pending_only=pending_only, limit=limit + 1, after=after
    )
    items = [notification.model_dump(mode="json") for notification in found[:limit]]
    return NotificationPage(items=items, next=items[-1]["id"] if len(found) > limit else None)
