"""Paced writes on a real worker and dev server (workflows/pacing.py).

An action after a quiet spell is written at once; actions in a burst are gathered
for GATHER_FOR into one write; a caller waiting for its writes cuts the gathering
short. Each history is read for what the workflow did (timers, writes, markers)
and replayed.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.support.intake import OWNER
from tests.support.writes import held, opened, stored_seqs  # noqa: F401  (held is a fixture)
from workflow_runner import replayer as workflow_replayer
from workflows.pacing import BURST_GAP, GATHER_FOR


async def until_stored(pool, complaint_id: str, seq: int) -> list[int]:  # type: ignore[no-untyped-def]
    for _ in range(200):
        seqs = await stored_seqs(pool, complaint_id)
        if seqs and seqs[-1] >= seq:
            return seqs
        await asyncio.sleep(0.05)
    raise AssertionError(f"seq {seq} of {complaint_id} never reached case_events")


def gather_timers(events: list[HistoryEvent]) -> dict[int, str]:
    """The gathering timers of a history (GATHER_FOR long) by started event id, with how each ended."""
    timers: dict[int, str] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            if event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() <= GATHER_FOR:
                timers[event.event_id] = "pending"
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            started = event.timer_fired_event_attributes.started_event_id
            if started in timers:
                timers[started] = "fired"
        elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            started = event.timer_canceled_event_attributes.started_event_id
            if started in timers:
                timers[started] = "canceled"
    return timers


def patch_ids(events: list[HistoryEvent]) -> list[str]:
    """The ids of the workflow.patched markers (core's marker details: {"id", "deprecated"})."""
    return [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]


async def replays(engine, complaint_id: str) -> None:  # type: ignore[no-untyped-def]
    history = await engine.handle(complaint_id).fetch_history()
    replayer = workflow_replayer(pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_a_quiet_action_is_written_at_once_and_a_burst_in_one_write_after_a_moment(held, pool):  # noqa: F811
    engine, _, writes = held
    cid = await opened(engine)
    await asyncio.sleep(BURST_GAP.total_seconds() + 0.2)

    quiet = await engine.act(cid, "add_note", {"actor": OWNER, "text": "Checked the courier's tracking page"})
    await until_stored(pool, cid, quiet.event_count)
    history = await engine.handle(cid).fetch_history()
    assert gather_timers(list(history.events)) == {}, "a quiet action started a gathering timer"
    assert writes.batches[-1] == [quiet.event_count]

    burst = [
        await engine.act(cid, "add_note", {"actor": OWNER, "text": "Courier confirms the parcel was misrouted"}),
        await engine.act(cid, "contact_customer", {"actor": OWNER, "channel": "email", "summary": "Told them why"}),
        await engine.act(cid, "add_note", {"actor": OWNER, "text": "Reship booked for tomorrow morning"}),
    ]
    seqs = [state.event_count for state in burst]
    assert seqs == [quiet.event_count + 1, quiet.event_count + 2, quiet.event_count + 3]
    await until_stored(pool, cid, seqs[-1])
    assert await stored_seqs(pool, cid) == list(range(1, seqs[-1] + 1))
    burst_batches = [b for b in writes.batches if set(b) & set(seqs)]
    # One write for the burst; a second only if the machine took longer than GATHER_FOR for three updates.
    assert burst_batches[0][0] == seqs[0] and len(burst_batches[0]) >= 2, writes.batches
    events = list((await engine.handle(cid).fetch_history()).events)
    assert list(gather_timers(events).values())[:1] == ["fired"], gather_timers(events)
    # Before the first release the workflow has one code path: no patch marker, no TemporalChangeVersion upsert.
    assert patch_ids(events) == []
    await replays(engine, cid)
    await engine.handle(cid).terminate("test finished")


async def test_a_caller_waiting_for_its_writes_cuts_the_gathering_short(held, pool):  # noqa: F811
    engine, reading, _ = held
    cid = await opened(engine)
    # Right behind accept_ownership: a burst, so its write would wait for GATHER_FOR ...
    noted = await engine.act(cid, "add_note", {"actor": OWNER, "text": "Customer sent photos of the damage"})
    # ... but a caller waiting for it makes it due at once: the gathering timer is canceled, never fired.
    await engine.wait_written(cid)
    assert (await stored_seqs(pool, cid))[-1] == noted.event_count
    events = list((await engine.handle(cid).fetch_history()).events)
    assert "canceled" in gather_timers(events).values(), gather_timers(events)
    assert "fired" not in gather_timers(events).values(), gather_timers(events)
    # A read-your-writes client's actions never wait for a burst either.
    state = await reading.act(cid, "add_note", {"actor": OWNER, "text": "Photos forwarded to the courier"})
    assert (await stored_seqs(pool, cid))[-1] == state.event_count
    await replays(engine, cid)
    await engine.handle(cid).terminate("test finished")


def test_gathering_is_shorter_than_a_burst_gap():
    # A burst's write waits at most GATHER_FOR; were it longer than BURST_GAP, a case acting every
    # BURST_GAP would never be written between its actions.
    assert timedelta(0) < GATHER_FOR < BURST_GAP
