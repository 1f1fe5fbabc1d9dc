"""The notifications outbox: record_case_events queues each escalation once; list, ack and the CLI.

Against real PostgreSQL (embedded and local, see tests/support/pg_fixtures.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta

import pytest
import structlog

from activities import CaseActivities
from activities.notifications_store import acknowledge, get_notifications, list_notifications
from schemas.activity_io import RecordCaseEvents
from schemas.state import TimelineEvent
from tests.support.activity_io import T0, run
from tests.support.activity_io import state as case_state
from tests.support.cli import assert_one_error, run_cli
from tests.support.logs import warnings_only
from stack.ports import free_port

KEY = ("complaint_id", "clock", "level", "occurrence")


def note(seq: int) -> TimelineEvent:
    return TimelineEvent(seq=seq, at=T0 + timedelta(minutes=seq), kind="note_added", actor="a1", data={"n": seq})


def escalated(
    seq: int,
    clock: str = "promise:P1",
    level: int = 2,
    occurrence: int = 1,
    recipient: str = "s.lindqvist",
    role: str = "supervisor",
    **extra,
) -> TimelineEvent:
    due = T0 + timedelta(hours=level)
    data = {
        "clock": clock,
        "level": level,
        "occurrence": occurrence,
        "recipient": recipient,
        "recipient_role": role,
        "reason": f"{clock} reached level {level}: the deadline passed",
        "due_at": due.isoformat(),
        "deadline": (T0 + timedelta(hours=2)).isoformat(),
        **extra,
    }
    return TimelineEvent(seq=seq, at=due, kind="escalated", actor="system:engine", data=data)


def batch(events: list[TimelineEvent], complaint_id: str = "C-1", **state) -> RecordCaseEvents:
    last = max(e.seq for e in events)
    return RecordCaseEvents(
        workflow_id=f"complaint-{complaint_id}",
        run_id="run-1",
        events=events,
        state=case_state(last, complaint_id=complaint_id, **state),
    )


async def outbox(pool) -> list[dict]:
    rows = await pool.fetch("SELECT * FROM notifications ORDER BY id")
    return [dict(row) for row in rows]


def keys(rows: list[dict]) -> list[tuple]:
    return sorted(tuple(row[k] for k in KEY) for row in rows)


# -- record_case_events queues each escalation once --------------------------------------


async def test_each_escalation_is_queued_once_however_often_its_batch_is_recorded(fresh_pool):
    acts = CaseActivities(fresh_pool)
    first = batch([note(1), escalated(2, level=1, recipient="a1", role="owner"), escalated(3, level=2)])
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            await run(acts.record_case_events, first)
        await asyncio.gather(*(run(acts.record_case_events, first) for _ in range(3)))
    rows = await outbox(fresh_pool)
    assert keys(rows) == [("C-1", "promise:P1", 1, 1), ("C-1", "promise:P1", 2, 1)]
    level2 = next(row for row in rows if row["level"] == 2)
    assert {k: level2[k] for k in ("recipient", "recipient_role", "event_seq", "due_at", "deadline", "status", "delivered_at")} == {
        "recipient": "s.lindqvist",
        "recipient_role": "supervisor",
        "event_seq": 3,
        "due_at": T0 + timedelta(hours=2),
        "deadline": T0 + timedelta(hours=2),
        "status": "queued",
        "delivered_at": None,
    }
    assert level2["reason"] == "promise:P1 reached level 2: the deadline passed" and level2["created_at"] is not None
    queued = [entry for entry in logs if entry["event"] == "notification queued"]
    assert sorted((e["complaint_id"], e["recipient"], e["recipient_role"], e["clock"], e["level"]) for e in queued) == [
        ("C-1", "a1", "owner", "promise:P1", 1),
        ("C-1", "s.lindqvist", "supervisor", "promise:P1", 2),
    ]
    assert next(e for e in queued if e["level"] == 2)["due_at"] == (T0 + timedelta(hours=2)).isoformat()


async def test_overlapping_batches_retried_in_any_order_queue_each_key_once(fresh_pool):
    acts = CaseActivities(fresh_pool)
    a = batch([note(1), escalated(2, clock="resolution", level=1, recipient="a1", role="owner"), note(3)])
    b = batch([note(3), escalated(4, clock="resolution", level=2), escalated(5, clock="acknowledge", level=2)])
    c = batch([escalated(4, clock="resolution", level=2), escalated(5, clock="acknowledge", level=2), note(6)])
    for each in (a, b, a, c, b, c):
        await run(acts.record_case_events, each)
    await asyncio.gather(*(run(acts.record_case_events, each) for each in (a, b, c, a, b, c)))
    rows = await outbox(fresh_pool)
    assert keys(rows) == [("C-1", "acknowledge", 2, 1), ("C-1", "resolution", 1, 1), ("C-1", "resolution", 2, 1)]
    assert sorted(row["event_seq"] for row in rows) == [2, 4, 5]
    assert await fresh_pool.fetchval("SELECT count(*) FROM case_events") == 6


async def test_a_replayed_escalation_under_another_seq_is_not_queued_again_but_a_new_occurrence_is(fresh_pool):
    acts = CaseActivities(fresh_pool)
    await run(acts.record_case_events, batch([note(1), escalated(2)]))
    # The same escalation recorded again later in the timeline (a replayed case): still one row.
    await run(acts.record_case_events, batch([note(3), escalated(4)]))
    assert keys(await outbox(fresh_pool)) == [("C-1", "promise:P1", 2, 1)]
    assert [row["event_seq"] for row in await outbox(fresh_pool)] == [2]
    # The promise renegotiated and overdue again: occurrence 2 notifies again; another case has its own rows.
    await run(acts.record_case_events, batch([escalated(5, occurrence=2)]))
    await run(acts.record_case_events, batch([escalated(1)], complaint_id="C-2"))
    assert keys(await outbox(fresh_pool)) == [
        ("C-1", "promise:P1", 2, 1),
        ("C-1", "promise:P1", 2, 2),
        ("C-2", "promise:P1", 2, 1),
    ]


async def test_a_batch_refused_as_a_timeline_conflict_queues_nothing(fresh_pool):
    acts = CaseActivities(fresh_pool)
    await run(acts.record_case_events, batch([note(1), note(2)]))
    conflicting = batch([TimelineEvent(seq=2, at=T0, kind="customer_contacted", actor="a1"), escalated(3)])
    with pytest.raises(Exception, match="seq 2"):
        await run(acts.record_case_events, conflicting)
    assert await outbox(fresh_pool) == []


async def test_an_unreadable_escalation_is_logged_and_the_rest_is_recorded(fresh_pool):
    acts = CaseActivities(fresh_pool)
    broken = TimelineEvent(seq=2, at=T0, kind="escalated", actor="system:engine", data={"clock": "resolution", "level": 2})
    with structlog.testing.capture_logs() as logs:
        await run(acts.record_case_events, batch([note(1), broken, escalated(3, level=3, recipient="m1", role="manager")]))
    assert keys(await outbox(fresh_pool)) == [("C-1", "promise:P1", 3, 1)]
    assert await fresh_pool.fetchval("SELECT count(*) FROM case_events") == 3
    errors = [e for e in logs if e["event"] == "escalated event not queued as a notification"]
    assert len(errors) == 1 and errors[0]["seq"] == 2 and "recipient: required field is missing" in errors[0]["error"]


async def test_the_case_snapshot_keeps_escalation_level_and_next_deadline_current(fresh_pool):
    acts = CaseActivities(fresh_pool)
    deadline = T0 + timedelta(hours=2)
    await run(acts.record_case_events, batch([note(1), escalated(2)], escalation_level=2, next_deadline=deadline))
    row = await fresh_pool.fetchrow("SELECT escalation_level, next_deadline FROM cases WHERE complaint_id = 'C-1'")
    assert (row["escalation_level"], row["next_deadline"]) == (2, deadline)
    await run(acts.record_case_events, batch([note(3)], escalation_level=0, next_deadline=None))
    row = await fresh_pool.fetchrow("SELECT escalation_level, next_deadline FROM cases WHERE complaint_id = 'C-1'")
    assert (row["escalation_level"], row["next_deadline"]) == (0, None)


# -- list and acknowledge ---------------------------------------------------------------------


async def test_list_filters_orders_and_acknowledge_is_idempotent(fresh_pool):
    acts = CaseActivities(fresh_pool)
    await run(acts.record_case_events, batch([escalated(1, level=1, recipient="a1", role="owner"), escalated(2, level=2)]))
    await run(acts.record_case_events, batch([escalated(1, clock="resolution", level=2)], complaint_id="C-2"))
    pending = await list_notifications(fresh_pool)
    assert [(n.complaint_id, n.clock, n.level) for n in pending] == [
        ("C-1", "promise:P1", 1),
        ("C-1", "promise:P1", 2),
        ("C-2", "resolution", 2),
    ]
    assert all(n.pending for n in pending) and pending[1].recipient_role == "supervisor"
    assert [n.level for n in await list_notifications(fresh_pool, recipient="s.lindqvist")] == [2, 2]
    assert [n.complaint_id for n in await list_notifications(fresh_pool, recipient="s.lindqvist", complaint_id="C-2")] == ["C-2"]
    assert len(await list_notifications(fresh_pool, limit=2)) == 2
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await list_notifications(fresh_pool, limit=0)

    first, second = pending[0].id, pending[1].id
    assert await acknowledge(fresh_pool, [first, second, first, 999_999], "sam.lead") == 2
    assert await acknowledge(fresh_pool, [first], "mo.ops") == 0
    assert await acknowledge(fresh_pool, [], "mo.ops") == 0
    assert [n.id for n in await list_notifications(fresh_pool)] == [pending[2].id]
    everything = await list_notifications(fresh_pool, pending_only=False)
    assert [n.id for n in everything] == [pending[2].id, second, first]  # newest first
    acknowledged = {n.id: (n.acknowledged_at, n.acknowledged_by) for n in everything}
    assert acknowledged[first][1] == "sam.lead" and acknowledged[pending[2].id] == (None, None)
    # A second ack keeps the first acknowledger and time; acknowledging is not delivering.
    await acknowledge(fresh_pool, [first], "mo.ops")
    [again] = await get_notifications(fresh_pool, [first])
    assert (again.acknowledged_at, again.acknowledged_by) == acknowledged[first] and again.delivered_at is None
    assert [n.status for n in await list_notifications(fresh_pool, status="queued", pending_only=False)] == ["queued"] * 3
    # Acknowledged rows stay acknowledged when the batch that queued them is recorded again.
    await run(acts.record_case_events, batch([escalated(1, level=1, recipient="a1", role="owner"), escalated(2, level=2)]))
    assert [n.id for n in await list_notifications(fresh_pool)] == [pending[2].id]


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def quiet_logs():
    """The activities run in this process: keep their info logs out of the CLI's captured stdout."""
    with warnings_only():
        yield



async def test_cli_notifications_list_and_ack(pool, database_url, monkeypatch, capsys, quiet_logs):
    monkeypatch.setenv("DATABASE_URL", database_url)
    cid = f"N-{uuid.uuid4().hex[:10]}"
    supervisor = f"sup-{uuid.uuid4().hex[:6]}"
    acts = CaseActivities(pool)
    long_reason = "Promise P1 'Refund the duplicate charge' is overdue " + "and the customer is waiting " * 5
    await run(
        acts.record_case_events,
        batch(
            [
                escalated(1, level=1, recipient="a1", role="owner"),
                escalated(2, level=2, recipient=supervisor, reason=long_reason),
                escalated(3, clock="resolution", level=2, occurrence=2, recipient=supervisor),
            ],
            complaint_id=cid,
        ),
    )
    ids = {(n.clock, n.level): n.id for n in await list_notifications(pool, complaint_id=cid)}

    status, out, err = await run_cli(capsys, "notifications", "list", "--recipient", supervisor)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "CREATED", "RECIPIENT", "CASE", "CLOCK", "LEVEL", "REASON", "DUE", "STATUS", "TRIES"]
    assert len(lines) == 3 and lines[1].startswith(f"{ids[('promise:P1', 2)]} ")
    assert f"{supervisor} (supervisor)" in lines[1] and cid in lines[1] and " promise:P1 " in lines[1]
    assert "2026-11-23 11:00:00 UTC" in lines[1] and "..." in lines[1] and len(lines[1]) < 200
    assert lines[1].split()[-2:] == ["queued", "0"]
    assert "resolution #2" in lines[2]

    status, out, _ = await run_cli(capsys, "notifications", "list", "--case", cid, "--json")
    shown = json.loads(out)
    assert status == 0 and [(n["clock"], n["level"], n["recipient"]) for n in shown] == [
        ("promise:P1", 1, "a1"),
        ("promise:P1", 2, supervisor),
        ("resolution", 2, supervisor),
    ]
    assert shown[1]["reason"] == long_reason.strip() and shown[1]["delivered_at"] is None
    assert (shown[1]["status"], shown[1]["attempts"], shown[1]["attempt_log"]) == ("queued", 0, [])
    assert datetime.fromisoformat(shown[1]["due_at"]) == T0 + timedelta(hours=2)

    # ack: recorded, then gone from the unacknowledged list, shown with --all
    status, out, err = await run_cli(capsys, "notifications", "ack", str(ids[("promise:P1", 2)]), "--by", "sam.lead")
    assert (status, out.strip(), err) == (0, "Acknowledged 1 notification by sam.lead", "")
    status, out, err = await run_cli(
        capsys, "notifications", "ack", str(ids[("promise:P1", 2)]), str(ids[("resolution", 2)]), "--by", "mo.ops"
    )
    assert (status, out.strip()) == (
        0, f"Acknowledged 1 notification by mo.ops; already acknowledged: {ids[('promise:P1', 2)]} (by sam.lead)"
    )
    status, out, _ = await run_cli(capsys, "notifications", "list", "--case", cid, "--all", "--json")
    acknowledged = {n["id"]: n["acknowledged_by"] for n in json.loads(out)}
    # Issue 14.6: who acknowledged each is kept, the first acknowledger of one acknowledged twice.
    assert acknowledged[ids[("promise:P1", 2)]] == "sam.lead" and acknowledged[ids[("resolution", 2)]] == "mo.ops"
    assert acknowledged[ids[("promise:P1", 1)]] is None
    status, out, _ = await run_cli(capsys, "notifications", "list", "--case", cid)
    assert status == 0 and [line.split()[0] for line in out.splitlines()[1:]] == [str(ids[("promise:P1", 1)])]
    status, out, _ = await run_cli(capsys, "notifications", "list", "--recipient", supervisor)
    assert (status, out.strip()) == (0, f"No unacknowledged notifications for {supervisor}.")
    status, out, _ = await run_cli(capsys, "notifications", "list", "--recipient", supervisor, "--all", "--limit", "1")
    lines = out.splitlines()
    assert status == 0 and lines[0].split()[-2:] == ["ACKNOWLEDGED", "BY"] and len(lines) == 2
    assert lines[1].startswith(f"{ids[('resolution', 2)]} ") and lines[1].endswith(" UTC  mo.ops")

    # an unknown id: nothing is marked
    unknown = ids[("resolution", 2)] + 10_000_000
    status, out, err = await run_cli(capsys, "notifications", "ack", str(ids[("promise:P1", 1)]), str(unknown))
    assert (status, out) == (2, "")
    assert_one_error(err, f"no notification {unknown} (nothing was marked")
    assert (await get_notifications(pool, [ids[("promise:P1", 1)]]))[0].acknowledged_at is None


@pytest.mark.parametrize(
    "argv, status, expected",
    [
        (["notifications", "ack", "abc"], 2, "argument ID: a notification id is a positive whole number (got 'abc')"),
        (["notifications", "ack", "0"], 2, "a notification id is a positive whole number"),
        (["notifications", "list", "--limit", "0"], 2, "--limit must be at least 1 (got 0)"),
        (["notifications", "list", "--case", "bad id"], 2, "complaint id must be"),
        (["notifications", "send"], 2, "unknown command 'send'; commands are: list, ack"),
        (["notifications", "list"], 1, "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:{port}/x"),
        (["notifications", "ack", "1"], 1, "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:{port}/x"),
    ],
)
async def test_cli_notifications_errors_are_one_line(argv, status, expected, capsys, monkeypatch, quiet_logs):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/x")
    got, out, err = await run_cli(capsys, *argv)
    assert (got, out) == (status, "")
    assert_one_error(err, expected.format(port=port))
