"""A route's claim (activities/route_claims.py): one sender per (delivery id, target), on real PostgreSQL.

The racing and killed-worker tests in tests/delivery/test_delivery.py show the claim at work between
workers; these pin its answers and its lease.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from activities.route_claims import claim_route

LEASE = timedelta(seconds=30)


def route() -> dict:
    return dict(delivery_id=f"evt-{uuid.uuid4().hex[:8]}", target="https://hooks.example.com/crm", channel="event", worker="w1")


async def test_the_first_attempt_claims_the_route_and_a_second_finds_it_busy(pool):
    where = route()
    first = await claim_route(pool, **where, attempt=1, lease=LEASE)
    second = await claim_route(pool, **where, attempt=2, lease=LEASE)
    assert first.attempt_id is not None and not first.busy
    assert second.busy and second.attempt_id is None and not second.delivered
    lease_until, started = await pool.fetchrow("SELECT lease_until, started_at FROM delivery_attempts WHERE id = $1", first.attempt_id)
    assert lease_until - started == LEASE


async def test_an_outcome_frees_the_route_and_a_delivery_ends_it(pool):
    where = route()
    failed = await claim_route(pool, **where, attempt=1, lease=LEASE)
    await pool.execute("UPDATE delivery_attempts SET outcome = 'failed' WHERE id = $1", failed.attempt_id)
    retried = await claim_route(pool, **where, attempt=2, lease=LEASE)
    assert retried.attempt_id is not None
    await pool.execute("UPDATE delivery_attempts SET outcome = 'delivered' WHERE id = $1", retried.attempt_id)
    after = await claim_route(pool, **where, attempt=3, lease=LEASE)
    assert after.delivered and after.attempt_id is None


async def test_an_attempt_that_never_reported_holds_the_route_until_its_lease_ends(pool):
    """A worker killed mid-send leaves no outcome: the route waits for the lease, then the retry sends."""
    where = route()
    killed = await claim_route(pool, **where, attempt=1, lease=timedelta(milliseconds=300))
    assert (await claim_route(pool, **where, attempt=2, lease=LEASE)).busy
    await asyncio.sleep(0.4)
    retry = await claim_route(pool, **where, attempt=3, lease=LEASE)
    assert retry.attempt_id not in (None, killed.attempt_id)


async def test_attempts_racing_for_one_route_give_it_to_one(pool):
    where = route()
    claims = await asyncio.gather(*(claim_route(pool, **where, attempt=n, lease=LEASE) for n in range(1, 9)))
    assert sum(claim.attempt_id is not None for claim in claims) == 1
    assert await pool.fetchval("SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1", where["delivery_id"]) == 1


async def test_a_notification_s_claim_heeds_a_first_try_s_give_up_and_retry_time_and_a_case_event_s_does_not(pool):
    """A first try at commit (activities/first_try.py) records a give-up, or a time before which the route waits;
    `webhooks resume` sends a case event again after a give-up, so its claims ignore both."""
    gone, failing = route(), route()
    tried = await claim_route(pool, **gone, attempt=0, lease=LEASE)
    await pool.execute("UPDATE delivery_attempts SET outcome = 'gave_up', error = 'HTTP 410' WHERE id = $1", tried.attempt_id)
    tried = await claim_route(pool, **failing, attempt=0, lease=LEASE)
    await pool.execute("UPDATE delivery_attempts SET outcome = 'failed', error = 'HTTP 503', "
                       "retry_at = clock_timestamp() + interval '30 seconds' WHERE id = $1", tried.attempt_id)  # fmt: skip

    ended = await claim_route(pool, **gone, attempt=1, lease=LEASE, heed_first_try=True)
    waiting = await claim_route(pool, **failing, attempt=1, lease=LEASE, heed_first_try=True)
    assert (ended.gave_up, ended.attempt_id, ended.busy) == ("HTTP 410", None, False)
    assert waiting.attempt_id is None and not waiting.busy and timedelta(seconds=29) < waiting.retry_in <= timedelta(seconds=30)
    assert waiting.last_error == "HTTP 503"
    for where in (gone, failing):
        assert (await claim_route(pool, **where, attempt=1, lease=LEASE)).attempt_id is not None


async def test_a_disabled_endpoint_is_claimed_by_nobody_unless_it_already_took_the_message(pool):
    """A 410 Gone disables an endpoint: no attempt is recorded for it after that, by a notification or a case
    event, but one that got through before the 410 still counts as delivered."""
    from activities.delivery_store import disable_endpoint

    gone, took_it = route(), route()
    for where in (gone, took_it):
        where["target"] = f"https://hooks.example.com/{uuid.uuid4().hex[:8]}"
    through = await claim_route(pool, **took_it, attempt=1, lease=LEASE)
    await pool.execute("UPDATE delivery_attempts SET outcome = 'delivered' WHERE id = $1", through.attempt_id)
    for where in (gone, took_it):
        await disable_endpoint(pool, where["target"], "answered 410 Gone")

    refused = await claim_route(pool, **gone, attempt=1, lease=LEASE)
    assert (refused.disabled, refused.attempt_id, refused.busy) == ("answered 410 Gone", None, False)
    assert await pool.fetchval("SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1", gone["delivery_id"]) == 0
    assert (await claim_route(pool, **took_it, attempt=2, lease=LEASE)).delivered


async def test_a_first_try_claims_only_a_route_nobody_has_tried(pool):
    """A write retried after its deliveries began must not send beside the workflow's backing-off attempts."""
    fresh, tried = route(), route()
    failed = await claim_route(pool, **tried, attempt=1, lease=LEASE)
    await pool.execute("UPDATE delivery_attempts SET outcome = 'failed' WHERE id = $1", failed.attempt_id)
    refused = await claim_route(pool, **tried, attempt=0, lease=LEASE, untried_only=True)
    assert refused.tried and refused.attempt_id is None and not refused.busy
    assert (await claim_route(pool, **fresh, attempt=0, lease=LEASE, untried_only=True)).attempt_id is not None


async def test_a_first_try_s_retry_time_once_past_frees_the_route(pool):
    where = route()
    tried = await claim_route(pool, **where, attempt=0, lease=LEASE)
    await pool.execute("UPDATE delivery_attempts SET outcome = 'failed', retry_at = clock_timestamp() - interval '1 second' "
                       "WHERE id = $1", tried.attempt_id)  # fmt: skip
    assert (await claim_route(pool, **where, attempt=1, lease=LEASE, heed_first_try=True)).attempt_id is not None


async def test_a_notification_s_claim_counts_the_attempt_on_its_row(fresh_pool):
    notification_id = await fresh_pool.fetchval(
        "INSERT INTO notifications (complaint_id, clock, level, occurrence, recipient, recipient_role, reason, due_at, event_seq) "
        "VALUES ('C-1', 'promise:P1', 2, 1, 'sup', 'supervisor', 'overdue', now(), 1) RETURNING id"
    )
    where = {**route(), "channel": "webhook"}
    await claim_route(fresh_pool, **where, attempt=1, lease=LEASE, notification_id=notification_id)
    row = await fresh_pool.fetchrow("SELECT status, attempts FROM notifications WHERE id = $1", notification_id)
    assert (row["status"], row["attempts"]) == ("sending", 1)


async def test_a_send_is_cut_off_at_its_limit_and_the_lease_outlasts_every_limit():
    from activities.sending import cut_off
    from delivery.settings import DeliverySettings, SmtpSettings

    assert await cut_off(timedelta(seconds=5), asyncio.sleep(0, "answered"), lambda why: why) == "answered"
    assert await cut_off(timedelta(milliseconds=50), asyncio.sleep(60, "answered"), lambda why: why) == "no answer within 0.05 s"
    settings = DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=25, timeout=45), attempt_timeout=timedelta(seconds=30),
                                request_timeout=timedelta(seconds=40))  # fmt: skip
    assert settings.send_limit == timedelta(seconds=45) and settings.route_lease > settings.send_limit
