"""An update answers once its action is applied; its events reach PostgreSQL in the case's next write.

On the dev server, with a real worker whose event write the test can hold:
the answer comes while the write waits, the actions taken meanwhile go into
one write, `wait_for_writes` (ComplaintClient.wait_written, read_your_writes)
answers only once the rows are there, and nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio

import pytest

from complaint_client import CommandRejected, IncompleteTimeline
from tests.support.intake import OWNER
from tests.support.writes import held, opened, stored_seqs  # noqa: F401  (held is a fixture)


async def test_an_update_answers_while_its_write_waits_and_the_rows_follow(held, pool):
    engine, _, writes = held
    cid = await opened(engine)
    written = await stored_seqs(pool, cid)
    writes.open.clear()
    try:
        first = await engine.act(cid, "add_note", {"actor": OWNER, "text": "Customer called back, calmer now"})
        await writes.until_a_write_waits()
        # Answered with the note applied, its event not yet in PostgreSQL.
        assert first.event_count == written[-1] + 1
        assert await stored_seqs(pool, cid) == written
        # Two more actions while the write waits: answered at once too.
        second = await engine.act(cid, "add_note", {"actor": OWNER, "text": "Refund reference RF-1 sent"})
        third = await engine.act(cid, "contact_customer", {"actor": OWNER, "channel": "phone", "summary": "Explained the refund"})
        assert (second.event_count, third.event_count) == (first.event_count + 1, first.event_count + 2)
        assert await stored_seqs(pool, cid) == written
        waiting = asyncio.create_task(engine.wait_written(cid))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "wait_written answered before the rows were written"
    finally:
        writes.open.set()
    await asyncio.wait_for(waiting, 10)
    assert await stored_seqs(pool, cid) == list(range(1, third.event_count + 1))
    # The held write carried the first note; the two actions taken meanwhile went into one write after it.
    assert writes.batches[-2:] == [[first.event_count], [second.event_count, third.event_count]], writes.batches
    timeline = await engine.timeline(cid)
    assert [e.seq for e in timeline] == list(range(1, third.event_count + 1))
    await engine.handle(cid).terminate("test finished")


async def test_read_your_writes_returns_only_once_the_rows_are_there(held, pool):
    plain, reading, writes = held
    cid = await opened(plain)
    writes.open.clear()
    acting = asyncio.create_task(reading.act(cid, "add_note", {"actor": OWNER, "text": "Escalated to billing ops"}))
    try:
        await writes.until_a_write_waits()
        await asyncio.sleep(0.5)
        assert not acting.done(), "a read-your-writes act answered before its write"
    finally:
        writes.open.set()
    state = await asyncio.wait_for(acting, 10)
    assert (await stored_seqs(pool, cid))[-1] == state.event_count
    await plain.handle(cid).terminate("test finished")


async def test_wait_for_writes_refuses_a_seq_the_case_does_not_have(held):
    engine, _, _ = held
    cid = await opened(engine)
    state = await engine.state(cid)
    with pytest.raises(CommandRejected) as caught:
        await engine.wait_written(cid, state.event_count + 5)
    assert caught.value.kind == "InvalidCommand"
    assert f"between 0 and the case's last event, {state.event_count}" in str(caught.value)
    await engine.wait_written(cid, 1)  # long written: answers at once
    await engine.handle(cid).terminate("test finished")


@pytest.mark.parametrize("seq", ["three", 2.5, True, [1], {"seq": 1}])
async def test_wait_for_writes_refuses_a_seq_that_is_not_a_whole_number(held, seq):
    """Issue 14.5: such a payload was a RuntimeError from the SDK's converter; it is an invalid command."""
    from temporalio.client import WorkflowUpdateFailedError

    engine, _, _ = held
    cid = await opened(engine)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await engine.handle(cid).execute_update("wait_for_writes", seq)
    cause = caught.value.cause
    assert getattr(cause, "type", None) == "InvalidCommand", cause
    assert "seq must be a whole number" in str(cause)
    await engine.wait_written(cid, 1)  # the case goes on
    assert (await engine.act(cid, "add_note", {"actor": OWNER, "text": "Still here"})).event_count > 1
    await engine.handle(cid).terminate("test finished")


async def test_waiting_on_a_terminated_case_says_its_writes_may_be_missing(held):
    engine, _, _ = held
    cid = await opened(engine)
    await engine.handle(cid).terminate("test: an operator ended it")
    with pytest.raises(IncompleteTimeline) as caught:
        await engine.wait_written(cid)
    assert "its workflow is terminated" in str(caught.value)
