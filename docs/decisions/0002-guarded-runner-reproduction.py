"""The non-determinism the guarded runner prevents (decision 0002), in one small workflow.

    .venv/bin/python docs/decisions/0002-guarded-runner-reproduction.py            # the SDK's own runner
    .venv/bin/python docs/decisions/0002-guarded-runner-reproduction.py --guarded  # workflow_runner.GuardedWorkflowRunner

Add --history to print the recorded history. The workflow waits on an activity, then twice
waits for an update, starting a durable timer only when there is nothing to do yet (the
pattern our main loop had before decision 0004). The story, as the crash drill met it:

1. A worker runs the workflow's first task, scheduling the activity, and dies: here a raw
   client of the workflow service plays it, answering the task and asking for its next tasks
   on a sticky queue that nobody will poll. A fresh worker starts.
2. A query arrives. The server sends it to the dead worker's sticky queue first.
3. The activity completes: its workflow task, too, goes to the dead sticky queue. An update
   arrives and waits for that task.
4. The query's wait on the sticky queue ends first: the server sends it to the fresh worker
   as a legacy query carrying the whole history. The SDK replays it, runs the activity's
   result live (a catch-up, at the previous task's time) and keeps the instance in its
   cache. The workflow task comes after its own sticky wait, with the update alone: one
   activation for the result, another for the update.
5. A replay of the history runs the result and the update in one activation, update first.
   The first wait finds the update at once and starts no timer, so the timer ids are off by
   one: `[TMPRL1100] Nondeterminism error: Timer fired event did not have expected timer id 1, it was 2!`

Each step waits for a server timeout, not for luck, so the outcome is the same on every run.
Exit status 0 when the history replays, 1 when it does not (the expected outcome without --guarded).
The closest upstream reports: temporalio/sdk-rust issues 390 and 1606.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from google.protobuf.duration_pb2 import Duration
from temporalio.api.command.v1 import Command, ScheduleActivityTaskCommandAttributes
from temporalio.api.common.v1 import ActivityType
from temporalio.api.enums.v1 import CommandType, EventType, TaskQueueKind
from temporalio.api.taskqueue.v1 import StickyExecutionAttributes, TaskQueue
from temporalio.api.workflowservice.v1 import (
    PollActivityTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskCompletedRequest,
)
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

TASK_QUEUE = "guard-reproduction"
STICKY_QUEUE = "dead-worker-sticky"
# How long the server waits for the dead worker to take a task, or answer a query, on its sticky queue.
STICKY_WAIT_SECONDS = 5


@activity.defn
async def completed_from_outside() -> None:
    """Never runs: the dead worker takes its task, and the script completes it."""


@workflow.defn
class TimerPerWait:
    def __init__(self) -> None:
        self.pokes = 0

    @workflow.update
    def poke(self) -> int:
        self.pokes += 1
        return self.pokes

    @workflow.query
    def pokes_seen(self) -> int:
        return self.pokes

    @workflow.run
    async def run(self) -> int:
        await workflow.execute_activity(completed_from_outside, start_to_close_timeout=timedelta(minutes=5))
        seen = 0
        for _ in range(2):
            if self.pokes == seen:  # a wait, and its timer, only when there is nothing to do
                try:
                    await workflow.wait_condition(lambda: self.pokes != seen, timeout=timedelta(seconds=3))
                except asyncio.TimeoutError:
                    pass
            seen = self.pokes
        return seen


def runner(guarded: bool) -> WorkflowRunner:
    if not guarded:
        return SandboxedWorkflowRunner()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository
    from workflow_runner import GuardedWorkflowRunner

    return GuardedWorkflowRunner()


def worker(client: Client, guarded: bool) -> Worker:
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[TimerPerWait],
        activities=[completed_from_outside],
        workflow_runner=runner(guarded),
    )


async def run_the_first_task_and_die(client: Client, workflow_id: str) -> bytes:
    """Answer the first workflow task as the workflow would (schedule the activity), asking for the next
    ones on a sticky queue that nobody polls; take the activity's task. Returns its task token."""
    service, namespace = client.workflow_service, client.namespace
    task = await service.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace=namespace, task_queue=TaskQueue(name=TASK_QUEUE), identity="dead-worker")
    )
    assert task.workflow_execution.workflow_id == workflow_id
    await service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(
            namespace=namespace,
            task_token=task.task_token,
            identity="dead-worker",
            commands=[
                Command(
                    command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
                    schedule_activity_task_command_attributes=ScheduleActivityTaskCommandAttributes(
                        activity_id="1",  # the SDK numbers a workflow's activities from 1
                        activity_type=ActivityType(name="completed_from_outside"),
                        task_queue=TaskQueue(name=TASK_QUEUE),
                        start_to_close_timeout=Duration(seconds=300),
                    ),
                )
            ],
            sticky_attributes=StickyExecutionAttributes(
                worker_task_queue=TaskQueue(name=STICKY_QUEUE, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY),
                schedule_to_start_timeout=Duration(seconds=STICKY_WAIT_SECONDS),
            ),
        )
    )
    activity_task = await service.poll_activity_task_queue(
        PollActivityTaskQueueRequest(namespace=namespace, task_queue=TaskQueue(name=TASK_QUEUE), identity="dead-worker")
    )
    return activity_task.task_token


async def poll_the_sticky_queue(client: Client) -> None:
    """The dead worker's last poll: it takes the query the server sends to its sticky queue, and never answers."""
    response = await client.workflow_service.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=STICKY_QUEUE, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=TASK_QUEUE),
            identity="dead-worker",
        )
    )
    assert response.HasField("query"), "the dead worker's sticky queue got a workflow task, not the query"


async def reproduce(client: Client, guarded: bool) -> bool:
    workflow_id = f"reproduction-{uuid.uuid4().hex[:8]}"
    print(f"1. {workflow_id}: a worker runs its first task and dies")
    handle = await client.start_workflow(TimerPerWait.run, id=workflow_id, task_queue=TASK_QUEUE)
    token = await run_the_first_task_and_die(client, workflow_id)
    print("2. a fresh worker starts; it polls the task queue, where nothing waits yet")
    async with worker(client, guarded):
        print("3. a query arrives and reaches the dead worker's sticky queue; the activity completes; an update arrives")
        dead_poll = asyncio.create_task(poll_the_sticky_queue(client))
        await asyncio.sleep(0.5)  # the dead worker's poll is waiting before the query comes
        query = asyncio.create_task(handle.query(TimerPerWait.pokes_seen))
        await dead_poll
        await asyncio.sleep(STICKY_WAIT_SECONDS / 2)  # the query leaves the sticky queue well before the task does
        await client.get_async_activity_handle(task_token=token).complete()
        update = asyncio.create_task(handle.execute_update(TimerPerWait.poke))
        print(f"4. the query answers {await _outcome(query)}, the update {await _outcome(update)}")
        print(f"  the workflow returns {await handle.result()}")
    print("5. a replay of the history")
    history = await handle.fetch_history()
    if "--history" in sys.argv[1:]:
        for event in history.events:
            timer = event.timer_started_event_attributes.timer_id or event.timer_fired_event_attributes.timer_id
            kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
            print(f"  {event.event_id:3} {event.event_time.ToDatetime():%H:%M:%S.%f} {kind} {timer}")
    try:
        await Replayer(workflows=[TimerPerWait], workflow_runner=runner(guarded)).replay_workflow(history)
    except Exception as error:
        print(f"  does not replay: {error}")
        return False
    print("  replays")
    return True


async def _outcome(call: asyncio.Task) -> str:
    try:
        return repr(await call)
    except Exception as error:  # the guard refuses a catch-up: the query is answered by a real task, or fails
        return f"an error ({error})"


async def main() -> int:
    guarded = "--guarded" in sys.argv[1:]
    temporal = Path(sys.executable).parent / "temporal"  # the dev server of the temporalio test extras
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=str(temporal) if temporal.exists() else None)
    try:
        return 0 if await reproduce(env.client, guarded) else 1
    finally:
        await env.shutdown()


if __name__ == "__main__":
    status = asyncio.run(main())
    sys.stdout.flush()
    # The SDK's runtime threads can crash an interpreter that finalizes around them: exit without finalizing.
    os._exit(status)
