"""Builders for the case-event webhook tests: a subscription served by the test's receiver, a case's
events recorded for real (record_case_events wakes the feeds), and the order the receiver saw them in."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, AsyncIterator

from activities import CaseActivities
from activities.case_feed_starter import CaseFeedStarter
from activities.delivery_starter import DeliveryStarter
from activities.subscriptions_store import add_subscription, remove_subscription
from schemas.activity_io import RecordCaseEvents
from schemas.case_feed import Subscription
from schemas.state import TimelineEvent
from tests.support.activity_io import T0, run
from tests.support.activity_io import state as case_state


@asynccontextmanager
async def subscribed(pool: Any, receiver: Any, path: str, *types: str) -> AsyncIterator[Subscription]:
    """A subscription of the receiver's `path` to these types, whose secret the receiver checks; removed
    at the end (the tests share one database)."""
    name = f"sub-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        subscription, secrets = await add_subscription(conn, name, receiver.url(path), sorted(types), "tests")
    receiver.endpoint(path).secrets = secrets
    try:
        yield subscription
    finally:
        await remove_subscription(pool, name)


def event(seq: int, kind: str, actor: str = "a1", **data: Any) -> TimelineEvent:
    return TimelineEvent(seq=seq, at=T0 + timedelta(minutes=seq), kind=kind, actor=actor, data=data)  # type: ignore[arg-type]


async def record(client: Any, pool: Any, task_queue: str, complaint_id: str, events: list[TimelineEvent]) -> None:
    """Write the batch as the case would: record_case_events, which wakes the feeds that want it."""
    acts = CaseActivities(pool, DeliveryStarter(client, task_queue), CaseFeedStarter(client, task_queue))
    last = max(e.seq for e in events)
    await run(acts.record_case_events, RecordCaseEvents(
        workflow_id=f"complaint-{complaint_id}", run_id="run-1", events=events,
        state=case_state(last, complaint_id=complaint_id),
    ))  # fmt: skip


def seqs_by_case(requests: list[Any]) -> dict[str, list[tuple[int, int]]]:
    """(seq, status answered) of every request, per case, in the order they arrived."""
    seen: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for request in requests:
        data = (request.body or {}).get("data", {})
        seen[data["complaint_id"]].append((data["seq"], request.answered))
    return dict(seen)


def assert_in_case_order(requests: list[Any]) -> None:
    """No request for a case's event before the case's earlier event was answered 2xx."""
    for complaint_id, tries in seqs_by_case(requests).items():
        for (seq, answered), (next_seq, _) in zip(tries, tries[1:]):
            if next_seq != seq:
                assert next_seq > seq and 200 <= answered < 300, f"{complaint_id} out of order: {tries}"


async def cursor_of(pool: Any, subscription_id: int, complaint_id: str, stopped: bool = False, seq: int = 0,
                    timeout: float = 30.0) -> Any:
    """The feed's cursor row once it is at `seq` or later (and, with stopped, once the feed stopped): a receiver
    has the event a moment before its delivery is recorded."""
    deadline = time.monotonic() + timeout
    while True:
        row = await pool.fetchrow(
            "SELECT last_seq, stopped_seq, stopped_error FROM subscription_cursors WHERE subscription_id = $1 AND complaint_id = $2",
            subscription_id, complaint_id,
        )  # fmt: skip
        if row is not None and row["last_seq"] >= seq and (not stopped or row["stopped_seq"] is not None):
            return row
        if time.monotonic() > deadline:
            raise TimeoutError(f"feed {subscription_id}/{complaint_id}: {dict(row) if row else 'no cursor'} after {timeout} s")
        await asyncio.sleep(0.05)
