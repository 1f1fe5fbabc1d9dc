"""Case events reach other systems' subscriptions: a real worker on the dev server, a real receiver that
checks Standard Webhooks signatures, and events recorded by record_case_events as a case records them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from temporalio.worker import Worker

from activities.case_feed_activities import CaseFeedActivities
from activities.subscriptions_store import finish_rotation, list_subscriptions, resume_subscription, rotate_secret
from complaint_client import ComplaintClient
from schemas.case_feed import FeedEnd
from tests.support.pg_fixtures import ON_ONE_SERVER
from tests.support.case_feeds import assert_in_case_order, cursor_of, event, record, seqs_by_case, subscribed
from tests.support.delivery import delivering_worker, fast_settings, team
from tests.support.cli import run_cli
from tests.support.engine import end_cases
from tests.support.intake import intake_for
from tests.support.logs import warnings_only
from tools.harness.webhook_receiver import receiving
from workflows.case_feed import CaseFeedWorkflow, case_feed_workflow_id

FEED = fast_settings(feed_idle=timedelta(seconds=1))


def opened(seq: int = 1):  # type: ignore[no-untyped-def]
    return event(seq, "complaint_received", actor="customer:cust-1", summary="My card 4242 was charged twice",
                 category="billing", severity="high", facts=["card_last4"])  # fmt: skip


def first_batch():  # type: ignore[no-untyped-def]
    return [
        opened(1),
        event(2, "owner_assigned", actor="system:routing", owner="a1", team="billing", reason="skills"),
        event(3, "note_added", text="Customer sounds upset"),
        event(4, "escalated", actor="system:escalation", clock="resolution", level=1, occurrence=1, recipient="a1",
              recipient_role="owner", reason="the customer wrote: 'call me on 555-0100'",
              due_at="2026-11-23T10:00:00+00:00", deadline="2026-11-23T10:00:00+00:00", overdue=True),
    ]  # fmt: skip


def second_batch():  # type: ignore[no-untyped-def]
    return [
        event(5, "promise_overdue", actor="system:escalation", promise_id="P1", owed_by="a1",
              due_at="2026-11-23T10:00:00+00:00", deadline="2026-11-23T10:00:00+00:00"),
        event(6, "case_closed", actor="customer:cust-1", outcome="withdrawn", reason="sorted it out with my bank",
              promises_total=1, promises_kept=0),
        event(7, "feedback_recorded", actor="customer:cust-1", score=2, comment="Slow, call me on 555-0100"),
    ]  # fmt: skip


@ON_ONE_SERVER
async def test_each_subscription_gets_its_types_in_case_order_signed_while_the_receiver_fails(dev_env, pool):
    roster, _ = team(f"evt-{uuid.uuid4().hex[:6]}")
    cases = [f"E-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    earlier = f"E-{uuid.uuid4().hex[:8]}"
    async with receiving() as receiver, delivering_worker(dev_env.client, pool, roster, FEED) as queue:
        await record(dev_env.client, pool, queue, earlier, first_batch())  # before anyone subscribed
        crm_types = ("case.opened", "case.escalated", "promise.overdue", "case.closed")
        async with subscribed(pool, receiver, "/crm", *crm_types) as crm, subscribed(pool, receiver, "/tickets", "feedback.recorded") as tickets:
            receiver.endpoint("/crm").fail_next, receiver.endpoint("/crm").fail_status = 6, 503
            await asyncio.gather(*(record(dev_env.client, pool, queue, cid, first_batch()) for cid in cases))
            await asyncio.gather(*(record(dev_env.client, pool, queue, cid, second_batch()) for cid in [*cases, earlier]))
            await receiver.wait_for(3 * 4 + 2, "/crm")
            await receiver.wait_for(4, "/tickets")
            cursors = {cid: (await cursor_of(pool, crm.id, cid, seq=6))["last_seq"] for cid in [*cases, earlier]}
            attempts = await pool.fetch(
                "SELECT delivery_id, outcome, response_code FROM delivery_attempts WHERE channel = 'event' AND target = $1",
                receiver.url("/crm"),
            )

    crm_requests = [r for r in receiver.requests if r.path == "/crm"]
    assert all(r.verified for r in receiver.requests) and [r.answered for r in crm_requests].count(503) == 6
    assert_in_case_order(crm_requests)
    delivered = {cid: [seq for seq, answered in tries if answered == 204] for cid, tries in seqs_by_case(crm_requests).items()}
    assert delivered == {**{cid: [1, 4, 5, 6] for cid in cases}, earlier: [5, 6]}
    assert {cid: [seq for seq, _ in tries] for cid, tries in seqs_by_case(receiver.delivered("/tickets")).items()} == {
        cid: [7] for cid in [*cases, earlier]
    }
    assert cursors == {cid: 6 for cid in [*cases, earlier]}
    assert sorted((a["outcome"], a["response_code"]) for a in attempts).count(("delivered", 204)) == 14
    assert len([a for a in attempts if a["outcome"] == "failed"]) == 6

    one = [r for r in receiver.delivered("/crm") if r.body["data"]["complaint_id"] == cases[0]]
    assert [r.body["type"] for r in one] == list(crm_types)
    assert [r.webhook_id for r in one] == [f"evt-{crm.id}-{cases[0]}-{seq}" for seq in (1, 4, 5, 6)]
    assert one[0].body["data"] == {
        "complaint_id": cases[0], "seq": 1, "kind": "complaint_received", "actor": "customer:cust-1",
        "at": "2026-11-23T09:01:00+00:00", "category": "billing", "severity": "high", "facts": ["card_last4"],
    }  # fmt: skip
    assert one[0].body["timestamp"] == "2026-11-23T09:01:00+00:00"
    assert one[1].body["data"]["clock"] == "resolution" and one[3].body["data"]["outcome"] == "withdrawn"
    sent = json.dumps([r.body for r in receiver.requests])
    for private in ("4242", "555-0100", "upset", "my bank", "Slow"):  # free text the customer or an agent wrote
        assert private not in sent, private
    assert {r.body["data"]["score"] for r in receiver.delivered("/tickets")} == {2}
    assert tickets.kinds == ["feedback.recorded"]


async def test_a_real_case_tells_its_subscriber_it_opened_and_who_owns_it_without_customer_data(dev_env, pool):
    roster, ids = team(f"evt-{uuid.uuid4().hex[:6]}")
    owner = ids["owner"]
    async with receiving() as receiver, delivering_worker(dev_env.client, pool, roster, FEED) as queue:
        async with subscribed(pool, receiver, "/crm", "case.opened", "case.assigned", "case.accepted"):
            engine = ComplaintClient(dev_env.client, queue)
            intake = intake_for(owner, "EVT", customer={"customer_id": "cust-evt-1", "name": "Priya Natarajan",
                                                        "email": "priya@example.com", "phone": "+44 20 7946 0958"})  # fmt: skip
            started = await engine.start(intake)
            try:
                await engine.act(started.complaint_id, "accept_ownership", {"actor": owner})
                hooks = await receiver.wait_for(3, "/crm")
            finally:
                await end_cases(engine, [started.complaint_id], doors=["problem/cust-evt-1/billing"])

    assert [h.body["type"] for h in hooks] == ["case.opened", "case.assigned", "case.accepted"]
    seqs = [h.body["data"]["seq"] for h in hooks]
    assert seqs == sorted(seqs) and seqs[0] == 1
    assert hooks[0].body["data"]["actor"] == "customer:cust-evt-1" and hooks[0].body["data"]["channel"] == "email"
    assert hooks[1].body["data"]["owner"] == owner and hooks[2].body["data"]["owner"] == owner
    sent = json.dumps([h.body for h in hooks])
    for private in ("Priya", "priya@example.com", "7946", "A-1001", "Charged twice"):
        assert private not in sent, private


async def test_during_a_rotation_each_request_is_signed_by_the_old_and_the_new_secret(dev_env, pool):
    roster, _ = team(f"evt-{uuid.uuid4().hex[:6]}")
    cid = f"E-{uuid.uuid4().hex[:8]}"
    async with receiving() as receiver, delivering_worker(dev_env.client, pool, roster, FEED) as queue:
        async with subscribed(pool, receiver, "/crm", "case.opened", "case.escalated", "promise.overdue") as crm:
            endpoint = receiver.endpoint("/crm")
            [old] = endpoint.secrets
            async with pool.acquire() as conn:
                new, still_old = await rotate_secret(conn, crm.url)
            assert still_old == old and new != old
            endpoint.secrets = [old]  # a receiver not yet moved to the new secret
            await record(dev_env.client, pool, queue, cid, [opened(1)])
            await receiver.wait_for(1, "/crm")
            endpoint.secrets = [new]  # a receiver already moved
            await record(dev_env.client, pool, queue, cid, first_batch()[1:])
            await receiver.wait_for(2, "/crm")
            async with pool.acquire() as conn:
                assert await finish_rotation(conn, crm.url) == [new]
            await record(dev_env.client, pool, queue, cid, second_batch()[:1])
            await receiver.wait_for(3, "/crm")

    assert [(r.body["data"]["seq"], r.verified, r.answered) for r in receiver.requests] == [(1, True, 204), (4, True, 204), (5, True, 204)]


async def test_an_event_never_taken_stops_its_feed_there_until_resumed(dev_env, pool, database_url, monkeypatch, capsys):
    roster, _ = team(f"evt-{uuid.uuid4().hex[:6]}")
    cid = f"E-{uuid.uuid4().hex[:8]}"
    settings = fast_settings(feed_idle=timedelta(seconds=1), give_up=timedelta(seconds=1))
    async with receiving() as receiver, delivering_worker(dev_env.client, pool, roster, settings) as queue:
        async with subscribed(pool, receiver, "/down", "case.opened", "case.escalated", "promise.overdue") as sub:
            receiver.endpoint("/down").always = 500
            await record(dev_env.client, pool, queue, cid, first_batch())
            stopped = await cursor_of(pool, sub.id, cid, stopped=True)
            await record(dev_env.client, pool, queue, cid, second_batch())  # a stopped feed sends nothing more
            await asyncio.sleep(0.5)
            tried = {r.body["data"]["seq"] for r in receiver.requests}
            [listed] = [s for s in await list_subscriptions(pool) if s.id == sub.id]

            receiver.endpoint("/down").always = None
            for name, value in (("DATABASE_URL", database_url), ("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host),
                                ("TEMPORAL_NAMESPACE", dev_env.client.namespace), ("COMPLAINTS_TASK_QUEUE", queue)):
                monkeypatch.setenv(name, value)
            with warnings_only():
                resumed_by_cli = await run_cli(capsys, "webhooks", "resume", sub.name)
            await receiver.wait_for(3, "/down")
            resumed = await cursor_of(pool, sub.id, cid, seq=5)

    assert resumed_by_cli[0] == 0 and f"feeds sent on from where they stopped: {cid}" in resumed_by_cli[1]
    assert (stopped["last_seq"], stopped["stopped_seq"]) == (0, 1) and "HTTP 500" in stopped["stopped_error"]
    assert tried == {1} and listed.stopped_feeds == 1
    assert [r.body["data"]["seq"] for r in receiver.delivered("/down")] == [1, 4, 5]
    assert (resumed["last_seq"], resumed["stopped_seq"]) == (5, None)


async def test_gone_disables_the_endpoint_and_stops_the_feed(dev_env, pool):
    roster, _ = team(f"evt-{uuid.uuid4().hex[:6]}")
    cid = f"E-{uuid.uuid4().hex[:8]}"
    async with receiving() as receiver, delivering_worker(dev_env.client, pool, roster, FEED) as queue:
        async with subscribed(pool, receiver, "/gone", "case.opened", "case.escalated") as sub:
            receiver.endpoint("/gone").always = 410
            await record(dev_env.client, pool, queue, cid, first_batch())
            stopped = await cursor_of(pool, sub.id, cid, stopped=True)
            [listed] = [s for s in await list_subscriptions(pool) if s.id == sub.id]
            async with pool.acquire() as conn:
                await resume_subscription(conn, sub.name)  # leaves the shared endpoint table as it found it

    assert [(r.body["data"]["seq"], r.answered) for r in receiver.requests] == [(1, 410)]
    assert stopped["stopped_seq"] == 1 and listed.endpoint_disabled == "answered 410 Gone" and listed.stopped_feeds == 1


@ON_ONE_SERVER
async def test_a_long_feed_continues_as_new_from_its_cursor(dev_env, pool):
    cid = f"E-{uuid.uuid4().hex[:8]}"
    queue = f"feed-test-{uuid.uuid4().hex[:8]}"
    activities = CaseFeedActivities(pool, FEED, events_per_run=1)
    async with receiving() as receiver, Worker(dev_env.client, task_queue=queue, workflows=[CaseFeedWorkflow], activities=activities.all()):
        async with subscribed(pool, receiver, "/crm", "case.opened", "promise.overdue") as sub:
            await record(dev_env.client, pool, queue, cid, [opened(1), event(2, "promise_overdue", promise_id="P1")])
            handle = dev_env.client.get_workflow_handle(case_feed_workflow_id(sub.id, cid), result_type=FeedEnd)
            end = await handle.result()
            runs = []
            async for run_event in handle.fetch_history_events():
                runs.append(run_event.workflow_execution_started_event_attributes.continued_execution_run_id)
                break

    assert [r.body["data"]["seq"] for r in receiver.delivered("/crm")] == [1, 2]
    assert end == FeedEnd(status="idle", cursor=2) and runs[0] != ""
