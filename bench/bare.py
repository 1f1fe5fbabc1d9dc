"""The baseline of the escalation benchmark: a bare Temporal workflow doing the least an escalation can.

SleepThenNoop sleeps on one durable timer until an absolute instant (its
input), then runs one activity, `bare_noop`, which inserts one row into
`bench_bare_escalations` in the application's PostgreSQL. The row's
`created_at` is `clock_timestamp()` at the insert, exactly like the
`notifications` row the engine writes for an escalation, so
`created_at - due_at` is comparable between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

BARE_TABLE = "bench_bare_escalations"

CREATE_BARE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {BARE_TABLE} (
    run_id      text NOT NULL,
    workflow_id text NOT NULL,
    due_at      timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, workflow_id)
)
"""

# The same retry and timeout as the engine's database activities (workflows/complaint.py).
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
_TIMEOUT = timedelta(seconds=10)


@dataclass
class BareInput:
    run_id: str
    due_at: datetime


@dataclass
class BareRecord:
    run_id: str
    workflow_id: str
    due_at: datetime


@workflow.defn(name="BenchSleepThenNoop")
class SleepThenNoop:
    @workflow.run
    async def run(self, inp: BareInput) -> None:
        remaining = (inp.due_at - workflow.now()).total_seconds()
        if remaining > 0:
            # As the engine does: a timer never shorter than Temporal's 1 ms resolution.
            await workflow.sleep(max(remaining, 0.001))
        await workflow.execute_activity(
            "bare_noop",
            BareRecord(run_id=inp.run_id, workflow_id=workflow.info().workflow_id, due_at=inp.due_at),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )


class BareActivities:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def all(self) -> list[Callable[..., Any]]:
        return [self.bare_noop]

    @activity.defn(name="bare_noop")
    async def bare_noop(self, rec: BareRecord) -> None:
        """Record that the instant was reached: one row, created_at = clock_timestamp()."""
        await self.pool.execute(
            f"INSERT INTO {BARE_TABLE} (run_id, workflow_id, due_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            rec.run_id,
            rec.workflow_id,
            rec.due_at,
        )
