"""Subscriptions to case events and their endpoints' secrets, as `starter.py webhooks` manages them."""

from __future__ import annotations

import asyncpg

from activities.delivery_store import endpoint_secrets
from delivery.webhooks import new_secret
from schemas.case_feed import Subscription

Db = asyncpg.Pool | asyncpg.Connection


class SubscriptionError(ValueError):
    """A request the subscriptions cannot take: the message says why and what to do."""


_SUBSCRIPTIONS = """
SELECT s.id, s.name, s.url, s.kinds, s.active, s.created_at, s.created_by, w.disabled_reason AS endpoint_disabled,
       (SELECT count(*) FROM subscription_cursors c WHERE c.subscription_id = s.id AND c.stopped_seq IS NOT NULL)
           AS stopped_feeds
FROM webhook_subscriptions s LEFT JOIN webhook_endpoints w ON w.url = s.url AND w.disabled_at IS NOT NULL
"""


async def add_subscription(conn: asyncpg.Connection, name: str, url: str, kinds: list[str], created_by: str) -> tuple[Subscription, list[str]]:
    """Subscribe `url` to these public types (checked by the caller); returns it and the endpoint's secrets
    (created with the endpoint when it is new)."""
    async with conn.transaction():
        added = await conn.fetchval(
            "INSERT INTO webhook_subscriptions (name, url, kinds, created_by) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (name) DO NOTHING RETURNING id",
            name, url, kinds, created_by,
        )  # fmt: skip
        if added is None:
            raise SubscriptionError(f"a subscription named {name!r} already exists (remove it first, or choose another name)")
        secrets = await endpoint_secrets(conn, url)
        row = await conn.fetchrow(_SUBSCRIPTIONS + " WHERE s.id = $1", added)
    return Subscription.model_validate(dict(row)), secrets


async def list_subscriptions(conn: Db) -> list[Subscription]:
    return [Subscription.model_validate(dict(row)) for row in await conn.fetch(_SUBSCRIPTIONS + " ORDER BY s.name")]


async def remove_subscription(conn: Db, name: str) -> bool:
    """Delete it and its feeds' cursors; a feed still running ends before its next event. False: no such name."""
    return await conn.fetchval("DELETE FROM webhook_subscriptions WHERE name = $1 RETURNING id", name) is not None


async def resume_subscription(conn: asyncpg.Connection, name: str) -> tuple[int, list[str]]:
    """Re-enable the subscription's endpoint and clear its stopped feeds; returns its id and the cases whose
    feeds must be woken to go on from the event they stopped at."""
    async with conn.transaction():
        subscription = await conn.fetchrow("SELECT id, url FROM webhook_subscriptions WHERE name = $1", name)
        if subscription is None:
            raise SubscriptionError(f"no subscription named {name!r} (see `webhooks list`)")
        await conn.execute(
            "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL WHERE url = $1", subscription["url"]
        )
        rows = await conn.fetch(
            "UPDATE subscription_cursors SET stopped_seq = NULL, stopped_at = NULL, stopped_error = NULL, updated_at = now() "
            "WHERE subscription_id = $1 AND stopped_seq IS NOT NULL RETURNING complaint_id",
            subscription["id"],
        )
    return subscription["id"], sorted(row["complaint_id"] for row in rows)


async def rotate_secret(conn: asyncpg.Connection, url: str) -> list[str]:
    """Add a new secret in front of the current one: both sign until the rotation is finished."""
    async with conn.transaction():
        current = await endpoint_secrets(conn, url)
        if len(current) > 1:
            raise SubscriptionError(f"a rotation of {url}'s secret is already under way: finish it first (--finish-rotation)")
        secrets = [new_secret(), *current]
        await conn.execute("UPDATE webhook_endpoints SET secrets = $2 WHERE url = $1", url, secrets)
    return secrets


async def finish_rotation(conn: asyncpg.Connection, url: str) -> list[str]:
    """Keep only the newest secret: the old one signs no more."""
    async with conn.transaction():
        current = await conn.fetchval("SELECT secrets FROM webhook_endpoints WHERE url = $1 FOR UPDATE", url)
        if current is None:
            raise SubscriptionError(f"no webhook endpoint {url} (nothing has been sent to it, and no subscription names it)")
        if len(current) < 2:
            raise SubscriptionError(f"no rotation of {url}'s secret is under way (start one with --rotate)")
        await conn.execute("UPDATE webhook_endpoints SET secrets = $2 WHERE url = $1", url, current[:1])
    return list(current[:1])
