"""A notification reaches its recipient on every channel: a real SMTP server (aiosmtpd) and a real
HTTP receiver that checks Standard Webhooks signatures, a real worker on the dev server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from activities.delivery_store import endpoint_secrets
from activities.notifications_store import get_notifications, list_notifications
from tests.support.delivery import delivering_worker, escalate, escalation, fast_settings, settled, team
from tests.support.smtp import SmtpSink, receiving


async def test_an_escalation_arrives_by_email_webhook_and_chat_signed_and_recorded(dev_env, pool):
    async with SmtpSink() as sink, receiving() as receiver:
        roster, ids = team(f"del-{uuid.uuid4().hex[:6]}", email="olive@example.com",
                           webhook_url=receiver.url("/owner"), chat_webhook_url=receiver.url("/chat"))  # fmt: skip
        receiver.endpoint("/owner").secrets = await endpoint_secrets(pool, receiver.url("/owner"))
        receiver.endpoint("/chat").secrets = await endpoint_secrets(pool, receiver.url("/chat"))
        async with delivering_worker(dev_env.client, pool, roster, fast_settings(sink.port)) as queue:
            complaint_id, [nid] = await escalate(dev_env.client, pool, queue, ids["owner"], [escalation(1, ids["owner"])])
            done = await settled(pool, nid, "delivered", "dead")

    assert done.status == "delivered" and done.delivered_at is not None and done.attempts == 3
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


async def test_a_failing_receiver_is_retried_with_backoff_until_it_takes_the_notification(dev_env, pool):
    async with receiving() as receiver:
        roster, ids = team(f"del-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/flaky"))
        endpoint = receiver.endpoint("/flaky")
        endpoint.secrets = await endpoint_secrets(pool, receiver.url("/flaky"))
        endpoint.fail_next, endpoint.fail_status, endpoint.retry_after = 3, 503, "1"
        async with delivering_worker(dev_env.client, pool, roster, fast_settings()) as queue:
            _, [nid] = await escalate(dev_env.client, pool, queue, ids["owner"], [escalation(1, ids["owner"])])
            done = await settled(pool, nid, "delivered", "dead")

    assert done.status == "delivered"
    assert [(a.attempt, a.outcome, a.response_code) for a in done.attempt_log] == [
        (1, "failed", 503), (2, "failed", 503), (3, "failed", 503), (4, "delivered", 204),
    ]
    assert [r.answered for r in receiver.requests] == [503, 503, 503, 204]
    assert {r.webhook_id for r in receiver.requests} == {f"ntf-{nid}"}
    # Retry-After: 1 is honoured although the backoff alone would have waited at most 0.4 s.
    gaps = [later.at - earlier.at for earlier, later in zip(receiver.requests, receiver.requests[1:])]
    assert all(gap >= 0.95 for gap in gaps), gaps


async def test_a_notification_nobody_takes_dies_and_the_supervisor_hears_by_another_channel(dev_env, pool):
    async with SmtpSink() as sink, receiving() as receiver:
        roster, ids = team(f"del-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/down"))
        receiver.endpoint("/down").secrets = await endpoint_secrets(pool, receiver.url("/down"))
        receiver.endpoint("/down").always = 500
        settings = fast_settings(sink.port, give_up=timedelta(seconds=2))
        async with delivering_worker(dev_env.client, pool, roster, settings) as queue:
            complaint_id, [nid] = await escalate(dev_env.client, pool, queue, ids["owner"], [escalation(1, ids["owner"])])
            dead = await settled(pool, nid, "dead", "delivered")
            [mail] = await sink.wait_for(1)
            [notice] = [n for n in await list_notifications(pool, complaint_id=complaint_id, pending_only=False) if n.clock == f"undelivered:{nid}"]
            notice = await settled(pool, notice.id, "delivered", "dead")

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
            receiver.endpoint(path).secrets = await endpoint_secrets(pool, receiver.url(path))
            receiver.endpoint(path).always = status
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

