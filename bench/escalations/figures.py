"""A side's figures: lateness and drain rate of the rows its escalations wrote, all due at one instant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bench.common import percentile


def figures(rows: list[Any], due: datetime, expected: int) -> dict[str, Any]:
    """Lateness and drain rate of rows (each with due_at and created_at) due at `due`."""
    if not rows:
        return {"seen": 0, "expected": expected}
    late_ms = sorted((r["created_at"] - r["due_at"]).total_seconds() * 1000 for r in rows)
    last = max(r["created_at"] for r in rows)
    span = (last - due).total_seconds()
    return {
        "seen": len(rows),
        "expected": expected,
        "lateness_ms": {
            "min": round(late_ms[0], 1),
            "p50": round(percentile(late_ms, 50), 1),
            "p99": round(percentile(late_ms, 99), 1),
            "max": round(late_ms[-1], 1),
            "mean": round(sum(late_ms) / len(late_ms), 1),
        },
        "drain_seconds": round(span, 3),
        "escalations_per_second": round(len(rows) / span, 1) if span > 0 else None,
        "due_at_off_by_max_ms": round(max(abs((r["due_at"] - due).total_seconds()) for r in rows) * 1000, 3),
    }
