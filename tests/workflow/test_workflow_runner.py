"""The worker's guarded runner (workflow_runner.py) and the client's patience with deferred queries.

A restarted worker answering a query for a case it has not cached used to run the
events that no workflow task had delivered yet (a fired timer, a completed
activity) as a live activation, so that the case's history stopped replaying
(README, "Crash drills"). The guard refuses such an activation; the query fails
with QUERY_DEFERRED_MESSAGE and ComplaintClient asks again. The crash drill
(tests/system/test_crash_drills.py, strict: every history must replay) is where the whole
story runs; here are the guard's rule and instance, on activations built by hand,
and the client's patience with a deferred query, through a real worker.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from temporalio import workflow
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker, WorkflowInstance

from complaint_client import ComplaintClient
from schemas.errors import QUERY_DEFERRED_MESSAGE
from tests.support.paths import REPO
from workflow_runner import VERIFIED_ON, _GuardedInstance, runs_a_dead_workers_task, runs_undelivered_events
from workflows.start_input import workflow_id_for

SECOND = 1_000_000_000
T0 = 1_790_000_000 * SECOND  # an activation's time, ns


def activation(jobs: list[str], *, length: int, at: int | None, replaying: bool = False) -> WorkflowActivation:
    act = WorkflowActivation(run_id="run-1", is_replaying=replaying, history_length=length)
    if at is not None:
        act.timestamp.FromNanoseconds(at)
    for job in jobs:
        getattr(act.jobs.add(), job).SetInParent()
    return act


# --- the rule ---------------------------------------------------------------------------


def test_a_live_activation_with_new_events_at_the_previous_time_is_a_catch_up():
    # The drill's case: a replay to history length 103, then the events up to 107 (a fired timer and
    # the task scheduled for it, no task started) run live at the time of the task that ended at 103.
    assert runs_undelivered_events(activation(["fire_timer"], length=107, at=T0), (103, T0))
    assert runs_undelivered_events(activation(["resolve_activity"], length=100, at=T0), (94, T0))
    assert runs_undelivered_events(activation(["signal_workflow", "fire_timer"], length=110, at=T0), (103, T0))


def test_a_new_workflow_task_has_a_time_of_its_own():
    assert not runs_undelivered_events(activation(["fire_timer"], length=110, at=T0 + 15 * SECOND), (103, T0))
    assert not runs_undelivered_events(activation(["do_update"], length=110, at=T0 + 1), (103, T0))


def test_replays_first_activations_and_more_of_the_same_task_are_not_catch_ups():
    assert not runs_undelivered_events(activation(["fire_timer"], length=107, at=T0, replaying=True), (103, T0))
    assert not runs_undelivered_events(activation(["initialize_workflow"], length=3, at=T0), None)
    # A second activation within one workflow task (same length, same time): a local activity resolved.
    assert not runs_undelivered_events(activation(["resolve_activity"], length=103, at=T0), (103, T0))


def test_queries_and_evictions_are_never_refused():
    assert not runs_undelivered_events(activation(["query_workflow"], length=107, at=T0), (103, T0))
    assert not runs_undelivered_events(activation(["remove_from_cache"], length=107, at=None), (103, T0))


def test_a_new_instance_s_first_live_task_begun_seconds_before_it_is_a_dead_worker_s():
    # The drill's seed 15957724: a killed worker began the task at T0; the restarted worker made an
    # instance for a query 5.9 s later and would have run the task's fired timer live, at T0.
    assert runs_a_dead_workers_task(activation(["fire_timer"], length=150, at=T0), T0 + 5_900_000_000)
    # Seed 15880575: the query came after the task's timeout.
    assert runs_a_dead_workers_task(activation(["resolve_activity"], length=103, at=T0), T0 + 10 * SECOND)


def test_a_task_this_worker_just_began_is_its_own_and_replays_and_queries_are_never_refused():
    assert not runs_a_dead_workers_task(activation(["resolve_activity"], length=103, at=T0), T0 + SECOND // 10)
    assert not runs_a_dead_workers_task(activation(["initialize_workflow"], length=3, at=T0), T0 + SECOND)
    stale = T0 + 60 * SECOND
    assert not runs_a_dead_workers_task(activation(["fire_timer"], length=103, at=T0, replaying=True), stale)
    assert not runs_a_dead_workers_task(activation(["query_workflow"], length=103, at=T0), stale)
    assert not runs_a_dead_workers_task(activation(["remove_from_cache"], length=103, at=None), stale)


def test_the_sdk_is_the_release_the_guard_was_verified_on():
    """An upgrade must be made knowingly: the guard reads how this release composes activations."""
    import temporalio

    assert temporalio.__version__ == VERIFIED_ON, (
        f"temporalio {temporalio.__version__} is installed; the guard was verified on {VERIFIED_ON}: run "
        "`make drill SEEDS=20` and tests/workflow/test_job_order.py on it, then update VERIFIED_ON and the pin together"
    )
    pinned = re.search(r'"temporalio==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned and pinned[1] == VERIFIED_ON


def test_the_activation_still_carries_what_the_guard_reads():
    fields = {f.name for f in WorkflowActivation.DESCRIPTOR.fields}
    assert {"is_replaying", "history_length", "timestamp", "jobs", "run_id"} <= fields
    kinds = {f.name for f in WorkflowActivation().jobs.add().DESCRIPTOR.oneofs_by_name["variant"].fields}
    assert {"query_workflow", "remove_from_cache", "do_update", "resolve_activity", "fire_timer"} <= kinds


# --- the guarded instance ---------------------------------------------------------------


class RecordingInstance(WorkflowInstance):
    """Stands in for the sandboxed workflow: records what it is given, answers with no commands."""

    def __init__(self) -> None:
        self.given: list[list[str]] = []

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        self.given.append([job.WhichOneof("variant") for job in act.jobs])
        completion = WorkflowActivationCompletion(run_id=act.run_id)
        completion.successful.SetInParent()
        return completion

    def get_info(self) -> Any:
        return type("Info", (), {"workflow_id": "complaint-C-1"})()

    def get_serialization_context(self, command_info: Any) -> Any:
        return None

    def get_external_store_context(self, command_info: Any) -> Any:
        return None


def test_the_guard_fails_the_catch_up_and_lets_the_real_task_through():
    inner = RecordingInstance()
    guarded = _GuardedInstance(inner, made_ns=T0 + 15 * SECOND)
    replayed = guarded.activate(activation(["fire_timer"], length=103, at=T0, replaying=True))
    assert replayed.HasField("successful")
    caught_up = guarded.activate(activation(["fire_timer"], length=107, at=T0))
    assert caught_up.HasField("failed") and caught_up.failed.failure.message == QUERY_DEFERRED_MESSAGE
    # The workflow never saw the refused events; the real task (an update with them) runs.
    task = guarded.activate(activation(["do_update", "fire_timer"], length=110, at=T0 + 15 * SECOND))
    assert task.HasField("successful")
    assert inner.given == [["fire_timer"], ["do_update", "fire_timer"]]


def test_the_guard_fails_a_dead_worker_s_task_on_a_new_instance_and_lets_the_real_task_through():
    inner = RecordingInstance()
    guarded = _GuardedInstance(inner, made_ns=T0 + 6 * SECOND)  # made for a query, 6 s after the task began
    guarded.activate(activation(["resolve_activity"], length=146, at=T0 - 15 * SECOND, replaying=True))
    caught_up = guarded.activate(activation(["fire_timer"], length=150, at=T0))
    assert caught_up.HasField("failed") and caught_up.failed.failure.message == QUERY_DEFERRED_MESSAGE
    assert inner.given == [["resolve_activity"]]  # the workflow never saw the refused events
    # The real task comes to a new instance, made as this worker began the task.
    fresh = RecordingInstance()
    real = _GuardedInstance(fresh, made_ns=T0 + 11 * SECOND)
    real.activate(activation(["resolve_activity"], length=146, at=T0 - 15 * SECOND, replaying=True))
    task = real.activate(activation(["do_update", "fire_timer"], length=153, at=T0 + 11 * SECOND - SECOND // 20))
    assert task.HasField("successful")
    # Later tasks of a cached instance are never judged by the instance's age.
    later = real.activate(activation(["fire_timer"], length=160, at=T0 + 11 * SECOND))
    assert later.HasField("successful") and fresh.given[-1] == ["fire_timer"]


def test_a_query_between_tasks_does_not_move_the_guards_reference():
    inner = RecordingInstance()
    guarded = _GuardedInstance(inner)
    guarded.activate(activation(["fire_timer"], length=103, at=T0, replaying=True))
    guarded.activate(activation(["query_workflow"], length=107, at=T0 + 5 * SECOND, replaying=True))
    assert guarded.activate(activation(["fire_timer"], length=107, at=T0)).HasField("failed")


# --- the client's patience, through a real worker ----------------------------------------

# Queries each probe has answered or refused, by workflow id (queries are never replayed, so a count
# outside the workflow is safe here).
_ASKED: dict[str, int] = {}


@workflow.defn(sandboxed=False)
class QueryProbe:
    """Refuses its first `deferrals` queries with the worker's deferral message, as a guarded worker
    does after a restart; `broken` always fails with another message."""

    @workflow.run
    async def run(self, deferrals: int) -> None:
        self.deferrals = deferrals
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def state(self) -> dict:
        asked = _ASKED[workflow.info().workflow_id] = _ASKED.get(workflow.info().workflow_id, 0) + 1
        if asked <= self.deferrals:
            raise ApplicationError(QUERY_DEFERRED_MESSAGE)
        return {"answered_on": asked}

    @workflow.query
    def broken(self) -> dict:
        _ASKED[workflow.info().workflow_id] = _ASKED.get(workflow.info().workflow_id, 0) + 1
        raise ApplicationError("this query is broken")


@pytest.mark.integration
async def test_the_client_asks_a_deferred_query_again(dev_env):
    task_queue = f"query-probe-{uuid.uuid4().hex[:8]}"
    engine = ComplaintClient(dev_env.client, task_queue)
    async with Worker(dev_env.client, task_queue=task_queue, workflows=[QueryProbe]):
        patient = f"PROBE-{uuid.uuid4().hex[:6]}"
        await dev_env.client.start_workflow(QueryProbe.run, 2, id=workflow_id_for(patient), task_queue=task_queue)
        # Refused twice, answered the third time: the caller only sees the answer.
        assert await engine._query(patient, "state", dict) == {"answered_on": 3}

        # Asked directly, the refusal reaches the caller with its message.
        direct = f"PROBE-{uuid.uuid4().hex[:6]}"
        handle = await dev_env.client.start_workflow(QueryProbe.run, 1, id=workflow_id_for(direct), task_queue=task_queue)
        with pytest.raises(WorkflowQueryFailedError, match="query deferred"):
            await handle.query(QueryProbe.state)
        assert await handle.query(QueryProbe.state) == {"answered_on": 2}

        # Any other failed query is not asked again.
        with pytest.raises(WorkflowQueryFailedError, match="broken"):
            await engine._query(direct, "broken", dict)
        assert _ASKED[handle.id] == 3
        for complaint_id in (patient, direct):
            await engine.handle(complaint_id).terminate("test finished")
