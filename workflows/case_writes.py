"""The case's copy in PostgreSQL, seen from the workflow: what is written, what a write has taken, and when
the next write is due (workflows/pacing.py holds the rules; record_case_events does the writing).

The case's main loop is the only writer, so its events reach PostgreSQL in timeline order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.activity_io import RecordCaseEvents
    from schemas.state import CaseState, TimelineEvent
    from workflows import pacing
    from workflows.activity_options import DB_RETRY, DB_TIMEOUT
    from workflows.case import Case


class CaseWrites:
    def __init__(self, persisted_seq: int = 0) -> None:
        # The last event in PostgreSQL, and the last handed to a write (the write in flight's end).
        self.persisted_seq = persisted_seq
        self.claimed_seq = persisted_seq
        # Until when the unwritten events may wait (None: write at once), the previous action's time,
        # and how many callers wait for writes (a paced case writes at once while anyone does).
        self.gather_until: datetime | None = None
        self.last_action_at: datetime | None = None
        self.awaited = 0

    def joins_pending_batch(self, case: Case) -> bool:
        """Whether events not yet handed to a write are waiting: an action now rides with them."""
        return case.event_count > self.claimed_seq

    def action_applied(self, now: datetime, joins_pending_batch: bool, closed: bool) -> None:
        self.gather_until = pacing.gather_until(
            applied_at=now,
            previous_action_at=self.last_action_at,
            joins_pending_batch=joins_pending_batch,
            pending_until=self.gather_until,
            closed=closed,
        )
        self.last_action_at = now

    def unwritten(self, case: Case) -> bool:
        return self.persisted_seq < case.event_count

    def due(self, case: Case, on_its_timer: bool, run_ending: Callable[[], bool]) -> bool:
        """Whether the unwritten events go now: always, unless a paced case is gathering a burst.

        A gathering's end is its alarm's to tell (on_its_timer: the gathering alarm rang): were a
        task that comes after the end but before the timer's firing to end the wait, the timer
        would be canceled after it fired, which the time-skipping test server cannot take
        (temporalio/sdk-java#3088), and the loop's commands would depend on the task's time.
        """
        if self.gather_until is None:
            return True
        return pacing.write_due(
            now=workflow.now() if on_its_timer else None,
            until=self.gather_until,
            writes_awaited=self.awaited > 0,
            closed=case.closed,
            run_ending=run_ending(),
        )

    def take_batch(self, case: Case) -> list[TimelineEvent]:
        """The next write's events (bounded: workflows/pacing.py); the gathering they ended is over."""
        batch = pacing.next_batch(case.events_after(self.persisted_seq))
        self.gather_until = None
        self.claimed_seq = batch[-1].seq
        return batch

    async def write(self, batch: list[TimelineEvent], state: CaseState) -> None:
        info = workflow.info()
        await workflow.execute_activity(
            "record_case_events",
            RecordCaseEvents(workflow_id=info.workflow_id, run_id=info.run_id, events=batch, state=state),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self.persisted_seq = batch[-1].seq

    async def wait_for(self, seq: int) -> int:
        """Once every event up to seq is written; the last seq written."""
        self.awaited += 1
        try:
            await workflow.wait_condition(lambda: self.persisted_seq >= seq)
        finally:
            self.awaited -= 1
        return self.persisted_seq
