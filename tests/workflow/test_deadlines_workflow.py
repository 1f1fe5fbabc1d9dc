"""Deadlines on durable timers, walked on the time-skipping test server with real PostgreSQL.

Every instant is asserted on workflow time: an escalated event's `at` is the
moment the timer fired, its data.due_at the instant the level was due.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from temporalio import activity

from complaint_client import ComplaintClient
from schemas import TimelineEvent
from schemas.activity_io import RecordCaseEvents
from temporalio.testing import WorkflowEnvironment

from tests.conftest import running_worker
from tests.support.engine import end_cases
from tests.support.intake import OWNER, ROSTER, customer_of, new_intake

SUPERVISOR = "wf-sam"
MANAGER = "wf-mia"
# Timers fire on workflow time; the events are written by an activity that runs in real time.
FIRING_TOLERANCE = timedelta(seconds=2)


class TrackingClient(ComplaintClient):
    """The typed client, remembering each case it starts (and the problem door it went through) so the test can end them."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[str] = []
        self.doors: list[str] = []

    async def start(self, intake, **kwargs):  # type: ignore[override]
        result = await super().start(intake, **kwargs)
        self.started.append(result.complaint_id)
        if result.door_workflow_id is not None:
            self.doors.append(result.door_workflow_id)
        return result


@pytest.fixture
async def engine(clock_env, pool) -> AsyncIterator[TrackingClient]:
    from activities.roster_store import load_roster

    await load_roster(pool, ROSTER)
    async with running_worker(clock_env.client, pool) as plain:
        client = TrackingClient(plain.client, plain.task_queue, read_your_writes=plain.read_your_writes)
        yield client
        await end_cases(client, client.started, client.doors)


def intake(**overrides) -> dict:
    """test_workflow's intake, critical unless said otherwise: its clocks run in hours."""
    return new_intake(**{"severity": "critical", **overrides})


def escalations(timeline: list[TimelineEvent], clock: str | None = None) -> list[TimelineEvent]:
    return [e for e in timeline if e.kind == "escalated" and (clock is None or e.data["clock"] == clock)]


def fired_on_time(event: TimelineEvent, due: datetime) -> bool:
    return datetime.fromisoformat(event.data["due_at"]) == due and due <= event.at <= due + FIRING_TOLERANCE


async def notifications(pool, complaint_id: str) -> list[dict]:
    rows = await pool.fetch(
        "SELECT clock, level, occurrence, recipient, recipient_role, due_at, event_seq FROM notifications "
        "WHERE complaint_id = $1 ORDER BY event_seq",
        complaint_id,
    )
    return [dict(row) for row in rows]


async def test_a_critical_case_nobody_accepts_escalates_level_by_level(engine, clock_env, pool):
    started = await engine.start(intake())
    received = (await engine.state(started.complaint_id)).received_at

    await clock_env.sleep(timedelta(hours=1, minutes=40))
    timeline = await engine.timeline(started.complaint_id)
    acknowledge = escalations(timeline, "acknowledge")
    assert [(e.data["level"], e.data["recipient"]) for e in acknowledge] == [
        (1, OWNER),
        (2, SUPERVISOR),
        (3, MANAGER),
    ]
    # Standard, critical: acknowledge within 1 hour. 75% -> 45 min, the deadline, then half the clock again.
    for event, due in zip(acknowledge, (timedelta(minutes=45), timedelta(hours=1), timedelta(minutes=90))):
        assert fired_on_time(event, received + due), (event.at, event.data["due_at"])

    state = await engine.state(started.complaint_id)
    assert state.escalation_level == 3
    assert state.owner == OWNER and state.pending_owner == SUPERVISOR, "the owner stays accountable until the supervisor accepts"
    assert next(c for c in state.clocks if c.name == "acknowledge").breached

    rows = await notifications(pool, started.complaint_id)
    assert [(r["clock"], r["level"], r["recipient"], r["recipient_role"]) for r in rows if r["clock"] == "acknowledge"] == [
        ("acknowledge", 1, OWNER, "owner"),
        ("acknowledge", 2, SUPERVISOR, "supervisor"),
        ("acknowledge", 3, MANAGER, "manager"),
    ]
    assert len(rows) == len(escalations(timeline)), "one outbox row per escalation"
    case_row = await pool.fetchrow("SELECT escalation_level FROM cases WHERE complaint_id = $1", started.complaint_id)
    assert case_row["escalation_level"] == 3


async def test_a_cured_breach_clears_its_level(engine, clock_env, pool):
    started = await engine.start(intake())
    await clock_env.sleep(timedelta(hours=1, minutes=5))
    assert (await engine.state(started.complaint_id)).escalation_level == 2

    state = await engine.act(started.complaint_id, "accept_ownership", {"actor": OWNER})
    assert state.escalation_level == 0
    assert "acknowledge" not in [c.name for c in state.clocks]
    cleared = [e for e in await engine.timeline(started.complaint_id) if e.kind == "escalation_cleared"]
    assert [(e.data["clock"], e.data["level"]) for e in cleared] == [("acknowledge", 2)]
    row = await pool.fetchrow("SELECT escalation_level FROM cases WHERE complaint_id = $1", started.complaint_id)
    assert row["escalation_level"] == 0


async def test_clocks_pause_while_waiting_on_the_customer(engine, clock_env):
    started = await engine.start(intake())
    cid = started.complaint_id
    await engine.act(cid, "accept_ownership", {"actor": OWNER})
    before = {c.name: c.due_at for c in (await engine.state(cid)).clocks}
    await engine.act(cid, "request_info", {"actor": OWNER, "fields": ["card_last4"], "question": "Which card?"})
    await clock_env.sleep(timedelta(hours=3))
    waiting = await engine.state(cid)
    assert all(c.paused for c in waiting.clocks) and waiting.escalation_level == 0
    assert not escalations(await engine.timeline(cid)), "nothing escalates while the customer has the ball"

    state = await engine.act(cid, "provide_info", {"actor": customer_of(cid), "facts": {"card_last4": "4242"}, "channel": "chat"})
    resumed = [e for e in await engine.timeline(cid) if e.kind == "clocks_resumed"][-1]
    paused_for = resumed.data["paused_seconds"]["resolution"]
    assert 3 * 3600 <= paused_for <= 3 * 3600 + 60
    after = {c.name: c.due_at for c in state.clocks}
    moved = (after["resolution"] - before["resolution"]).total_seconds()
    assert moved == pytest.approx(paused_for, abs=0.01)
    assert not any(c.paused for c in state.clocks)


async def test_a_promise_escalates_and_kept_late_counts_as_late(engine, clock_env):
    started = await engine.start(intake(severity="low"))
    cid = started.complaint_id
    await engine.act(cid, "accept_ownership", {"actor": OWNER})
    await engine.act(cid, "contact_customer", {"actor": OWNER, "channel": "email", "summary": "Refund under way"})
    state = await engine.state(cid)
    due = state.received_at.replace(microsecond=0) + timedelta(hours=3)
    await engine.act(cid, "make_promise", {"actor": OWNER, "description": "Refund the duplicate charge", "due_at": due.isoformat()})

    await clock_env.sleep(timedelta(hours=3, minutes=10))
    timeline = await engine.timeline(cid)
    promise = escalations(timeline, "promise:P1")
    assert [e.data["level"] for e in promise] == [1, 2]
    assert fired_on_time(promise[0], due - timedelta(hours=1)) and fired_on_time(promise[1], due)
    overdue = [e for e in timeline if e.kind == "promise_overdue"]
    assert len(overdue) == 1 and (await engine.state(cid)).promises[0].status == "overdue"

    state = await engine.act(cid, "keep_promise", {"actor": OWNER, "promise_id": "P1", "evidence": "Refund ref R-1"})
    assert state.promises[0].kept_on_time is False
    await engine.act(cid, "propose_resolution", {"actor": OWNER, "resolution": "Refunded", "root_cause": "Gateway retry"})
    await engine.act(cid, "confirm_resolution", {"actor": customer_of(cid), "satisfied": True})
    with clock_env.auto_time_skipping_disabled():
        outcome = await engine.outcome(cid)
    assert (outcome.promises_kept, outcome.promises_kept_on_time, outcome.escalations) == (1, 0, 2)


async def test_an_unknown_policy_fails_the_intake_naming_the_known_ones(engine, clock_env):
    from temporalio.client import WorkflowFailureError

    started_intake = intake(policy="lenient")
    handle = await engine.client.start_workflow(
        "ComplaintWorkflow",
        started_intake,
        id=f"complaint-{started_intake['complaint_id']}",
        task_queue=engine.task_queue,
    )
    # Waiting on a result lets the test server skip time (by years, with nothing due): not here.
    with clock_env.auto_time_skipping_disabled(), pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    message = str(failure.value.cause)
    assert "lenient" in message and "standard" in message and "fca" in message


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    """Move the test server's clock forward to `moment` (timers due before it fire on the way)."""
    now = await env.get_current_time()
    assert moment > now, f"the test server is already at {now.isoformat()}"
    await env.sleep(moment - now)


def at(event: TimelineEvent) -> datetime:
    return datetime.fromisoformat(event.data["due_at"])


LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


# Fridays before a Monday bank holiday in England: (received 18:30, close of business day 3, acknowledge due).
# The test runs once per database on one server whose clock only moves forward, so each run takes the next.
FRIDAYS_BEFORE_A_BANK_HOLIDAY = [
    (datetime(2027, 5, 28, 18, 30, tzinfo=LONDON), datetime(2027, 6, 3, 17, 0, tzinfo=LONDON), datetime(2027, 6, 2, 9, 0, tzinfo=LONDON)),
    (datetime(2028, 5, 26, 18, 30, tzinfo=LONDON), datetime(2028, 6, 1, 17, 0, tzinfo=LONDON), datetime(2028, 5, 31, 9, 0, tzinfo=LONDON)),
    (datetime(2028, 8, 25, 18, 30, tzinfo=LONDON), datetime(2028, 8, 31, 17, 0, tzinfo=LONDON), datetime(2028, 8, 30, 9, 0, tzinfo=LONDON)),
    # Christmas: Monday 25 and Tuesday 26 December 2028 are both bank holidays.
    (datetime(2028, 12, 22, 18, 30, tzinfo=LONDON), datetime(2028, 12, 29, 17, 0, tzinfo=LONDON), datetime(2028, 12, 28, 9, 0, tzinfo=LONDON)),
]


async def test_fca_case_received_on_a_friday_evening_before_a_bank_holiday(engine, clock_env):
    """DISP 1.5: summary resolution by the close of the third business day; DISP 1.6: 8 weeks.

    E.g. Friday 28 May 2027, 18:30 in London; Monday 31 May is the Spring bank
    holiday, so business days 1-3 are Tuesday to Thursday.
    """
    now = await clock_env.get_current_time()
    upcoming = [friday for friday in FRIDAYS_BEFORE_A_BANK_HOLIDAY if friday[0] > now]
    assert upcoming, f"the test server's clock ({now.isoformat()}) is past every Friday listed"
    received, summary_by, acknowledge_due = upcoming[0]
    await skip_to(clock_env, received)
    slow = await engine.start(intake(policy="fca", severity="medium", received_at=received.isoformat()))
    quick = await engine.start(intake(policy="fca", severity="medium", received_at=received.isoformat()))
    state = await engine.state(slow.complaint_id)
    assert state.policy == "fca"
    assert state.summary_resolution_by == summary_by
    due = {c.name: c.due_at for c in state.clocks}
    # Acknowledge within 1 business day: from Tuesday 09:00 (the first working moment) to Wednesday 09:00.
    assert due["acknowledge"] == acknowledge_due
    assert due["resolution"] == received + timedelta(weeks=8)
    for case in (slow, quick):
        await engine.act(case.complaint_id, "accept_ownership", {"actor": OWNER})
        await engine.act(case.complaint_id, "contact_customer", {"actor": OWNER, "channel": "letter", "summary": "Written acknowledgement"})

    # The quick case is resolved to the customer's satisfaction on Thursday afternoon.
    await skip_to(clock_env, summary_by - timedelta(hours=2))
    await engine.act(quick.complaint_id, "propose_resolution", {"actor": OWNER, "resolution": "Fee refunded", "root_cause": "Fee applied twice"})
    state = await engine.act(quick.complaint_id, "confirm_resolution", {"actor": customer_of(quick.complaint_id), "satisfied": True})
    # DISP 1.5.4R: it closes once its summary resolution communication is sent (here by post).
    assert state.status == "follow_through" and "letter=summary_resolution" in (state.closing_awaits or "")
    await engine.act(quick.complaint_id, "contact_customer", {"actor": OWNER, "channel": "letter", "summary": "Glad it is sorted", "letter": "summary_resolution"})
    closed = [e for e in await engine.timeline(quick.complaint_id) if e.kind == "case_closed"]
    assert closed and closed[0].data["summary_resolution"] is True

    # The slow one: warnings at weeks 6 and 7, the breach at week 8, all from receipt.
    await skip_to(clock_env, received + timedelta(weeks=8, minutes=1))
    resolution = escalations(await engine.timeline(slow.complaint_id), "resolution")
    assert [(e.data["level"], e.data["recipient"]) for e in resolution] == [(1, OWNER), (2, SUPERVISOR), (3, MANAGER)]
    for event, weeks in zip(resolution, (6, 7, 8)):
        assert fired_on_time(event, received + timedelta(weeks=weeks)), (event.at, event.data["due_at"])
    state = await engine.state(slow.complaint_id)
    assert next(c for c in state.clocks if c.name == "resolution").breached
    await engine.act(slow.complaint_id, "propose_resolution", {"actor": OWNER, "resolution": "Final response", "root_cause": "Fee applied twice"})
    await engine.act(slow.complaint_id, "confirm_resolution", {"actor": customer_of(slow.complaint_id), "satisfied": True})
    await engine.act(slow.complaint_id, "contact_customer", {"actor": OWNER, "channel": "letter", "summary": "Our final response", "letter": "final_response"})
    closed = [e for e in await engine.timeline(slow.complaint_id) if e.kind == "case_closed"]
    assert closed and closed[0].data["summary_resolution"] is False


async def test_cfpb_case_crossing_day_15_and_day_60(engine, clock_env):
    """CFPB: a response within 15 calendar days (an in-progress contact counts), a final one within 60."""
    started = await engine.start(intake(policy="cfpb", severity="high"))
    cid = started.complaint_id
    await engine.act(cid, "accept_ownership", {"actor": OWNER})
    received = (await engine.state(cid)).received_at.astimezone(NEW_YORK)
    day = lambda n: received + timedelta(days=n)  # wall-clock days in New York  # noqa: E731

    await skip_to(clock_env, day(15) + timedelta(minutes=1))
    first_response = escalations(await engine.timeline(cid), "first_response")
    assert [e.data["level"] for e in first_response] == [1, 2]
    assert fired_on_time(first_response[1], day(15))
    assert (await engine.state(cid)).escalation_level == 2

    state = await engine.act(cid, "contact_customer", {"actor": OWNER, "channel": "email", "summary": "In progress: we are reviewing your statement"})
    assert "first_response" not in [c.name for c in state.clocks]
    cleared = [e for e in await engine.timeline(cid) if e.kind == "escalation_cleared"]
    assert [(e.data["clock"], e.data["level"]) for e in cleared] == [("first_response", 2)]

    await skip_to(clock_env, day(60) + timedelta(minutes=1))
    resolution = escalations(await engine.timeline(cid), "resolution")
    assert [e.data["level"] for e in resolution] == [1, 2]
    # Level 1 at 75% of the clock's elapsed time: 45 days, plus 45 minutes if the 60 days gain a DST hour.
    level_1 = received + (day(60) - received) * 0.75
    assert fired_on_time(resolution[0], level_1) and fired_on_time(resolution[1], day(60))
    state = await engine.act(cid, "propose_resolution", {"actor": OWNER, "resolution": "Fee reversed", "root_cause": "Misapplied late fee"})
    assert "resolution" not in [c.name for c in state.clocks]


async def test_each_escalation_notifies_once_across_a_worker_crash(dev_env, pool):
    """The first worker commits an escalation's rows, then dies before reporting back.

    On the dev server, in real time, with the demo policy (seconds) and a
    complaint received 29 s ago: levels 1 and 2 of the acknowledge clock are
    due at once, level 3 a second later. Temporal retries the write on a fresh
    worker after its 10 s timeout: the outbox still has one row per (case,
    clock, level, occurrence), and level 3 fires normally.
    """
    from activities import CaseActivities
    from activities.roster_store import load_roster
    from worker import build_worker

    await load_roster(pool, ROSTER)
    committed = asyncio.Event()

    class DiesAfterCommitting(CaseActivities):
        @activity.defn(name="record_case_events")
        async def record_case_events(self, inp: RecordCaseEvents) -> None:
            await super().record_case_events(inp)
            if any(event.kind == "escalated" for event in inp.events):
                committed.set()
                await asyncio.Event().wait()  # hangs like a killed process: no completion is reported

    client = dev_env.client
    task_queue = f"complaints-crash-{uuid.uuid4().hex[:8]}"
    engine = ComplaintClient(client, task_queue, read_your_writes=True)
    received = datetime.now(timezone.utc) - timedelta(seconds=29)
    async with build_worker(client, pool, task_queue, case_activities=DiesAfterCommitting(pool), graceful_shutdown=timedelta(0)):
        started = await engine.start(intake(policy="demo", received_at=received.isoformat()))
        cid = started.complaint_id
        await asyncio.wait_for(committed.wait(), timeout=30)
        # Stopped mid-escalation: the rows are committed, the activity never reports back.
    first_rows = await notifications(pool, cid)
    # Due at once: acknowledge levels 1 and 2 (15 s and 20 s) and first_response level 1 (22.5 s).
    assert [(r["clock"], r["level"]) for r in first_rows] == [("acknowledge", 1), ("acknowledge", 2), ("first_response", 1)]

    async with build_worker(client, pool, task_queue):
        async def level_3_written():
            rows = await notifications(pool, cid)
            return any(r["clock"] == "acknowledge" and r["level"] == 3 for r in rows)

        deadline = asyncio.get_running_loop().time() + 60
        while not await level_3_written():
            assert asyncio.get_running_loop().time() < deadline, "level 3 was never written"
            await asyncio.sleep(0.2)
        timeline = await engine.timeline(cid)
        await client.get_workflow_handle(f"complaint-{cid}").terminate("test finished")

    rows = await notifications(pool, cid)
    keys = [(r["clock"], r["level"], r["occurrence"]) for r in rows]
    assert len(keys) == len(set(keys)), "no escalation notified twice"
    assert [(r["clock"], r["level"]) for r in rows if r["clock"] == "acknowledge"] == [
        ("acknowledge", 1),
        ("acknowledge", 2),
        ("acknowledge", 3),
    ]
    assert sorted(r["event_seq"] for r in rows) == [e.seq for e in escalations(timeline)]
    stored = await pool.fetchval("SELECT count(*) FROM case_events WHERE complaint_id = $1", cid)
    assert stored == len(timeline), "every event written once"
