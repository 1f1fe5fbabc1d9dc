"""A workflow task's commands do not depend on how its jobs reach the workflow (issue 17).

The crash drill's seed 15880575 left a case no worker could replay. Its restarted worker had run
one task's jobs in two activations: an activity's result first (a query's catch-up, at the time of
the task the killed worker had begun), then the task's update; a replay runs both in one, at the
task's time. The main loop then started a timer per wait, so the timer it started after the result
alone, and the update cancelled, took a timer id no replay ever used (TMPRL1100). The history, the
split that reproduced it and the diagnosis are in docs/decisions/0004-timers-follow-instants.md.

Now the case's timers follow its instants (workflows/alarm.py), and clocks fire and gatherings end
on their own timers' events, not on a task's time. These tests record cases on a real worker and
dev server whose tasks carry an activity's result and an update together, deliver those tasks in
one activation and in two, live and on replay, and compare the commands.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.worker import Replayer, WorkflowRunner

from tests.support.pg_fixtures import ON_ONE_SERVER
from tests.support.activations import DeliveredInTwo, Recording, TaskRecord
from tests.support.intake import OWNER, ROSTER
from tests.support.writes import HeldWrites, opened
from workflow_runner import GuardedWorkflowRunner
from workflows.complaint import ComplaintWorkflow
from workflows.problem_door import ProblemDoorWorkflow


def _in_a_day() -> str:
    return (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()


async def replay(history: WorkflowHistory, in_two: dict[str, Any] | None = None) -> tuple[Exception | None, list[TaskRecord]]:
    """Replay on the guarded runner, noting each activation it runs; in_two: DeliveredInTwo's options."""
    recording = Recording(GuardedWorkflowRunner())
    runner: WorkflowRunner = recording if in_two is None else DeliveredInTwo(recording, **in_two)
    replayer = Replayer(
        workflows=[ComplaintWorkflow, ProblemDoorWorkflow], data_converter=pydantic_data_converter, workflow_runner=runner
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure, recording.tasks


def mixed_tasks(tasks: list[TaskRecord]) -> list[int]:
    """The history lengths of the tasks that carried both an update and a job of the history."""
    return [at for at, jobs, _ in tasks if "do_update" in jobs and any(j != "do_update" for j in jobs)]


def commands_at(tasks: list[TaskRecord], length: int) -> list[str]:
    return [command for at, _, commands in tasks if at == length for command in commands]


async def a_task_with_a_result_and_an_update(dev_env, pool, runner: WorkflowRunner) -> WorkflowHistory:  # type: ignore[no-untyped-def]
    """Record a case one of whose tasks carries both an activity's result and an update.

    Activities and workflows poll in two workers. While a write (the activity) is held, the
    workflow side stops; the update is admitted and the write completes with no workflow worker
    polling, so both wait in one task, which a new workflow worker on `runner` then takes.
    """
    from activities.roster_store import load_roster
    from complaint_client import ComplaintClient
    from worker import build_worker

    await load_roster(pool, ROSTER)
    client = dev_env.client
    task_queue = f"job-order-{uuid.uuid4().hex[:8]}"
    engine = ComplaintClient(client, task_queue)
    writes = HeldWrites(pool)
    async with build_worker(client, pool, task_queue, case_activities=writes, workflows=False):
        async with build_worker(client, pool, task_queue, activities=False, workflow_runner=runner):
            cid = await opened(engine)
            promise = {"actor": OWNER, "description": "Call back with the refund date", "due_at": _in_a_day()}
            await engine.act(cid, "make_promise", promise)
            await engine.wait_written(cid)
            writes.open.clear()
            await engine.act(cid, "add_note", {"actor": OWNER, "text": "Waiting on the bank"})
            await writes.until_a_write_waits()
        handle = engine.handle(cid)
        update_id = f"{cid}:keep"
        kept = {"actor": OWNER, "promise_id": "P1", "evidence": "Called back with the date"}
        keeping = asyncio.create_task(handle.execute_update("keep_promise", kept, id=update_id))
        await until_admitted(client, handle.id, update_id)
        writes.open.set()
        while (await handle.describe()).raw_description.pending_activities:
            await asyncio.sleep(0.05)
        async with build_worker(client, pool, task_queue, activities=False, workflow_runner=runner):
            await asyncio.wait_for(keeping, 30)
            # A burst, so that a timer (the burst's gathering) fires after the task: a replay that numbered
            # the task's timers otherwise than the live run would find another timer id at that event.
            await engine.act(cid, "add_note", {"actor": OWNER, "text": "Customer thanked us"})
            last = await engine.act(cid, "add_note", {"actor": OWNER, "text": "Closing notes to follow"})
            await until_stored(pool, cid, last.event_count)
            history = await handle.fetch_history()
            await handle.terminate("test finished")
    return history


async def until_stored(pool, complaint_id: str, seq: int) -> None:  # type: ignore[no-untyped-def]
    """Wait for the gathering to end on its own timer (a waiter would cut it short) and write seq."""
    for _ in range(300):
        stored = await pool.fetchval("SELECT max(seq) FROM case_events WHERE complaint_id = $1", complaint_id)
        if stored is not None and stored >= seq:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"seq {seq} of {complaint_id} never reached case_events")


async def until_admitted(client, workflow_id: str, update_id: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until the server holds the update (no worker has it yet)."""
    request = PollWorkflowExecutionUpdateRequest(
        namespace=client.namespace,
        update_ref=UpdateRef(workflow_execution=WorkflowExecution(workflow_id=workflow_id), update_id=update_id),
        wait_policy=WaitPolicy(
            lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
        ),
    )
    for _ in range(300):
        try:
            await client.workflow_service.poll_workflow_execution_update(request)
            return
        except RPCError:
            await asyncio.sleep(0.05)  # not known to the server yet
    raise AssertionError(f"update {update_id} was never admitted")


@ON_ONE_SERVER
async def test_a_task_run_as_a_catch_up_and_an_update_leaves_a_history_that_replays(dev_env, pool):
    """What the drill's restarted worker did, on today's code: the history replays as one activation.

    The worker runs the task with keep_promise as the drill's did: the write's result alone first, at
    an earlier time, then the update. With a timer per wait this history failed its replay at the
    burst's timer (TMPRL1100, a timer id off by one), as the drill's did.
    """
    live = Recording(DeliveredInTwo(GuardedWorkflowRunner(), updates={"keep_promise"}, catch_up_midway=True))
    history = await a_task_with_a_result_and_an_update(dev_env, pool, live)
    assert mixed_tasks(live.tasks), "no task carried both the write's result and keep_promise"
    assert any("fire_timer" in jobs for _, jobs, _ in live.tasks), "no timer fired after the task"
    failure, _ = await replay(history)
    assert failure is None, failure


@ON_ONE_SERVER
async def test_one_activation_or_two_give_a_task_the_same_commands(dev_env, pool):
    """The same jobs, as one activation, as two, and as two with the first at an earlier time."""
    history = await a_task_with_a_result_and_an_update(dev_env, pool, GuardedWorkflowRunner())
    deliveries: dict[str, dict[str, Any] | None] = {
        "one": None,
        "two": {"updates": {"keep_promise"}},
        "catch-up": {"updates": {"keep_promise"}, "catch_up_midway": True},
    }
    replayed = {}
    for name, in_two in deliveries.items():
        failure, tasks = await replay(history, in_two)
        assert failure is None, (name, failure)
        replayed[name] = tasks
    # The keep_promise task: two activations at one history length when delivered in two.
    lengths = [at for at, _, _ in replayed["two"]]
    split = [at for at in mixed_tasks(replayed["one"]) if lengths.count(at) == 2]
    assert split, "no task carried both the write's result and keep_promise"
    commands = commands_at(replayed["one"], split[0])
    assert "cancel_timer" in commands  # keeping the promise moved the clock instant
    assert commands_at(replayed["two"], split[0]) == commands
    assert commands_at(replayed["catch-up"], split[0]) == commands
