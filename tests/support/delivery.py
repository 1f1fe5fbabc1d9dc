"""Builders for the delivery tests: a roster with channels, an escalation recorded for real, a worker
with fast retries, and waiting for a notification's status."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any, AsyncIterator

from activities import CaseActivities
from activities.delivery_starter import DeliveryStarter
from activities.first_try import FirstTry
from activities.notifications_store import get_notifications, list_notifications
from activities.roster_store import load_roster
from delivery.settings import DeliverySettings, SmtpSettings
from schemas.activity_io import RecordCaseEvents
from schemas.notifications import Notification
from schemas.roster import Agent, Roster
from schemas.state import TimelineEvent
from tests.support.activity_io import T0, run
from tests.support.activity_io import state as case_state

# Retries in tenths of a second, so a test sees several in a moment.
FAST = DeliverySettings(
    first_retry=timedelta(seconds=0.1),
    max_retry=timedelta(seconds=0.4),
    client_error_retry=timedelta(seconds=60),
    attempt_timeout=timedelta(seconds=5),
)


def fast_settings(smtp_port: int | None = None, **changes: Any) -> DeliverySettings:
    smtp = SmtpSettings(host="127.0.0.1", port=smtp_port, sender="escalations@complaints.test", timeout=5) if smtp_port else None
    return replace(FAST, smtp=smtp, **changes)


def team(prefix: str, **owner_channels: Any) -> tuple[Roster, dict[str, str]]:
    """An owner, their supervisor and a manager, ids unique to the test; owner_channels: the owner's channels.
    The supervisor and the manager have email addresses only."""
    ids = {role: f"{prefix}-{role}" for role in ("owner", "supervisor", "manager")}
    roster = Roster(agents=[
        Agent(id=ids["manager"], name="Margaret Manager", role="manager", team="billing", email=f"{ids['manager']}@example.com"),
        Agent(id=ids["supervisor"], name="Sam Supervisor", role="supervisor", team="billing",
              supervisor_id=ids["manager"], email=f"{ids['supervisor']}@example.com"),
        Agent(id=ids["owner"], name="Olive Owner", role="agent", team="billing", supervisor_id=ids["supervisor"],
              skills=["billing"], **owner_channels),
    ])  # fmt: skip
    return roster, ids


def escalation(seq: int, recipient: str, role: str = "owner", clock: str = "promise:P1", level: int = 1) -> TimelineEvent:
    due = T0 + timedelta(hours=level)
    return TimelineEvent(seq=seq, at=due, kind="escalated", actor="system:engine", data={
        "clock": clock, "level": level, "occurrence": 1, "recipient": recipient, "recipient_role": role,
        "reason": f"Promise P1 'Refund the duplicate charge' reached level {level}: the deadline passed",
        "due_at": due.isoformat(), "deadline": (T0 + timedelta(hours=1)).isoformat(),
    })  # fmt: skip


def case_record(complaint_id: str, owner: str, events: list[TimelineEvent]) -> RecordCaseEvents:
    """What the case `complaint_id`, owned by `owner`, asks record_case_events to write."""
    last = max(e.seq for e in events)
    return RecordCaseEvents(
        workflow_id=f"complaint-{complaint_id}", run_id="run-1", events=events,
        state=case_state(last, complaint_id=complaint_id).model_copy(update={"owner": owner}),
    )  # fmt: skip


def escalation_record(complaint_id: str, owner: str, count: int) -> RecordCaseEvents:
    """`count` escalations to the owner, each of its own promise (P1, P2, ...)."""
    return case_record(complaint_id, owner, [escalation(seq, owner, clock=f"promise:P{seq}") for seq in range(1, count + 1)])


async def escalate(client: Any, pool: Any, task_queue: str, owner: str, events: list[TimelineEvent],
                   complaint_id: str | None = None, first_try: FirstTry | None = None) -> tuple[str, list[int]]:
    """Record the escalations as the case would (record_case_events, which starts their deliveries, and with
    `first_try` sends them at once); return the complaint id and the notification ids, in event order."""
    complaint_id = complaint_id or f"D-{uuid.uuid4().hex[:10]}"
    acts = CaseActivities(pool, DeliveryStarter(client, task_queue, first_try))
    await run(acts.record_case_events, case_record(complaint_id, owner, events))
    return complaint_id, await notification_ids(pool, complaint_id)


async def signed_endpoint(receiver: Any, pool: Any, path: str) -> Any:
    """The receiver's endpoint at `path`, checking signatures with the secret the worker will sign with."""
    from activities.delivery_store import endpoint_secrets

    endpoint = receiver.endpoint(path)
    endpoint.secrets = await endpoint_secrets(pool, receiver.url(path))
    return endpoint


def kill_on_first_arrival(endpoint: Any, process: Any) -> list[int]:
    """Make the endpoint kill `process` (kill -9) as the first request arrives, before it is answered: the send
    happened, its recording did not. Returns the list the killed pid is put in."""
    killed: list[int] = []

    async def kill_once(webhook_id: str) -> None:
        if not killed:
            killed.append(await process.kill())

    endpoint.on_arrival = kill_once
    return killed


async def notification_ids(pool: Any, complaint_id: str) -> list[int]:
    """The case's notifications, in event order."""
    found = await list_notifications(pool, complaint_id=complaint_id, limit=1000)
    return [n.id for n in sorted(found, key=lambda n: n.event_seq)]


async def delivered(client: Any, pool: Any, complaint_id: str, notification_id: int, timeout: float = 30.0) -> Notification:
    """The notification once its delivery workflow has finished (every route settled), with its attempts."""
    from schemas.delivery import DeliveryRequest
    from workflows.delivery import delivery_workflow_id

    request = DeliveryRequest(notification_id=notification_id, complaint_id=complaint_id)
    await asyncio.wait_for(client.get_workflow_handle(delivery_workflow_id(request)).result(), timeout)
    [found] = await get_notifications(pool, [notification_id], with_attempts=True)
    return found


@asynccontextmanager
async def delivering_worker(client: Any, pool: Any, roster: Roster, settings: DeliverySettings,
                            task_queue: str | None = None) -> AsyncIterator[str]:
    """The roster loaded and a worker with these delivery settings; yields its task queue."""
    from worker import build_worker

    await load_roster(pool, roster)
    task_queue = task_queue or f"delivery-test-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, pool, task_queue, delivery=settings, graceful_shutdown=timedelta(0)):
        yield task_queue


def settings_env(settings: DeliverySettings) -> dict[str, str]:
    """The environment that gives a worker process these delivery settings."""
    env = {
        "DELIVERY_FIRST_RETRY_SECONDS": str(settings.first_retry.total_seconds()),
        "DELIVERY_MAX_RETRY_SECONDS": str(settings.max_retry.total_seconds()),
        "DELIVERY_CLIENT_ERROR_RETRY_SECONDS": str(settings.client_error_retry.total_seconds()),
        "DELIVERY_ATTEMPT_TIMEOUT_SECONDS": str(settings.attempt_timeout.total_seconds()),
        "DELIVERY_GIVE_UP_SECONDS": str(settings.give_up.total_seconds()),
    }
    if settings.request_timeout is not None:
        env["DELIVERY_REQUEST_TIMEOUT_SECONDS"] = str(settings.request_timeout.total_seconds())
    if settings.smtp is not None:
        env.update(SMTP_URL=f"smtp://{settings.smtp.host}:{settings.smtp.port}", SMTP_FROM=settings.smtp.sender)
    return env


@asynccontextmanager
async def worker_process(env_client: Any, database_url: str, task_queue: str, settings: DeliverySettings,
                         log_dir: Any) -> AsyncIterator[Any]:
    """The production worker (worker.build_worker) in a process of its own, on `task_queue`, which a test may
    kill -9 and start again (tools/harness/worker.py)."""
    from tools.harness.worker import WorkerProcess

    env = {
        "DRILL_DATABASE_URL": database_url, "COMPLAINTS_ENCRYPTION_KEYS": "off", "COMPLAINTS_DATA_DIR": str(log_dir),
        "COMPLAINTS_IDENTITY": "trusted-callers", **settings_env(settings),
    }  # fmt: skip
    args = ["--address", env_client.service_client.config.target_host, "--namespace", env_client.namespace,
            "--task-queue", task_queue, "--pool-size", "6"]  # fmt: skip
    process = WorkerProcess("drills.worker_process", args, log_path=log_dir / "worker.log", env=env, tied_to_parent=True)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()
