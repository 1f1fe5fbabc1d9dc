"""What the application database knows of a customer's earlier complaints."""

from __future__ import annotations

import asyncpg

from schemas.state import CustomerHistory


async def customer_history(pool: asyncpg.Pool | asyncpg.Connection, customer_id: str, complaint_id: str) -> CustomerHistory:
    """The customer's other cases: how many, which are still open, how the latest closed one ended."""
    rows = await pool.fetch(
        "SELECT complaint_id, category, status, outcome, closed_at FROM cases "
        "WHERE customer_id = $1 AND complaint_id <> $2 ORDER BY received_at DESC, complaint_id",
        customer_id,
        complaint_id,
    )
    closed = [row for row in rows if row["status"] == "closed"]
    latest_closed = max(closed, key=lambda row: row["closed_at"]) if closed else None
    return CustomerHistory(
        earlier_cases=len(rows),
        open_cases=[f"{row['complaint_id']} ({row['category']}, {row['status']})" for row in rows if row["status"] != "closed"],
        last_complaint_id=latest_closed["complaint_id"] if latest_closed else None,
        last_outcome=latest_closed["outcome"] if latest_closed else None,
        last_closed_at=latest_closed["closed_at"] if latest_closed else None,
    )
