"""One sender per route: an attempt claims its (delivery id, target) before anything goes out.

The claim is the attempt's own row in delivery_attempts, written before the send, with `lease_until`: how
long that send may still be on the wire (DeliverySettings.route_lease). Another attempt on the same route,
a retry of one that timed out while its request still ran, finds the row and waits (DeliveryBusy) until the
row has an outcome or its lease has run out. A worker killed mid-send leaves a row without an outcome: once
its lease is over, the retry sends again, with the same idempotency key (at most twice, never lost).

A claim is one short transaction, serialised per route by a transaction-scoped advisory lock, so no pooled
connection is held while a message is on the wire (decision 0011).

A notification's claim also heeds a first try made at commit (activities/first_try.py, decision 0013): a
route that try gave up on is not sent again, and one it failed on waits for the retry time it recorded. A
first try itself claims only a route nobody has tried: a write retried later must not resend on a route
whose workflow attempts are backing off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

# Advisory lock namespace of the claims (with a hash of delivery id and target as the key).
ROUTE_LOCK = "complaints/route/"

ROUTE_STATE = """
SELECT coalesce(bool_or(outcome = 'delivered'), false) AS delivered,
       coalesce(bool_or(outcome IS NULL AND lease_until > clock_timestamp()), false) AS busy,
       (array_agg(coalesce(error, 'gave up') ORDER BY id DESC) FILTER (WHERE outcome = 'gave_up'))[1] AS gave_up,
       max(retry_at) FILTER (WHERE outcome = 'failed') - clock_timestamp() AS retry_in,
       (array_agg(error ORDER BY id DESC) FILTER (WHERE outcome = 'failed'))[1] AS last_error,
       count(*) AS attempts,
       (SELECT coalesce(w.disabled_reason, 'disabled') FROM webhook_endpoints w
        WHERE w.url = $2 AND w.disabled_at IS NOT NULL) AS disabled
FROM delivery_attempts WHERE delivery_id = $1 AND target = $2
"""


@dataclass(frozen=True)
class Claim:
    """What an attempt found on its route: send under `attempt_id`, or nothing to send now: delivered, its
    endpoint `disabled` (why: a 410 Gone), busy, given up by an earlier attempt (`gave_up`, its error), to be
    tried no sooner than `retry_in` from now (`last_error`: why the first try failed), or, for a first try,
    `tried` already."""

    attempt_id: int | None = None
    delivered: bool = False
    disabled: str | None = None
    busy: bool = False
    gave_up: str | None = None
    retry_in: timedelta | None = None
    last_error: str | None = None
    tried: bool = False


async def claim_route(
    pool: asyncpg.Pool,
    *,
    delivery_id: str,
    target: str,
    channel: str,
    attempt: int,
    worker: str,
    lease: timedelta,
    notification_id: int | None = None,
    heed_first_try: bool = False,
    untried_only: bool = False,
) -> Claim:
    """Record this attempt as the route's sender, unless the route was delivered, its endpoint is disabled (a
    410 Gone, since the plan or the feed's last read) or another attempt holds it.

    notification_id: the notification's row also counts the attempt and shows `sending` (None for a case
    event sent to a subscription).
    heed_first_try: a give-up, or a retry time, recorded by a failed attempt stops this one (a notification's
    routes; not a case event, which `webhooks resume` sends again after a give-up).
    untried_only: claim only a route with no attempt yet (a first try)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{ROUTE_LOCK}{delivery_id}/{target}")
        state = await conn.fetchrow(ROUTE_STATE, delivery_id, target)
        if state["delivered"]:
            return Claim(delivered=True)
        if state["disabled"] is not None:
            return Claim(disabled=state["disabled"])
        if state["busy"]:
            return Claim(busy=True)
        if untried_only and state["attempts"] > 0:
            return Claim(tried=True)
        if heed_first_try and state["gave_up"] is not None:
            return Claim(gave_up=state["gave_up"])
        if heed_first_try and state["retry_in"] is not None and state["retry_in"] > timedelta(0):
            return Claim(retry_in=state["retry_in"], last_error=state["last_error"])
        # The lease counts from the attempt's own start: one clock reading for both.
        attempt_id = await conn.fetchval(
            "INSERT INTO delivery_attempts (delivery_id, notification_id, channel, target, attempt, worker, started_at, lease_until) "
            "SELECT $1, $2, $3, $4, $5, $6, now.at, now.at + $7::interval FROM (SELECT clock_timestamp() AS at) AS now "
            "RETURNING id",
            delivery_id, notification_id, channel, target, attempt, worker, lease,
        )  # fmt: skip
        if notification_id is not None:
            await conn.execute(
                "UPDATE notifications SET attempts = attempts + 1, "
                "status = CASE WHEN status = 'delivered' THEN status ELSE 'sending' END WHERE id = $1",
                notification_id,
            )
        return Claim(attempt_id=attempt_id)
