"""The delivery figures of one run: for the measured notifications (each with due_at and created_at), the
escalation's lateness and, per channel, the arrival after the due time and the delivery's own share."""

from __future__ import annotations

from typing import Any, Sequence

from bench.common import percentile

# The goal (issue 20): p99 of arrival - created_at within this, on each channel.
GOAL_SHARE_MS = 2000.0
CHANNELS = ("email", "webhook")


def spread(values_ms: Sequence[float]) -> dict[str, Any]:
    """p50, p99 and max (nearest rank) of a set of milliseconds, as bench/escalations/figures.py."""
    values = sorted(values_ms)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(values[-1], 1),
    }


def delivery_figures(rows: list[Any], arrivals: dict[str, dict[str, float]], expected: int) -> dict[str, Any]:
    """rows: the measured notifications (id, due_at, created_at) written in time, of `expected`; arrivals: per
    channel, the first arrival (time.time()) of each key ntf-<id>. A notification that never arrived is
    counted, not timed."""
    late_ms = [(r["created_at"] - r["due_at"]).total_seconds() * 1000 for r in rows]
    out: dict[str, Any] = {"expected": expected, "notifications": len(rows), "escalation_lateness_ms": spread(late_ms)}
    for channel in CHANNELS:
        at = arrivals.get(channel, {})
        from_due, share = [], []
        for r in rows:
            arrived = at.get(f"ntf-{r['id']}")
            if arrived is not None:
                from_due.append((arrived - r["due_at"].timestamp()) * 1000)
                share.append((arrived - r["created_at"].timestamp()) * 1000)
        out[channel] = {
            "arrived": len(from_due),
            "missing": len(rows) - len(from_due),
            "arrival_after_due_ms": spread(from_due),
            "delivery_share_ms": spread(share),
        }
    out["goal"] = verdict(out)
    return out


def verdict(figures: dict[str, Any]) -> dict[str, Any]:
    """Met when every expected notification was written and arrived on both channels, and each channel's
    p99 of arrival - created_at is within GOAL_SHARE_MS: within 2 s of the escalation's own lateness."""
    p99 = {channel: figures[channel]["delivery_share_ms"].get("p99") for channel in CHANNELS}
    written = figures["notifications"] == figures["expected"] > 0
    arrived = all(figures[c]["missing"] == 0 for c in CHANNELS)
    met = written and arrived and all(v is not None and v <= GOAL_SHARE_MS for v in p99.values())
    return {"delivery_share_p99_limit_ms": GOAL_SHARE_MS, "delivery_share_p99_ms": p99, "all_written": written,
            "all_arrived": arrived, "met": met}
