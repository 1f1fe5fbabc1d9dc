"""The stall monitor (issue 20.1): a row undelivered past DELIVERY_STALLED_SECONDS is logged once as
`delivery_stalled`, the backlog gauges read the outbox, and /metrics serves them over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import structlog

from config import load_settings

from delivery.metrics import REGISTRY, serve_metrics
from delivery.monitor import DeliveryMonitor, StalledRow, newly_stalled
from delivery.settings import DeliverySettings
from stack.ports import free_port
from worker import serve

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
SETTINGS = DeliverySettings(stalled_after=timedelta(minutes=15))


async def add_notification(pool, complaint_id: str, status: str, age: timedelta, level: int = 1, now: datetime = NOW) -> int:
    return await pool.fetchval(
        "INSERT INTO notifications (complaint_id, clock, level, recipient, recipient_role, reason, due_at, event_seq,"
        " created_at, status) VALUES ($1, 'acknowledge', $2, 'olive', 'owner', 'acknowledge overdue', $3, 1, $3, $4)"
        " RETURNING id",
        complaint_id, level, now - age, status,
    )  # fmt: skip


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def stalled_events(logs: list[dict]) -> list[dict]:
    return [entry for entry in logs if entry["event"] == "delivery_stalled"]


def row(nid: int) -> StalledRow:
    return StalledRow(nid, f"C{nid}", "retrying", 1000.0)


def test_a_stalled_row_is_reported_once_and_forgotten_when_it_is_no_longer_stalled():
    fresh, remembered = newly_stalled(frozenset(), [row(1), row(2)])
    assert [r.notification_id for r in fresh] == [1, 2] and remembered == {1, 2}
    fresh, remembered = newly_stalled(remembered, [row(1), row(2), row(3)])
    assert [r.notification_id for r in fresh] == [3] and remembered == {1, 2, 3}
    fresh, remembered = newly_stalled(remembered, [row(3)])
    assert fresh == () and remembered == {3}
    fresh, remembered = newly_stalled(remembered, [row(1), row(3)])  # stalled again: a new stall
    assert [r.notification_id for r in fresh] == [1] and remembered == {1, 3}


async def test_rows_past_the_threshold_are_logged_once_and_the_gauges_read_the_backlog(fresh_pool):
    stalled = await add_notification(fresh_pool, "C-OLD", "queued", timedelta(minutes=40))
    retrying = await add_notification(fresh_pool, "C-RETRY", "retrying", timedelta(minutes=20))
    sending = await add_notification(fresh_pool, "C-NEW", "sending", timedelta(minutes=2))
    await add_notification(fresh_pool, "C-DONE", "delivered", timedelta(hours=5))
    await add_notification(fresh_pool, "C-DEAD", "dead", timedelta(days=2))
    monitor = DeliveryMonitor(fresh_pool, SETTINGS)

    with structlog.testing.capture_logs() as logs:
        reading = await monitor.check_once(NOW)
    assert reading.pending == {"queued": 1, "sending": 1, "retrying": 1}
    assert reading.oldest_pending_seconds == 40 * 60 and reading.stalled_count == 2
    assert [(e["notification_id"], e["complaint_id"], e["status"], e["age_seconds"], e["log_level"])
            for e in stalled_events(logs)] == [
        (stalled, "C-OLD", "queued", 2400.0, "warning"), (retrying, "C-RETRY", "retrying", 1200.0, "warning"),
    ]  # fmt: skip
    assert set(stalled_events(logs)[0]) <= {"event", "log_level", "logger", "notification_id", "complaint_id",
                                            "status", "age_seconds", "stalled_after_seconds"}  # fmt: skip
    for status, count in {"queued": 1, "sending": 1, "retrying": 1}.items():
        assert gauge("complaints_notifications_pending", status=status) == count
    assert gauge("complaints_notifications_oldest_pending_seconds") == 2400.0
    assert gauge("complaints_delivery_stalled") == 2

    with structlog.testing.capture_logs() as logs:  # still stalled, a minute later: nothing new to say
        again = await monitor.check_once(NOW + timedelta(minutes=1))
    assert stalled_events(logs) == [] and again.newly_stalled == () and again.stalled_count == 2
    assert gauge("complaints_notifications_oldest_pending_seconds") == 41 * 60

    await fresh_pool.execute("UPDATE notifications SET status = 'delivered' WHERE id = $1", stalled)
    with structlog.testing.capture_logs() as logs:  # the sending row stalls too; the delivered one leaves
        later = await monitor.check_once(NOW + timedelta(minutes=14))
    assert [(e["notification_id"], e["status"]) for e in stalled_events(logs)] == [(sending, "sending")]
    assert later.pending == {"queued": 0, "sending": 1, "retrying": 1} and later.stalled_count == 2
    assert monitor.reported == {retrying, sending}
    assert gauge("complaints_notifications_pending", status="queued") == 0
    assert gauge("complaints_delivery_stalled") == 2


async def test_an_empty_outbox_reads_zero_and_the_cap_limits_the_rows_logged_not_the_count(fresh_pool):
    reading = await DeliveryMonitor(fresh_pool, SETTINGS).check_once(NOW)
    assert reading.pending == {"queued": 0, "sending": 0, "retrying": 0}
    assert (reading.oldest_pending_seconds, reading.stalled_count, reading.stalled) == (0.0, 0, ())
    assert gauge("complaints_notifications_oldest_pending_seconds") == 0 and gauge("complaints_delivery_stalled") == 0

    ids = [await add_notification(fresh_pool, "C-MANY", "queued", timedelta(hours=1, minutes=-i), level=1 + i % 3)
           for i in range(3)]  # fmt: skip
    with structlog.testing.capture_logs() as logs:
        reading = await DeliveryMonitor(fresh_pool, SETTINGS, cap=2).check_once(NOW)
    assert reading.stalled_count == 3 and [r.notification_id for r in reading.stalled] == ids[:2]
    assert [e["notification_id"] for e in stalled_events(logs)] == ids[:2]


async def test_the_monitor_runs_until_stopped(fresh_pool):
    # No instant given: the monitor measures ages by the database's clock.
    await add_notification(fresh_pool, "C-RUN", "retrying", timedelta(days=1), now=datetime.now(timezone.utc))
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(DeliveryMonitor(fresh_pool, SETTINGS).run(stop, every=0.05))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(running, timeout=5)
    assert [e["complaint_id"] for e in stalled_events(logs)] == ["C-RUN"]
    assert gauge("complaints_delivery_stalled") == 1


async def test_the_metrics_endpoint_serves_the_gauges_and_counters_over_http(fresh_pool):
    await add_notification(fresh_pool, "C-HTTP", "queued", timedelta(minutes=30))
    await DeliveryMonitor(fresh_pool, SETTINGS).check_once(NOW)
    port = free_port()
    stop = serve_metrics(port, "127.0.0.1")
    try:
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        stop()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    lines = answer.text.splitlines()
    for expected in ('complaints_notifications_pending{status="queued"} 1.0', "complaints_delivery_stalled 1.0",
                     "complaints_notifications_oldest_pending_seconds 1800.0"):  # fmt: skip
        assert expected in lines, expected
    for counter in ("complaints_notifications_queued_total", "complaints_notifications_dead_total",
                    "# TYPE complaints_notifications_delivered_total counter",
                    "# TYPE complaints_notifications_retried_total counter"):  # fmt: skip
        assert any(line.startswith(counter) for line in lines), counter


async def test_the_worker_serves_metrics_on_the_port_its_settings_name_until_it_stops(dev_env, database_url, monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("COMPLAINTS_METRICS_PORT", str(port))
    settings = load_settings({
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host, "DATABASE_URL": database_url,
        "COMPLAINTS_ENCRYPTION_KEYS": "off", "COMPLAINTS_IDENTITY": "trusted-callers",
        "COMPLAINTS_TASK_QUEUE": f"metrics-{uuid.uuid4().hex[:8]}", "COMPLAINTS_DATA_DIR": str(tmp_path),
    })  # fmt: skip
    stop, started = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(serve(settings, stop, started))
    try:
        await asyncio.wait_for(started.wait(), timeout=60)
        async with httpx.AsyncClient() as client:
            for _ in range(100):  # the monitor's first check sets the gauges
                answer = await client.get(f"http://127.0.0.1:{port}/metrics")
                if 'complaints_notifications_pending{status="queued"}' in answer.text:
                    break
                await asyncio.sleep(0.05)
        assert answer.status_code == 200 and "complaints_delivery_stalled" in answer.text
        assert 'complaints_notifications_pending{status="queued"}' in answer.text
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=60)
    async with httpx.AsyncClient() as client:  # stopped with the worker: the port is free again
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/metrics")
