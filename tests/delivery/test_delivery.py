"""A notification reaches its recipient on every channel: a real SMTP server (aiosmtpd) and a real
HTTP receiver that checks Standard Webhooks signatures, a real worker on the dev server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

from temporalio.api.enums.v1 import EventType

from activities.notifications_store import get_notifications, list_notifications
from activities.roster_store import load_roster
from schemas.delivery import DeliveryRequest
from tests.support.cli import run_cli
from tests.support.logs import warnings_only
from tests.support.delivery import (
    delivered,
    delivering_worker,
    escalate,
    escalation,
    fast_settings,
    kill_on_first_arrival,
    signed_endpoint,
    team,
    worker_process,
)
from tests.support.pg_fixtures import ON_ONE_SERVER
from tests.support.smtp import SmtpSink, receiving
from workflows.delivery import delivery_workflow_id


async def test_an_escalation_arrives_by_email_webhook_and_chat_signed_and_recorded(dev_env, pool):
    async with SmtpSink() as sink, receiving() as receiver:
        roster, ids = team(f"del-{uuid.uuid4().hex[:6]}", email="olive@example.com",
                           webhook_url=receiver.url("/owner"), chat_webhook_url=receiver.url("/chat"))  # fmt: skip
        await signed_endpoint(receiver, pool, "/owner")
        await signed_endpoint(receiver, pool, "/chat")
        async with delivering_worker(dev_env.client, pool, roster, fast_settings(sink.port)) as queue:
            complaint_id, [nid] = await escalate(dev_env.client, pool, queue, ids["owner"], [escalation(1, ids["owner"])])
            done = await delivered(dev_env.client, pool, complaint_id, nid)
            history = await dev_env.client.get_workflow_handle(
                delivery_workflow_id(DeliveryRequest(notification_id=nid, complaint_id=complaint_id))).fetch_history()

    assert done.status == "delivered" and done.delivered_at is not None and done.attempts == 3
    # Decision 0009: the server schedules only the sends; the plan and the settling are local (markers).
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]  # fmt: skip
    assert scheduled == ["deliver"] * 3
    assert sum(e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED for e in history.events) == 2
    assert sorted((a.channel, a.outcome, a.attempt) for a in done.attempt_log) == [
        ("chat", "delivered", 1), ("email", "delivered", 1), ("webhook", "delivered", 1),
    ]
    [mail] = sink.messages
    assert mail["To"] == "olive@example.com" and mail["From"] == "escalations@complaints.test"
    assert mail["Message-ID"].startswith(f"<ntf-{nid}.") and mail["Message-ID"].endswith("@complaints.test>")
    assert mail["Subject"] == f"[{complaint_id}] Level 1 escalation: promise P1 overdue"
    text = mail.get_body(("plain",)).get_content()
    for fact in ("Olive Owner,", "Refund the duplicate charge", "promise P1", "2026-11-23T10:00:00+00:00",
                 f"Owner:     {ids['owner']}", f"http://127.0.0.1:8000/cases/{complaint_id}"):  # fmt: skip
        assert fact in text, fact
    assert f'href="http://127.0.0.1:8000/cases/{complaint_id}"' in mail.get_body(("html",)).get_content()

    [hook] = receiver.delivered("/owner")
    assert hook.webhook_id == f"ntf-{nid}" and hook.verified
    assert hook.body["type"] == "notification.escalation"
    assert {k: hook.body["data"][k] for k in ("complaint_id", "clock", "level", "owner")} == {
        "complaint_id": complaint_id, "clock": "promise:P1", "level": 1, "owner": ids["owner"],
    }
    [chat] = receiver.delivered("/chat")
    assert chat.body["text"].startswith(f"*[{complaint_id}] Level 1 escalation") and complaint_id in chat.body["text"]


@ON_ONE_SERVER
async def test_a_failing_receiver_is_retried_with_backoff_until_it_takes_the_notification(
    dev_env, pool, database_url, monkeypatch, capsys
):
    async with receiving() as receiver:
        roster, ids = team(f"del-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/flaky"))
        endpoint = await signed_endpoint(receiver, pool, "/flaky")
        endpoint.fail_next, endpoint.fail_status, endpoint.retry_after = 3, 503, "1"
        async with delivering_worker(dev_env.client, pool, roster, fast_settings()) as queue:
            complaint_id, [nid] = await escalate(dev_env.client, pool, queue, ids["owner"], [escalation(1, ids["owner"])])
            done = await delivered(dev_env.client, pool, complaint_id, nid)

    assert done.status == "delivered"
    assert [(a.attempt, a.outcome, a.response_code) for a in done.attempt_log] == [
        (1, "failed", 503), (2, "failed", 503), (3, "failed", 503), (4, "delivered", 204),
    ]
    assert [r.answered for r in receiver.requests] == [503, 503, 503, 204]
    assert {r.webhook_id for r in receiver.requests} == {f"ntf-{nid}"}
    # Retry-After: 1 is honoured although the backoff alone would have waited at most 0.4 s.
    gaps = [later.at - earlier.at for earlier, later in zip(receiver.requests, receiver.requests[1:])]
    assert all(gap >= 0.95 for gap in gaps), gaps

    # `notifications list --attempts` shows the status and each attempt under its row.
    monkeypatch.setenv("DATABASE_URL", database_url)
    with warnings_only():
        status, out, err = await run_cli(capsys, "notifications", "list", "--case", complaint_id, "--attempts")
    lines = out.splitlines()
    assert (status, err) == (0, "") and lines[1].split()[0] == str(nid) and lines[1].split()[-2:] == ["delivered", "4"]
    assert [" ".join(line.split()[3:7]) for line in lines[2:]] == [
        "try 1 webhook failed", "try 2 webhook failed", "try 3 webhook failed", "try 4 webhook delivered",
    ]
    assert "503: HTTP 503" in lines[2]


async def test_a_notification_nobody_takes_dies_and_the_supervisor_hears_by_another_channel(dev_env, pool):
    async with SmtpSink() as sink, receiving() as receiver:
        roster, ids = team(f"del-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/down"))
        await signed_endpoint(receiver, pool, "/down")
        receiver.endpoint("/down").always = 500
        settings = fast_settings(sink.port, give_up=timedelta(seconds=2))
        async with delivering_worker(dev_env.client, pool, roster, settings) as queue:
            complaint_id, [nid] = await escalate(dev_env.client, pool, queue, ids["owner"], [escalation(1, ids["owner"])])
            dead = await delivered(dev_env.client, pool, complaint_id, nid)
            [mail] = await sink.wait_for(1)
            [notice] = [n for n in await list_notifications(pool, complaint_id=complaint_id, pending_only=False) if n.clock == f"undelivered:{nid}"]
            notice = await delivered(dev_env.client, pool, complaint_id, notice.id)

    assert dead.status == "dead" and dead.delivered_at is None and dead.last_error == "HTTP 500"
    assert len(dead.attempt_log) >= 2 and {a.outcome for a in dead.attempt_log} == {"failed"}
    assert (notice.recipient, notice.recipient_role, notice.level) == (ids["supervisor"], "supervisor", 2)
    assert notice.status == "delivered" and [a.channel for a in notice.attempt_log] == ["email"]
    assert mail["To"] == f"{ids['supervisor']}@example.com"
    assert mail["Subject"] == f"[{complaint_id}] Level 2: a notification could not be delivered"
    assert f"Notification {nid}" in mail.get_body(("plain",)).get_content()


async def test_gone_disables_the_endpoint_and_a_lasting_4xx_is_not_hammered(dev_env, pool):
    async with receiving() as receiver:
        roster, ids = team(f"del-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/gone"),
                           chat_webhook_url=receiver.url("/missing"))  # fmt: skip
        for path, status in (("/gone", 410), ("/missing", 404)):
            (await signed_endpoint(receiver, pool, path)).always = status
        async with delivering_worker(dev_env.client, pool, roster, fast_settings()) as queue:
            _, [nid] = await escalate(dev_env.client, pool, queue, ids["owner"], [escalation(1, ids["owner"])])
            for _ in range(100):
                if len(receiver.requests) >= 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # several backoffs' worth: the 404 must not be tried again yet
            [now] = await get_notifications(pool, [nid], with_attempts=True)
            disabled = await pool.fetchval("SELECT disabled_reason FROM webhook_endpoints WHERE url = $1", receiver.url("/gone"))

    assert sorted((r.path, r.answered) for r in receiver.requests) == [("/gone", 410), ("/missing", 404)]
    assert disabled == "answered 410 Gone"
    by_channel = {a.channel: (a.outcome, a.response_code) for a in now.attempt_log}
    assert by_channel == {"webhook": ("gave_up", 410), "chat": ("failed", 404)}
    assert now.status == "retrying"




@ON_ONE_SERVER
async def test_two_workers_racing_never_send_one_notification_at_once(dev_env, pool, database_url, tmp_path):
    """Two workers (this process and another) serve one task queue. Each first request is held past the attempt
    timeout, so Temporal retries it, on either worker, while it is still on the wire: the retry must wait for
    the lock, then find the route delivered and send nothing."""
    async with receiving() as receiver:
        roster, ids = team(f"race-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/race"))
        endpoint = await signed_endpoint(receiver, pool, "/race")
        endpoint.hold_first = 2.0
        # Requests may outlast attempts here (a slow DNS, a pause): only the lock keeps them from overlapping.
        settings = fast_settings(attempt_timeout=timedelta(seconds=1), request_timeout=timedelta(seconds=5))
        async with delivering_worker(dev_env.client, pool, roster, settings) as queue:
            async with worker_process(dev_env.client, database_url, queue, settings, tmp_path):
                events = [escalation(seq, ids["owner"], clock=f"promise:P{seq}") for seq in range(1, 9)]
                complaint_id, nids = await escalate(dev_env.client, pool, queue, ids["owner"], events)
                done = [await delivered(dev_env.client, pool, complaint_id, nid) for nid in nids]
                workers = await pool.fetch(
                    "SELECT DISTINCT worker FROM delivery_attempts WHERE notification_id = ANY($1::bigint[])", nids
                )

    assert [n.status for n in done] == ["delivered"] * 8
    assert receiver.overlaps == 0
    assert sorted(r.webhook_id for r in receiver.requests) == sorted(f"ntf-{nid}" for nid in nids)  # each exactly once
    # Every first attempt timed out while on the wire, and no retry sent it again.
    assert all([a.outcome for a in n.attempt_log] == ["delivered"] for n in done)
    assert len(workers) == 2, workers  # both workers delivered some


@ON_ONE_SERVER
async def test_a_worker_killed_between_sending_and_recording_delivers_at_most_twice_never_loses(dev_env, pool, database_url, tmp_path):
    """The receiver kills the delivering worker (kill -9) as the first request arrives, before it is answered:
    the send happened, its recording did not. A new worker retries with the same idempotency keys."""
    async with SmtpSink() as sink, receiving() as receiver:
        roster, ids = team(f"kill-{uuid.uuid4().hex[:6]}", email="olive@example.com", webhook_url=receiver.url("/kill"))
        endpoint = await signed_endpoint(receiver, pool, "/kill")
        settings = fast_settings(sink.port, attempt_timeout=timedelta(seconds=2))
        await load_roster(pool, roster)
        queue = f"delivery-kill-{uuid.uuid4().hex[:8]}"
        async with worker_process(dev_env.client, database_url, queue, settings, tmp_path) as worker:
            killed = kill_on_first_arrival(endpoint, worker)
            events = [escalation(seq, ids["owner"], clock=f"promise:P{seq}") for seq in range(1, 6)]
            complaint_id, nids = await escalate(dev_env.client, pool, queue, ids["owner"], events)
            await receiver.wait_for(1)
            assert killed and not worker.alive()
            await worker.start()
            done = [await delivered(dev_env.client, pool, complaint_id, nid, timeout=60) for nid in nids]

    keys = {f"ntf-{nid}" for nid in nids}
    assert [n.status for n in done] == ["delivered"] * 5
    hooks = Counter(r.webhook_id for r in receiver.delivered("/kill"))
    assert set(hooks) == keys and max(hooks.values()) <= 2 and sum(hooks.values()) > len(keys)  # one was sent twice
    mails = Counter(m["Message-ID"] for m in sink.messages)
    assert {mid.split(".")[0].lstrip("<") for mid in mails} == keys and max(mails.values()) <= 2
    # The killed attempt is in the log without an outcome; the retry that followed delivered.
    lost = [a for n in done for a in n.attempt_log if a.outcome is None]
    assert lost and all(a.channel in ("webhook", "email") for a in lost)

