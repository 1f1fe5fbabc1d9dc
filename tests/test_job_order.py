"""One workflow task, delivered as one activation or as two, gives the same commands (issue 17).

A worker with no cached state gets a task that carries both history events (an activity's result)
and an update from core as two activations: the events, then the update. A warm worker and a
replay get them as one, update first. The workflow reacts to what it sees after each activation,
so the two deliveries can give different commands: in the crash drill's history, a timer started
after the activity's result and cancelled by the update used a timer id that a replay never used
(TMPRL1100), and the case could never be replayed again. The guarded runner (workflow_runner.py)
runs every task history first, updates second, so all three deliveries run alike.

Shown here on the drill's own history (tests/fixtures/evidence), and on a real worker and dev
server, where the test stops the workflow side so that an activity's result and an update meet
in one task for a worker that starts cold.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import PollWorkflowTaskQueueRequest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from codec import make_data_converter
from codec.keys import load_key_file
from tests.support.activations import DeliveredInTwo, Recording
from tests.test_answer_before_write import HeldWrites, opened
from tests.test_workflow import OWNER, ROSTER
from workflow_runner import GuardedWorkflowRunner
from workflows.complaint import ComplaintWorkflow
from workflows.problem_door import ProblemDoorWorkflow

EVIDENCE = Path(__file__).parent / "fixtures" / "evidence"
DRILL_HISTORY = EVIDENCE / "crash_drill_seed_15880575.json"
DRILL_KEYS = EVIDENCE / "crash_drill_seed_15880575.keys"
# The task the drill's restarted worker ran in two activations: an activity's result and keep_promise.
SPLIT_TASK_LENGTH = 106
# When the killed worker's task began (event 103); the catch-up ran the activity's result at this time.
DEAD_TASK_STARTED = datetime(2026, 12, 7, 5, 41, 40, 216980, tzinfo=timezone.utc)


def _in_a_day() -> str:
    return (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()


def drill_history() -> WorkflowHistory:
    return WorkflowHistory.from_json("complaint-DRILL-054010-b46f-020", json.loads(DRILL_HISTORY.read_text()))


async def replay(history: WorkflowHistory, runner, converter=pydantic_data_converter):  # type: ignore[no-untyped-def]
    recording = Recording(runner)
    replayer = Replayer(
        workflows=[ComplaintWorkflow, ProblemDoorWorkflow], data_converter=converter, workflow_runner=recording
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure, recording.tasks


def commands_at(tasks, length: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [command for at, _, commands in tasks if at == length for command in commands]


async def test_the_drill_history_does_not_replay_on_the_sdk_sandbox_as_it_ships():
    """The reproduction: the recorded history against a replay that runs the split task as one activation."""
    converter = make_data_converter(load_key_file(DRILL_KEYS, create=False))
    failure, _ = await replay(drill_history(), SandboxedWorkflowRunner(), converter)
    assert failure is not None
    assert "Timer fired event did not have expected timer id 4, it was 5" in str(failure)


async def test_the_drill_history_replays_when_its_split_task_is_delivered_in_two():
    """The diagnosis: delivered as the restarted worker got it, the same code replays the history, and the
    task's commands differ from the one-activation delivery by exactly the timer started and cancelled."""
    converter = make_data_converter(load_key_file(DRILL_KEYS, create=False))
    failure, in_two = await replay(
        drill_history(), DeliveredInTwo(SandboxedWorkflowRunner(), at={SPLIT_TASK_LENGTH}, history_jobs_at=DEAD_TASK_STARTED), converter
    )
    assert failure is None, failure
    _, as_one = await replay(drill_history(), SandboxedWorkflowRunner(), converter)
    assert commands_at(as_one, SPLIT_TASK_LENGTH) == [
        "update_response", "update_response", "upsert_workflow_search_attributes", "schedule_activity"
    ]
    assert commands_at(in_two, SPLIT_TASK_LENGTH) == [
        "start_timer", "update_response", "update_response", "cancel_timer",
        "upsert_workflow_search_attributes", "schedule_activity",
    ]  # fmt: skip
