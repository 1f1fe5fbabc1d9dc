"""A worker whose event writes a test can hold: the answer to an update comes while its write waits.

`held` (a fixture: import it into the test module) gives a plain client, a read-your-writes
client and the HeldWrites on a worker of the test's own, on the dev server and the workflow
tests' roster; `opened` starts and accepts a case and waits for its rows.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import AsyncIterator

import pytest
from temporalio import activity

from activities.case_activities import CaseActivities
from complaint_client import ComplaintClient
from schemas.activity_io import RecordCaseEvents
from tests.support.intake import OWNER, ROSTER, new_intake


class HeldWrites(CaseActivities):
    """record_case_events, held while `held` is clear; each batch's seqs are kept in `batches`."""

    def __init__(self, pool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(pool)
        self.open = asyncio.Event()
        self.open.set()
        self.batches: list[list[int]] = []
        self.waiting = 0

    @activity.defn(name="record_case_events")
    async def record_case_events(self, inp: RecordCaseEvents) -> None:
        if not self.open.is_set():
            self.waiting += 1
            try:
                await self.open.wait()
            finally:
                self.waiting -= 1
        self.batches.append([e.seq for e in inp.events])
        await super().record_case_events(inp)

    async def until_a_write_waits(self) -> None:
        while not self.waiting:
            await asyncio.sleep(0.02)


@pytest.fixture
async def held(dev_env, pool) -> AsyncIterator[tuple[ComplaintClient, ComplaintClient, HeldWrites]]:
    """A plain client, a read-your-writes client and the held writes, on a worker of the test's own."""
    from activities.roster_store import load_roster
    from worker import build_worker

    await load_roster(pool, ROSTER)
    writes = HeldWrites(pool)
    task_queue = f"answer-first-{uuid.uuid4().hex[:8]}"
    plain = ComplaintClient(dev_env.client, task_queue)
    async with build_worker(dev_env.client, pool, task_queue, case_activities=writes):
        yield plain, ComplaintClient(dev_env.client, task_queue, read_your_writes=True), writes
        writes.open.set()


async def stored_seqs(pool, complaint_id: str) -> list[int]:  # type: ignore[no-untyped-def]
    rows = await pool.fetch("SELECT seq FROM case_events WHERE complaint_id = $1 ORDER BY seq", complaint_id)
    return [r["seq"] for r in rows]


async def opened(engine: ComplaintClient) -> str:
    started = await engine.start_case(new_intake())
    await engine.act(started.complaint_id, "accept_ownership", {"actor": OWNER})
    await engine.wait_written(started.complaint_id)
    return started.complaint_id
