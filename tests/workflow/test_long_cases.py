"""Long-lived cases: continue-as-new carries a bounded timeline and request-id memory, and nothing is lost.

The pure rules of what a run carries, then one case of 5,000 notes across
several runs on the time-skipping server with a real worker and PostgreSQL:
its complete timeline (PostgreSQL, the typed client, `starter.py show`), its
deadlines, an open promise escalating on time afterwards, and the size of
every run's history and continue-as-new payload.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta
from typing import AsyncIterator

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType

from activities.case_activities import CaseActivities
from complaint_client import ComplaintClient, IncompleteTimeline, join_timeline, stored_events
from schemas.activity_io import RecordCaseEvents
from schemas.state import CarriedCase, ContinuedCase
from tests.conftest import running_worker
from tests.support.pg_fixtures import ON_ONE_SERVER
from tests.support.case import accepted_case, action, later
from tests.support.intake import OWNER, ROSTER, new_intake
from tests.support.replay import replayer
from workflows.case import CARRIED_TAIL_BYTES, CARRIED_TAIL_EVENTS, REQUEST_ID_MEMORY, Case
from workflows.complaint import MAX_ACTIONS_PER_RUN
from workflows.pacing import FLUSH_MAX_BYTES, FLUSH_MAX_EVENTS

# --- the pure rules ------------------------------------------------------------------


def noted_case(notes: int, text: str = "note") -> Case:
    case = accepted_case()
    for number in range(notes):
        case.apply("add_note", action("add_note", text=f"{text} {number}"), later(number))
    return case


def test_a_continued_run_carries_a_bounded_tail_and_continues_the_seq():
    case = noted_case(1_000)
    total = case.event_count
    carried = case.carry(persisted_seq=total, runs=1)
    assert len(carried.timeline) == CARRIED_TAIL_EVENTS
    assert carried.timeline_offset == total - CARRIED_TAIL_EVENTS
    assert [e.seq for e in carried.timeline] == list(range(carried.timeline_offset + 1, total + 1))

    resumed = Case.resume(ContinuedCase(continued_case=carried).continued_case)
    assert resumed.event_count == total == resumed.state.event_count
    events = resumed.apply("add_note", action("add_note", text="next run"), later(2_000))
    assert [e.seq for e in events] == [total + 1]
    assert resumed.events_after(total) == events
    with pytest.raises(ValueError):
        resumed.events_after(carried.timeline_offset - 1)  # those are in PostgreSQL only


def test_events_not_yet_written_are_always_carried():
    case = noted_case(400)
    written = 10
    carried = case.carry(persisted_seq=written, runs=1)
    # Every unwritten event (well over the tail's bound), after the written ones (all 10 fit the tail).
    assert [e.seq for e in carried.timeline] == list(range(1, case.event_count + 1))
    assert carried.timeline_offset == 0


def test_the_carried_tail_is_bounded_in_bytes_too():
    case = noted_case(150, text="x" * 9_000)
    carried = case.carry(persisted_seq=case.event_count, runs=1)
    size = sum(len(e.model_dump_json()) for e in carried.timeline)
    assert 0 < len(carried.timeline) < 150 and size <= CARRIED_TAIL_BYTES
    assert len(carried.model_dump_json()) < 512 * 1024


def test_request_id_memory_keeps_the_most_recent_ids():
    case = accepted_case()
    for number in range(REQUEST_ID_MEMORY + 5):
        case.apply("add_note", action("add_note", text=f"n{number}", request_id=f"r{number}"), later(number))
    assert len(case.applied_requests) == REQUEST_ID_MEMORY
    assert "r0" not in case.applied_requests and f"r{REQUEST_ID_MEMORY + 4}" in case.applied_requests

    resumed = Case.resume(case.carry(case.event_count, 1))
    assert list(resumed.applied_requests) == list(case.applied_requests)  # oldest first, order kept
    count = resumed.event_count
    assert resumed.apply("add_note", action("add_note", text="n10", request_id="r10"), later(9_000)) == []
    assert resumed.event_count == count
    # Older than the memory: applied again (the documented limit).
    assert resumed.apply("add_note", action("add_note", text="n0", request_id="r0"), later(9_001))


def test_a_payload_carried_before_the_bound_still_resumes():
    """Runs continued by the earlier engine carried every event (no offset) and sorted request ids."""
    case = noted_case(30)
    case.apply("add_note", action("add_note", text="with id", request_id="b-id"), later(40))
    legacy = case.carry(case.event_count, 1).model_dump(mode="json")
    legacy["timeline"] = [e.model_dump(mode="json") for e in case.timeline]
    del legacy["timeline_offset"]
    resumed = Case.resume(CarriedCase.model_validate(legacy))
    assert resumed.timeline_offset == 0 and resumed.event_count == case.event_count
    assert resumed.apply("add_note", action("add_note", text="with id", request_id="b-id"), later(50)) == []
    assert [e.seq for e in resumed.apply("add_note", action("add_note", text="more"), later(51))] == [case.event_count + 1]


def test_join_timeline_refuses_a_gap():
    case = noted_case(5)
    events = case.timeline
    assert join_timeline("C-1", events[:3], events[3:]) == events
    with pytest.raises(IncompleteTimeline, match="no event 3"):
        join_timeline("C-1", events[:2], events[3:])


# --- 5,000 notes across runs ---------------------------------------------------------------

NOTES = 5_000
UPDATE_EVERY = 250  # one note in each 250 is an update with a request_id; the rest are signals
# Temporal's limits per run: history warns at 10,240 events / 10 MB (fails at 51,200 / 50 MB); payloads 2 MB.
HISTORY_EVENTS_WARN = 10_240
HISTORY_BYTES_WARN = 10 * 1024 * 1024
CARRIED_PAYLOAD_BOUND = 512 * 1024


@pytest.fixture
async def engine(clock_env, pool) -> AsyncIterator[ComplaintClient]:
    from activities.roster_store import load_roster

    await load_roster(pool, ROSTER)
    async with running_worker(clock_env.client, pool) as plain:
        client = ComplaintClient(plain.client, plain.task_queue, database=pool, read_your_writes=True)
        client.started = []  # type: ignore[attr-defined]
        yield client
        for workflow_id in client.started:  # type: ignore[attr-defined]
            try:
                await client.client.get_workflow_handle(workflow_id).terminate("test finished")
            except Exception:
                pass  # already closed


async def runs_of(client, workflow_id: str, first_run: str) -> list:
    """Each run's history, following the continue-as-new chain from the first run."""
    histories = []
    run_id = first_run
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return histories


@ON_ONE_SERVER
async def test_a_case_with_5000_notes_keeps_its_timeline_and_deadlines_across_runs(
    engine, clock_env, pool, database_url, capsys, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="temporalio.workflow")
    started = await engine.start(new_intake(severity="low"))
    cid, first_run = started.complaint_id, started.run_id
    workflow_id = f"complaint-{cid}"
    engine.started += [workflow_id, started.door_workflow_id]  # type: ignore[attr-defined]
    await engine.act(cid, "accept_ownership", {"actor": OWNER})
    due = (await clock_env.get_current_time()) + timedelta(days=1)
    before = await engine.act(
        cid, "make_promise", {"actor": OWNER, "description": "Refund the duplicate charge", "due_at": due.isoformat()}
    )
    deadlines_before = {clock.name: clock.due_at for clock in before.clocks}

    for chunk in range(0, NOTES, UPDATE_EVERY):
        await asyncio.gather(
            *(engine.send(cid, "add_note", {"actor": OWNER, "text": f"note {n}"}) for n in range(chunk, chunk + UPDATE_EVERY - 1))
        )
        last = chunk + UPDATE_EVERY - 1
        await engine.act(cid, "add_note", {"actor": OWNER, "text": f"note {last}", "request_id": f"note-{last}"})

    histories = await runs_of(engine.client, workflow_id, first_run)
    assert len(histories) >= NOTES // MAX_ACTIONS_PER_RUN, "the case continued as new every 1,000 actions"
    # A request_id applied in the first run is still remembered runs later: nothing changes.
    after = await engine.act(cid, "add_note", {"actor": OWNER, "text": f"note {UPDATE_EVERY - 1}", "request_id": f"note-{UPDATE_EVERY - 1}"})
    total = after.event_count

    # The complete timeline in PostgreSQL: every seq once, every note once.
    stored = await stored_events(pool, cid)
    assert [e.seq for e in stored] == list(range(1, total + 1))
    notes = [e.data["text"] for e in stored if e.kind == "note_added"]
    assert sorted(notes) == sorted(f"note {n}" for n in range(NOTES)) and len(notes) == NOTES
    assert await pool.fetchval("SELECT last_seq FROM cases WHERE complaint_id = $1", cid) == total

    # The workflow holds only the recent events; the typed client joins them to the stored ones.
    recent = await engine.recent_timeline(cid)
    assert 1 < recent[0].seq and recent[-1].seq == total and len(recent) < MAX_ACTIONS_PER_RUN + CARRIED_TAIL_EVENTS
    assert await engine.timeline(cid) == stored
    with pytest.raises(IncompleteTimeline):
        await ComplaintClient(engine.client, engine.task_queue).timeline(cid)

    # And the CLI's `show` reads the earlier events from DATABASE_URL.
    from tests.support.cli import run_cli

    monkeypatch.setenv("TEMPORAL_ADDRESS", engine.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", engine.client.namespace)
    monkeypatch.setenv("COMPLAINTS_TASK_QUEUE", engine.task_queue)
    monkeypatch.setenv("DATABASE_URL", database_url)
    status, out, err = await run_cli(capsys, "show", cid, "--json")
    assert status == 0, err
    assert [event["seq"] for event in json.loads(out)["timeline"]] == list(range(1, total + 1))

    # Every run's history stayed far below Temporal's limits, and so did what each run carried.
    for number, history in enumerate(histories, start=1):
        size = sum(event.ByteSize() for event in history.events)
        assert len(history.events) < HISTORY_EVENTS_WARN and size < HISTORY_BYTES_WARN, (number, len(history.events), size)
        if number > 1:
            carried = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
            assert len(carried.data) < CARRIED_PAYLOAD_BOUND, (number, len(carried.data))
            assert b'"timeline_offset"' in carried.data
    for history in histories[:2]:  # a run ending in continue-as-new, and one started from the bounded payload
        await replayer().replay_workflow(history)
    continued = [r for r in caplog.records if r.getMessage().startswith("continuing as new")]
    assert len(continued) >= len(histories) - 1

    # The deadlines crossed every run unchanged, and the open promise escalates on time.
    state = await engine.state(cid)
    assert {clock.name: clock.due_at for clock in state.clocks} == deadlines_before
    assert state.promises[0].status == "open" and state.promises[0].due_at == due
    await clock_env.sleep(due - await clock_env.get_current_time() + timedelta(minutes=5))
    timeline = await engine.timeline(cid)
    fired = [e for e in timeline if e.kind == "escalated" and e.data["clock"] == "promise:P1"]
    assert [(e.data["level"], e.data["due_at"]) for e in fired] == [
        (1, (due - timedelta(hours=1)).isoformat()),
        (2, due.isoformat()),
    ]
    for event in fired:
        assert timedelta(0) <= event.at - (due - timedelta(hours=1) if event.data["level"] == 1 else due) <= timedelta(seconds=5)
    assert [e.seq for e in timeline] == list(range(1, timeline[-1].seq + 1))
    overdue = await engine.state(cid)
    assert overdue.promises[0].status == "overdue" and overdue.escalation_level == 2


@ON_ONE_SERVER
async def test_a_burst_of_large_notes_during_a_write_is_written_in_bounded_batches(dev_env, pool):
    """600 notes of 9,000 characters arrive while one write hangs: about 5.5 MB of events, written
    in batches under FLUSH_MAX_BYTES (one activity input must stay under Temporal's 2 MB limit).

    On the dev server: the Java time-skipping server, busy, sometimes refuses a workflow task completed
    while such a burst arrives ("invalid history builder state for action") and the case stops there."""
    from activities.roster_store import load_roster
    from worker import build_worker

    holding, release = asyncio.Event(), asyncio.Event()
    batches: list[tuple[list[int], int]] = []

    class HeldWrite(CaseActivities):
        @activity.defn(name="record_case_events")
        async def record_case_events(self, inp: RecordCaseEvents) -> None:
            batches.append(([e.seq for e in inp.events], sum(len(e.model_dump_json()) for e in inp.events)))
            if any(e.data.get("text") == "hold the write" for e in inp.events):
                holding.set()
                await release.wait()
            await super().record_case_events(inp)

    await load_roster(pool, ROSTER)
    client = dev_env.client
    task_queue = f"complaints-burst-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, pool, task_queue, case_activities=HeldWrite(pool)):
        engine = ComplaintClient(client, task_queue, database=pool, read_your_writes=True)
        started = await engine.start_case(new_intake())
        cid = started.complaint_id
        try:
            await engine.act(cid, "accept_ownership", {"actor": OWNER})
            await engine.send(cid, "add_note", {"actor": OWNER, "text": "hold the write"})
            await asyncio.wait_for(holding.wait(), 10)
            for chunk in range(0, 600, 100):
                await asyncio.gather(
                    *(engine.send(cid, "add_note", {"actor": OWNER, "text": f"{n:04d} " + "x" * 9_000}) for n in range(chunk, chunk + 100))
                )
            release.set()
            state = await engine.act(cid, "add_note", {"actor": OWNER, "text": "after the burst"})
            # About 5.5 MB of signals: the server suggested continuing as new; the first run wrote the burst.
            history = await client.get_workflow_handle(f"complaint-{cid}", run_id=started.run_id).fetch_history()
        finally:
            release.set()
            await engine.handle(cid).terminate("test finished")

    burst = [(seqs, size) for seqs, size in batches if seqs and size > FLUSH_MAX_BYTES // 4]
    assert len(burst) >= 5, [(len(seqs), size) for seqs, size in batches]
    for seqs, size in batches:
        assert len(seqs) <= FLUSH_MAX_EVENTS and (size <= FLUSH_MAX_BYTES or len(seqs) == 1), (len(seqs), size)
    stored = await stored_events(pool, cid)
    assert [e.seq for e in stored] == list(range(1, state.event_count + 1))
    assert sum(1 for e in stored if e.kind == "note_added") == 602
    await replayer().replay_workflow(history)
