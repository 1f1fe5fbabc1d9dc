"""Where a notification goes: the recipient's routes, each once, read from the roster and the endpoints.

Shared by the delivery workflow's plan (activities/delivery_activities.py) and the first try at commit
(activities/first_try.py), so both send to the same places.
"""

from __future__ import annotations

import asyncpg

from activities import delivery_store as store
from delivery.settings import DeliverySettings
from schemas.delivery import Route


async def routes_for(pool: asyncpg.Pool, settings: DeliverySettings, row: asyncpg.Record) -> tuple[list[Route], str | None]:
    """The routes of the notification `row` (store.notification_for_delivery): the recipient's email (and
    their team's address), webhook and chat webhook. Avoided: a disabled endpoint, unless this notification
    itself tried it (its attempt log then ends the route: a first try's 410 still makes the row dead), and,
    for a dead-letter notice, every target the dead notification tried. Also why no route is left, or None."""
    routes: list[Route] = []
    if settings.smtp is not None:
        for address in (row["email"], settings.team_emails.get(row["recipient_team"] or "")):
            if address:
                routes.append(Route(channel="email", target=address))
    for channel, url in (("webhook", row["webhook_url"]), ("chat", row["chat_webhook_url"])):
        if url:
            routes.append(Route(channel=channel, target=url))
    avoid: set[str] = set()
    if row["clock"].startswith("undelivered:"):
        avoid = await store.attempted_targets(pool, int(row["clock"].removeprefix("undelivered:")))
    disabled = await store.disabled_endpoints(pool, [r.target for r in routes if r.channel != "email"])
    if disabled:
        avoid |= disabled - await store.attempted_targets(pool, row["id"])
    unique = list({r.target: r for r in routes if r.target not in avoid}.values())
    if unique:
        return unique, None
    return [], _why_unrouted(row, settings, bool(routes))


def _why_unrouted(row: asyncpg.Record, settings: DeliverySettings, had_routes: bool) -> str:
    if had_routes:
        return "every route of the recipient is disabled or already failed"
    if row["recipient_name"] is None:
        return "the recipient is not on the roster"
    if row["email"] and settings.smtp is None:
        return "the recipient has only an email address and SMTP_URL is not set"
    return "the recipient has no email, webhook_url or chat_webhook_url in the roster"
