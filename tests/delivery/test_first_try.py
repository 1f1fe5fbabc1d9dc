"""The first try at commit (activities/first_try.py): the worker that commits an escalation sends it at once,
and the delivery workflow, still the durable path, heeds what that try did. A real SMTP server (aiosmtpd), a
real signature-checking HTTP receiver, real workers on the dev server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

from temporalio.api.enums.v1 import EventType

from activities.delivery_store import disable_endpoint
from activities.first_try import FIRST_TRY, FirstTry
from activities.notifications_store import get_notifications, list_notifications
from activities.roster_store import load_roster
from schemas.delivery import DeliveryRequest
from tests.support.delivery import (
    delivered,
    delivering_worker,
    escalate,
    escalation,
    escalation_record,
    fast_settings,
    kill_on_first_arrival,
    notification_ids,
    settings_env,
    signed_endpoint,
    team,
)
from tests.support.activity_io import run
from tests.support.cli import run_cli
from tests.support.logs import warnings_only
from tests.support.pg_fixtures import ON_ONE_SERVER
from tests.support.smtp import SmtpSink, receiving
from workflows.delivery import delivery_workflow_id


async def tried_first(client, pool, roster, owner: str, settings) -> tuple[str, int, str]:  # type: ignore[no-untyped-def]
    """One escalation to `owner`, committed with a first try while no worker polls its queue, and that try
    finished: only then may the delivery workflow run (on the returned queue), so the first try is always
    the first sender. Returns the complaint id, the notification id and the queue."""
    await load_roster(pool, roster)
    queue = f"first-try-{uuid.uuid4().hex[:8]}"
    first_try = FirstTry(pool, settings)
    complaint_id, [nid] = await escalate(client, pool, queue, owner, [escalation(1, owner)], first_try=first_try)
    await first_try.drain(timedelta(seconds=10))
    return complaint_id, nid, queue


async def test_the_committing_worker_delivers_at_once_and_the_workflow_sends_nothing_more(dev_env, pool):
    """No worker polls the queue while the row is committed: the email and the webhook arrive from the first try
    alone. The delivery workflow then finds both routes delivered and sends nothing again."""
    async with SmtpSink() as sink, receiving() as receiver:
        roster, ids = team(f"ft-{uuid.uuid4().hex[:6]}", email="olive@example.com", webhook_url=receiver.url("/owner"))
        await signed_endpoint(receiver, pool, "/owner")
        settings = fast_settings(sink.port)
        complaint_id, nid, queue = await tried_first(dev_env.client, pool, roster, ids["owner"], settings)
        [before] = await get_notifications(pool, [nid], with_attempts=True)
        assert len(sink.messages) == 1 and len(receiver.delivered("/owner")) == 1
        async with delivering_worker(dev_env.client, pool, roster, settings, task_queue=queue):
            done = await delivered(dev_env.client, pool, complaint_id, nid)
            history = await dev_env.client.get_workflow_handle(
                delivery_workflow_id(DeliveryRequest(notification_id=nid, complaint_id=complaint_id))).fetch_history()

    assert before.status == "delivered" and before.delivered_at is not None
    assert sorted((a.channel, a.attempt, a.outcome) for a in before.attempt_log) == [
        ("email", FIRST_TRY, "delivered"), ("webhook", FIRST_TRY, "delivered"),
    ]
    assert done.status == "delivered" and done.attempts == 2 and len(done.attempt_log) == 2
    assert len(sink.messages) == 1 and len(receiver.requests) == 1 and receiver.requests[0].verified
    assert receiver.requests[0].webhook_id == f"ntf-{nid}"
    # The workflow ran its two `deliver`s, which found the routes delivered and sent nothing.
    completed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    assert len(completed) == 2


@ON_ONE_SERVER
async def test_a_failed_first_try_holds_the_route_until_its_retry_time(dev_env, pool, database_url, monkeypatch, capsys):
    """The receiver answers the first try 503 with Retry-After: 3. The workflow's attempt waits for that time
    (the try's backoff alone would allow 0.1 s), then delivers. `notifications list` names the first try."""
    async with receiving() as receiver:
        roster, ids = team(f"ft-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/busy"))
        endpoint = await signed_endpoint(receiver, pool, "/busy")
        endpoint.fail_next, endpoint.fail_status, endpoint.retry_after = 1, 503, "3"
        settings = fast_settings()
        complaint_id, nid, queue = await tried_first(dev_env.client, pool, roster, ids["owner"], settings)
        async with delivering_worker(dev_env.client, pool, roster, settings, task_queue=queue):
            done = await delivered(dev_env.client, pool, complaint_id, nid)

    assert [r.answered for r in receiver.requests] == [503, 204]
    assert receiver.requests[1].at - receiver.requests[0].at >= 2.95
    [first, last] = done.attempt_log
    assert (first.attempt, first.outcome, first.response_code) == (FIRST_TRY, "failed", 503)
    assert first.retry_at is not None and (first.retry_at - first.finished_at) >= timedelta(seconds=2.99)
    assert (last.outcome, last.response_code, last.retry_at) == ("delivered", 204, None) and last.attempt >= 1
    assert done.status == "delivered"

    monkeypatch.setenv("DATABASE_URL", database_url)
    with warnings_only():
        status, out, err = await run_cli(capsys, "notifications", "list", "--case", complaint_id, "--attempts")
    assert (status, err) == (0, "")
    assert [" ".join(line.split()[3:7]) for line in out.splitlines()[2:]] == [
        "at commit webhook failed", f"try {last.attempt} webhook delivered",
    ]


async def test_a_first_try_answered_gone_ends_the_route_and_the_supervisor_hears(dev_env, pool):
    """410 Gone on the first try disables the endpoint and gives the route up: the workflow sends no second
    request, the row is dead, and the supervisor is told by email, as when the workflow's own attempt gets 410."""
    async with SmtpSink() as sink, receiving() as receiver:
        roster, ids = team(f"ft-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/gone"))
        await signed_endpoint(receiver, pool, "/gone")
        receiver.endpoint("/gone").always = 410
        settings = fast_settings(sink.port)
        complaint_id, nid, queue = await tried_first(dev_env.client, pool, roster, ids["owner"], settings)
        async with delivering_worker(dev_env.client, pool, roster, settings, task_queue=queue):
            dead = await delivered(dev_env.client, pool, complaint_id, nid)
            [notice] = [n for n in await list_notifications(pool, complaint_id=complaint_id, pending_only=False)
                        if n.clock == f"undelivered:{nid}"]  # fmt: skip
            notice = await delivered(dev_env.client, pool, complaint_id, notice.id)

    assert [r.answered for r in receiver.requests] == [410]
    assert dead.status == "dead" and [(a.attempt, a.outcome) for a in dead.attempt_log] == [(FIRST_TRY, "gave_up")]
    assert notice.status == "delivered" and notice.recipient == ids["supervisor"]
    assert [m["To"] for m in sink.messages] == [f"{ids['supervisor']}@example.com"]


@ON_ONE_SERVER
async def test_a_worker_killed_during_its_first_tries_delivers_at_most_twice_never_loses(dev_env, pool, database_url, tmp_path):
    """A process commits five escalations with first tries and is killed (kill -9) as the first webhook
    arrives, before it is answered. No worker polls the queue until then, so the first tries are the only
    senders. Temporal retries the write whose worker died (here: run again), and a worker delivers the rest
    with the same idempotency keys once the dead tries' claims have lapsed."""
    from tools.harness.worker import WorkerProcess

    async with SmtpSink() as sink, receiving() as receiver:
        roster, ids = team(f"ftk-{uuid.uuid4().hex[:6]}", email="olive@example.com", webhook_url=receiver.url("/kill"))
        endpoint = await signed_endpoint(receiver, pool, "/kill")
        settings = fast_settings(sink.port, attempt_timeout=timedelta(seconds=2))
        await load_roster(pool, roster)
        queue = f"first-try-kill-{uuid.uuid4().hex[:8]}"
        complaint_id = f"D-{uuid.uuid4().hex[:10]}"
        committer = WorkerProcess(
            "tests.support.committing_process",
            ["--address", dev_env.client.service_client.config.target_host, "--namespace", dev_env.client.namespace,
             "--task-queue", queue, "--complaint-id", complaint_id, "--owner", ids["owner"], "--escalations", "5"],
            log_path=tmp_path / "committer.log", tied_to_parent=True,
            env={"DRILL_DATABASE_URL": database_url, "COMPLAINTS_ENCRYPTION_KEYS": "off", **settings_env(settings)},
        )  # fmt: skip
        killed = kill_on_first_arrival(endpoint, committer)
        await committer.start()
        await receiver.wait_for(1)
        assert killed and not committer.alive()
        nids = await notification_ids(pool, complaint_id)
        # The write's retry, on a live worker: it finds its rows and starts (or finds) their deliveries.
        from activities import CaseActivities
        from activities.delivery_starter import DeliveryStarter

        retry = FirstTry(pool, settings)
        await run(CaseActivities(pool, DeliveryStarter(dev_env.client, queue, retry)).record_case_events,
                  escalation_record(complaint_id, ids["owner"], 5))  # fmt: skip
        await retry.drain(timedelta(seconds=10))
        async with delivering_worker(dev_env.client, pool, roster, settings, task_queue=queue):
            done = [await delivered(dev_env.client, pool, complaint_id, nid, timeout=60) for nid in nids]

    keys = {f"ntf-{nid}" for nid in nids}
    assert len(nids) == 5 and [n.status for n in done] == ["delivered"] * 5
    hooks = Counter(r.webhook_id for r in receiver.delivered("/kill"))
    assert set(hooks) == keys and max(hooks.values()) <= 2 and sum(hooks.values()) > len(keys)  # one was sent twice
    mails = Counter(m["Message-ID"].split(".")[0].lstrip("<") for m in sink.messages)
    assert set(mails) == keys and max(mails.values()) <= 2
    # The killed first tries are in the log without an outcome; the workflow's attempts delivered after them.
    lost = [a for n in done for a in n.attempt_log if a.outcome is None]
    assert lost and {a.attempt for a in lost} == {FIRST_TRY}
    for n in done:
        for a in n.attempt_log:
            assert a.outcome is None or a.outcome == "delivered", a


async def test_a_write_retried_after_the_workflow_tried_sends_nothing_at_commit(dev_env, pool):
    """record_case_events may run again after its deliveries began (a retry). Its first try must leave a route
    the workflow has tried alone: that route is backing off (here Retry-After: 60)."""
    async with receiving() as receiver:
        roster, ids = team(f"ft-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/slow"))
        endpoint = await signed_endpoint(receiver, pool, "/slow")
        endpoint.always, endpoint.retry_after = 503, "60"
        settings = fast_settings()
        async with delivering_worker(dev_env.client, pool, roster, settings) as queue:
            complaint_id, [nid] = await escalate(dev_env.client, pool, queue, ids["owner"], [escalation(1, ids["owner"])])
            for _ in range(200):
                [row] = await get_notifications(pool, [nid], with_attempts=True)
                if row.attempt_log and row.attempt_log[0].outcome == "failed":
                    break
                await asyncio.sleep(0.05)
            retried_write = FirstTry(pool, settings)
            retried_write.begin(complaint_id, [nid])
            await retried_write.drain(timedelta(seconds=10))
            [after] = await get_notifications(pool, [nid], with_attempts=True)
            await dev_env.client.get_workflow_handle(
                delivery_workflow_id(DeliveryRequest(notification_id=nid, complaint_id=complaint_id))).terminate("test over")

    assert [(a.attempt, a.outcome) for a in after.attempt_log] == [(1, "failed")]
    assert [r.answered for r in receiver.requests] == [503]


async def test_an_endpoint_disabled_after_a_failed_first_try_is_given_up_without_a_send(dev_env, pool):
    """The first try fails (503); before the workflow's attempt, another notification's 410 disables the
    endpoint. The workflow gives the route up without sending to it: the row is dead."""
    async with receiving() as receiver:
        roster, ids = team(f"ft-{uuid.uuid4().hex[:6]}", webhook_url=receiver.url("/closing"))
        endpoint = await signed_endpoint(receiver, pool, "/closing")
        endpoint.fail_next, endpoint.fail_status, endpoint.retry_after = 1, 503, "1"
        settings = fast_settings()
        complaint_id, nid, queue = await tried_first(dev_env.client, pool, roster, ids["owner"], settings)
        await disable_endpoint(pool, receiver.url("/closing"), "answered 410 Gone")
        async with delivering_worker(dev_env.client, pool, roster, settings, task_queue=queue):
            dead = await delivered(dev_env.client, pool, complaint_id, nid)

    assert [r.answered for r in receiver.requests] == [503]
    assert dead.status == "dead" and [(a.attempt, a.outcome) for a in dead.attempt_log] == [(FIRST_TRY, "failed")]
