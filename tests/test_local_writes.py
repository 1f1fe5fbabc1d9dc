"""write_case_events, the local activity that writes a case's events inside its workflow task.

Against a real PostgreSQL (embedded and local, tests/pg_fixtures.py). The
write happens before the workflow task completes, so an attempt that never
completes (the worker dies after the write) can leave rows its history does
not hold; the next attempt must replace them, and an older attempt must never
overwrite a newer one. Rows the history holds (up to committed_seq) are never
touched. The workflow side (answers and replays) is in tests/test_integration.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities import CaseActivities
from activities.roster_store import load_roster
from schemas.activity_io import WriteCaseEvents
from tests.test_case_activities import T0, event, intake, promise, run, state, team


def write(events, st, *, committed: int, fence: int = 10, run_id: str = "run-1") -> WriteCaseEvents:
    return WriteCaseEvents(
        workflow_id=f"complaint-{st.complaint_id}", run_id=run_id, events=events, state=st,
        committed_seq=committed, fence=fence,
    )


def escalated(seq: int, level: int = 2, **data) -> object:
    return event(
        seq, "escalated", clock="promise:P1", level=level, occurrence=1, recipient="s1", recipient_role="supervisor",
        reason="promise P1 reached its deadline", due_at=(T0 + timedelta(hours=1)).isoformat(),
        deadline=(T0 + timedelta(hours=1)).isoformat(), **data,
    )


async def events_of(pool, complaint_id: str = "C-1") -> list[tuple]:
    rows = await pool.fetch("SELECT seq, kind, at FROM case_events WHERE complaint_id = $1 ORDER BY seq", complaint_id)
    return [(r["seq"], r["kind"], r["at"]) for r in rows]


async def test_a_write_and_its_retries_store_each_row_once_with_the_snapshot_and_promises(fresh_pool):
    acts = CaseActivities(fresh_pool)
    first = write([event(1, "complaint_received"), event(2, "owner_assigned")], state(2, status="assigned"), committed=0)
    for _ in range(3):
        await run(acts.write_case_events, first)
    second = write([event(3, "promise_made", promise_id="P1")], state(3, promises=[promise()]), committed=2, fence=14)
    await asyncio.gather(*(run(acts.write_case_events, second) for _ in range(2)))
    assert [(s, k) for s, k, _ in await events_of(fresh_pool)] == [(1, "complaint_received"), (2, "owner_assigned"), (3, "promise_made")]
    case = await fresh_pool.fetchrow("SELECT * FROM cases WHERE complaint_id = 'C-1'")
    assert (case["last_seq"], case["status"], case["run_id"], case["write_fence"]) == (3, "in_progress", "run-1", 14)
    assert case["snapshot"]["event_count"] == 3
    assert await fresh_pool.fetchval("SELECT status FROM promises WHERE promise_id = 'P1'") == "open"
    kept = write([event(4, "promise_kept")], state(4, promises=[promise("kept")]), committed=3, fence=18)
    await run(acts.write_case_events, kept)
    assert await fresh_pool.fetchval("SELECT status FROM promises WHERE promise_id = 'P1'") == "kept"


async def test_rows_of_an_attempt_that_never_completed_are_replaced_and_the_extra_ones_deleted(fresh_pool):
    acts = CaseActivities(fresh_pool)
    await run(acts.write_case_events, write([event(1), event(2)], state(2), committed=0, fence=4))
    # Attempt 1 of the next workflow task wrote seqs 3..5 (a signal and an escalation), then the worker died.
    lost = write([event(3, "note_added"), escalated(4), event(5, "customer_contacted")],
                 state(5, status="closed"), committed=2, fence=8)
    await run(acts.write_case_events, lost)
    assert await fresh_pool.fetchval("SELECT count(*) FROM notifications") == 1
    # Attempt 2 made seq 3 again, at its own time, and nothing else.
    retry_event = event(3, "note_added").model_copy(update={"at": T0 + timedelta(hours=5)})
    await run(acts.write_case_events, write([retry_event], state(3), committed=2, fence=11))
    stored = await events_of(fresh_pool)
    assert [(s, k) for s, k, _ in stored] == [(1, "note_added"), (2, "note_added"), (3, "note_added")]
    assert stored[2][2] == T0 + timedelta(hours=5)
    # The snapshot is the newer attempt's, though its last seq is lower; the lost escalation's notice is gone.
    case = await fresh_pool.fetchrow("SELECT status, last_seq, write_fence FROM cases")
    assert (case["status"], case["last_seq"], case["write_fence"]) == ("in_progress", 3, 11)
    assert await fresh_pool.fetchval("SELECT count(*) FROM notifications") == 0


async def test_an_older_attempt_never_overwrites_a_newer_one(fresh_pool):
    acts = CaseActivities(fresh_pool)
    await run(acts.write_case_events, write([event(1), event(2)], state(2), committed=0, fence=4))
    newer = event(3, "customer_contacted").model_copy(update={"at": T0 + timedelta(hours=5)})
    await run(acts.write_case_events, write([newer], state(3, status="waiting_on_customer"), committed=2, fence=11))
    with pytest.raises(ApplicationError, match="newer workflow task") as refused:
        await run(acts.write_case_events, write([event(3, "note_added"), event(4)], state(4, status="closed"), committed=2, fence=8))
    assert refused.value.type == "SupersededWrite" and not refused.value.non_retryable
    assert [(s, k) for s, k, _ in await events_of(fresh_pool)] == [(1, "note_added"), (2, "note_added"), (3, "customer_contacted")]
    assert await fresh_pool.fetchval("SELECT status FROM cases") == "waiting_on_customer"


async def test_committed_rows_are_never_touched(fresh_pool):
    acts = CaseActivities(fresh_pool)
    await run(acts.write_case_events, write([event(1), event(2)], state(2), committed=0, fence=4))
    # A batch always starts after committed_seq; a row at or before it stays as written, whatever comes.
    await run(acts.write_case_events, write([event(3)], state(3), committed=2, fence=9))
    assert [s for s, _, _ in await events_of(fresh_pool)] == [1, 2, 3]
    assert (await events_of(fresh_pool))[0][2] == T0 + timedelta(minutes=1)


async def test_an_escalation_made_again_by_the_next_attempt_keeps_its_one_notification(fresh_pool):
    acts = CaseActivities(fresh_pool)
    await run(acts.write_case_events, write([event(1), event(2)], state(2), committed=0, fence=4))
    await run(acts.write_case_events, write([escalated(3)], state(3), committed=2, fence=8))
    first_id = await fresh_pool.fetchval("SELECT id FROM notifications")
    # The next attempt made a signal's event first, then the same escalation (now seq 4).
    await run(acts.write_case_events, write([event(3, "note_added"), escalated(4)], state(4), committed=2, fence=11))
    rows = await fresh_pool.fetch("SELECT id, event_seq FROM notifications")
    assert [(r["id"], r["event_seq"]) for r in rows] == [(first_id, 4)]


async def test_a_new_run_takes_over_whatever_the_previous_one_wrote(fresh_pool):
    """Continue-as-new (or a reset): the new run's history is short, so its fence is small."""
    await load_roster(fresh_pool, team())
    acts = CaseActivities(fresh_pool)
    await run(acts.assign_owner, intake("C-1"))
    await run(acts.write_case_events, write([event(1), event(2)], state(2), committed=0, fence=900, run_id="run-1"))
    await run(acts.write_case_events, write([event(3)], state(3, status="follow_through"), committed=2, fence=5, run_id="run-2"))
    case = await fresh_pool.fetchrow("SELECT status, run_id, owner, write_fence, assignment FROM cases")
    assert (case["status"], case["run_id"], case["owner"], case["write_fence"]) == ("follow_through", "run-2", "a1", 5)
    assert case["assignment"] is not None


# -- the workflow side: answers in one workflow task, and replays to what was written ----------


@pytest.mark.integration
async def test_every_demo_case_replayed_from_its_history_matches_what_was_stored(dev_env, pool):
    """The six demo cases (one escalates live, one is joined through the door) on a worker, then each
    case's timeline queried through a worker with no cache, which replays the whole history: every
    event, times included, must equal its case_events row. The local writes are withdrawn for new
    executions (workflows/complaint.py, _withdrawn_patch): a new case schedules record_case_events
    and records no local-event-writes or local-opening marker."""
    import json
    import uuid
    from pathlib import Path

    from temporalio.api.enums.v1 import EventType
    from temporalio.worker import Replayer

    from activities.roster_store import load_roster
    from complaint_client import ComplaintClient
    from demo_cases import SCENARIOS
    from schemas import Roster
    from workflows.complaint import ComplaintWorkflow
    from workflows.problem_door import ProblemDoorWorkflow
    from worker import build_worker

    roster = Roster.model_validate(json.loads((Path(__file__).parents[1] / "roster" / "demo.json").read_text()))
    await load_roster(pool, roster)
    queue = f"local-writes-{uuid.uuid4().hex[:8]}"
    engine = ComplaintClient(dev_env.client, queue, read_your_writes=True)
    ids = [f"LW-{uuid.uuid4().hex[:8]}-{i}" for i in range(len(SCENARIOS))]
    async with build_worker(dev_env.client, pool, queue):
        outcomes = await asyncio.gather(*(s.run(engine, cid) for s, cid in zip(SCENARIOS, ids)))
        assert {o.outcome for o in outcomes} == {"resolved"}
    async with build_worker(dev_env.client, pool, queue, max_cached_workflows=0):
        for cid in ids:
            replayed = await engine.timeline(cid)
            stored = await pool.fetch(
                "SELECT seq, at, kind, actor, channel, data FROM case_events WHERE complaint_id = $1 ORDER BY seq", cid
            )
            assert [dict(r) for r in stored] == [
                {"seq": e.seq, "at": e.at, "kind": e.kind, "actor": e.actor, "channel": e.channel,
                 "data": e.model_dump(mode="json")["data"]}
                for e in replayed
            ], cid
    replayer = Replayer(workflows=[ComplaintWorkflow, ProblemDoorWorkflow], data_converter=dev_env.client.data_converter)
    for cid in ids:
        history = await engine.handle(cid).fetch_history()
        markers = [
            str(e.marker_recorded_event_attributes.details)
            for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        ]
        assert not any("local-event-writes" in m or "local-opening" in m for m in markers), cid
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        assert "record_case_events" in scheduled and "open_case" in scheduled
        assert (await replayer.replay_workflow(history)).replay_failure is None
