"""Waiting for the measured notifications to arrive at the SMTP sink and the webhook receiver, and what
the worker recorded of its attempts to get them there."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.delivery.figures import CHANNELS
from tools.harness.delivery_witness import DeliveryWitness
from tools.harness.progress import Progress

# Seconds between two looks at what arrived.
POLL = 0.25
# The wait ends when nothing more arrived for this long (a delivery retrying waits 1 s, then 2, 4, ...).
STALL = 60.0


async def wait_for_arrivals(witness: DeliveryWitness, rows: list[Any], progress: Progress,
                            limit: float) -> dict[str, dict[str, float]]:
    """Per channel, the first arrival (time.time()) of each of rows' notifications (key ntf-<id>), once
    all of them arrived on both channels, nothing more arrived for STALL seconds, or limit seconds passed."""
    keys = {f"ntf-{r['id']}" for r in rows}
    progress.set(f"delivery: waiting for {len(keys)} notifications at the SMTP sink and the webhook receiver",
                 len(keys) * len(CHANNELS))  # fmt: skip
    began = last_change = time.monotonic()
    seen = -1
    while True:
        arrived = {"email": witness.email_arrivals(), "webhook": witness.webhook_arrivals()}
        counts = {channel: len(keys & at.keys()) for channel, at in arrived.items()}
        now = time.monotonic()
        if sum(counts.values()) != seen:
            seen, last_change = sum(counts.values()), now
        progress.done = seen
        progress.extra = f" (email {counts['email']}, webhook {counts['webhook']})"
        if all(count == len(keys) for count in counts.values()) or now - last_change > STALL or now - began > limit:
            break
        await asyncio.sleep(POLL)
    progress.print()
    return {channel: {k: at[k] for k in keys & at.keys()} for channel, at in arrived.items()}


async def attempts(pool: Any, rows: list[Any]) -> dict[str, Any]:
    """The delivery attempts of rows' notifications, per channel: how many, how many delivered, how many of
    those by the first try at commit (attempt 0, activities/first_try.py), and the rows' final status (a
    retry or a dead row shows here, not in the timings)."""
    ids = [r["id"] for r in rows]
    by_channel = await pool.fetch(
        "SELECT channel, count(*) AS attempts, count(*) FILTER (WHERE outcome = 'delivered') AS delivered, "
        "count(*) FILTER (WHERE outcome = 'delivered' AND attempt = 0) AS at_commit "
        "FROM delivery_attempts WHERE notification_id = ANY($1::bigint[]) GROUP BY channel", ids)
    statuses = await pool.fetch(
        "SELECT status, count(*) AS n FROM notifications WHERE id = ANY($1::bigint[]) GROUP BY status", ids)
    return {
        "by_channel": {r["channel"]: {"attempts": r["attempts"], "delivered": r["delivered"], "at_commit": r["at_commit"]}
                       for r in by_channel},
        "notification_status": {r["status"]: r["n"] for r in statuses},
    }
