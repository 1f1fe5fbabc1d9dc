"""The baseline of the lifecycle benchmark: a bare Temporal workflow that takes updates.

BareLifecycle is started like a case (one start, its own workflow id) and
receives updates named `act`; each runs one activity, `bare_lifecycle_noop`,
which does nothing, and returns a small dict once the activity is back: the
least a Temporal update with one activity round trip can cost. It also takes
`note` signals (each appended to an in-memory list, like a timeline) and
answers two queries, `state` (a small dict) and `timeline` (the list), the
baseline of the manager-query benchmark. Like a closed case in its feedback
window, it never ends by itself.

The activity has the same timeout and retry policy as the engine's database
activities (workflows/complaint.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

WORKFLOW_TYPE = "BenchBareLifecycle"
UPDATE_NAME = "act"
SIGNAL_NAME = "note"

_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
_TIMEOUT = timedelta(seconds=10)


@workflow.defn(name=WORKFLOW_TYPE)
class BareLifecycle:
    def __init__(self) -> None:
        self._actions = 0
        self._events: list[dict[str, Any]] = []

    @workflow.run
    async def run(self, intake: dict[str, Any]) -> None:
        self._events.append({"seq": 1, "at": workflow.now().isoformat(), "kind": "started", "data": {}})
        await workflow.wait_condition(lambda: False)

    @workflow.update(name=UPDATE_NAME)
    async def act(self, action: dict[str, Any]) -> dict[str, Any]:
        await workflow.execute_activity(
            "bare_lifecycle_noop", start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY
        )
        self._actions += 1
        return {"actions": self._actions}

    @workflow.signal(name=SIGNAL_NAME)
    def note(self, note: dict[str, Any]) -> None:
        self._events.append(
            {"seq": len(self._events) + 1, "at": workflow.now().isoformat(), "kind": "note_added", "data": note}
        )

    @workflow.query(name="state")
    def state(self) -> dict[str, Any]:
        return {"actions": self._actions, "event_count": len(self._events)}

    @workflow.query(name="timeline")
    def timeline(self) -> list[dict[str, Any]]:
        return self._events


@activity.defn(name="bare_lifecycle_noop")
async def bare_lifecycle_noop() -> None:
    """Nothing: the activity round trip is what the baseline measures."""


def bare_lifecycle_activities() -> list[Callable[..., Any]]:
    return [bare_lifecycle_noop]
