"""The worker's workflow runner: the SDK's sandbox, plus a guard that keeps every case replayable.

Why a guard. A query for a case that no worker has cached is sent to a worker as a
"legacy query task" carrying the case's whole history. When that history ends with
events no workflow task has delivered yet (a timer that fired, an activity that
completed, while the case's task waited on a worker that had died), the SDK
(temporalio 1.35.0's core) runs those events through the workflow as a *live*
activation, with the previous task's workflow.now(), before it answers the query,
and keeps the result in its cache. When the real workflow task arrives with an
update in it, the worker has already applied the events and gets the update on
its own; a replay of the recorded history gets both in one activation, in the
SDK's other order (updates first) and at the task's own time. The commands differ
(a timer started in the first and cancelled in the second uses a timer sequence
number the replay never uses), so the history no longer replays: the case is
stuck at its next cache eviction, worker restart or uncached query (TMPRL1100,
for ever). The crash drill saw it in 14 to 36 of 50 cases per run.

Such an activation is recognisable: it is not a replay, it carries jobs of the
history, and either its history is longer than the previous activation's at that
previous activation's time (no new workflow task started, so there is no new
time), or it is a new instance's first live activation and its time is that of a
task a killed worker began, seconds before this worker made the instance
(runs_a_dead_workers_task; the crash drills found this second kind,
docs/decisions/0004-timers-follow-instants.md). The guard fails it instead of
running it. The SDK then fails the query (the caller sees
`QUERY_DEFERRED_MESSAGE`, and `complaint_client` retries it) and drops the case
from its cache; the case's real workflow task replays the history and delivers
the new events and the update together, exactly as any later replay will.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

from codec.encryption import for_workers
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from schemas.errors import QUERY_DEFERRED_MESSAGE

log = structlog.get_logger("worker.runner")


# The temporalio release the guard's rules were verified on (the crash drill, make drill, and
# tests/workflow/test_job_order.py). Another release may compose activations otherwise: verify again, then move
# this and the pin in pyproject.toml together (docs/decisions/0002-guarded-runner.md).
VERIFIED_ON = "1.35.0"

# Jobs that neither change a case nor come from its history.
_BOOKKEEPING_JOBS = frozenset({"query_workflow", "remove_from_cache"})


def _runs_history(activation: WorkflowActivation) -> bool:
    """Whether the activation carries jobs of the case's history (not only queries or an eviction), at a time."""
    return activation.HasField("timestamp") and any(
        job.WhichOneof("variant") not in _BOOKKEEPING_JOBS for job in activation.jobs
    )


def runs_undelivered_events(
    activation: WorkflowActivation, previous: tuple[int, int] | None
) -> bool:
    """Whether `activation` runs history events ahead of their workflow task (a legacy query's catch-up).

    previous: (history length, time in ns) of the last activation this case's instance ran with jobs
    of its history, None if there was none.
    """
    if previous is None or activation.is_replaying or not _runs_history(activation):
        return False
    previous_length, previous_time = previous
    return activation.history_length > previous_length and activation.timestamp.ToNanoseconds() == previous_time


def replayer(data_converter: DataConverter, workflows: Sequence[type] | None = None) -> Replayer:
    """A Replayer that runs histories as the worker runs cases: through the guarded runner.

    Every test and drill that replays a history uses it, so a replay runs exactly the code a worker runs.
    """
    if workflows is None:
        from workflows import worker_workflows

        workflows = worker_workflows()
    return Replayer(workflows=workflows, data_converter=for_workers(data_converter), workflow_runner=GuardedWorkflowRunner())


# How much older than the instance a live task may be. A task is started by the worker that runs it,
# a moment before that worker makes the instance for it (milliseconds; more only for a worker far
# behind). A killed worker's task reaches another worker only after a death and a restart: seconds.
STALE_TASK_NS = 2_000_000_000


def runs_a_dead_workers_task(activation: WorkflowActivation, instance_made_ns: int, stale_ns: int = STALE_TASK_NS) -> bool:
    """Whether `activation`, an instance's first live one, runs history events at the time of a task that a
    worker which since died had begun: a legacy query's catch-up on the worker that replaced it.

    The query reaches the new worker while the dead worker's task is in flight or after it timed out;
    the SDK runs that task's events live, at its start, before answering (the crash drill's seeds
    15880575 and 15957724, docs/decisions/0004-timers-follow-instants.md). The instance was made
    for the query, seconds after the task began.
    """
    if activation.is_replaying or not _runs_history(activation):
        return False
    return instance_made_ns - activation.timestamp.ToNanoseconds() >= stale_ns


class GuardedWorkflowRunner(WorkflowRunner):
    """`inner` (the SDK's sandbox by default), with every instance guarded (see the module's docstring)."""

    def __init__(self, inner: WorkflowRunner | None = None) -> None:
        self._inner = inner or SandboxedWorkflowRunner()

    def prepare_workflow(self, defn: Any) -> None:
        self._inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _GuardedInstance(self._inner.create_instance(det))

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self._inner.set_worker_level_failure_exception_types(types)


class _GuardedInstance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance, *, made_ns: int | None = None) -> None:
        self._inner = inner
        self._previous: tuple[int, int] | None = None
        # When this worker made the instance (its clock), and whether a live task has run on it yet.
        self._made_ns = time.time_ns() if made_ns is None else made_ns
        self._ran_live = False

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        reason = None
        if runs_undelivered_events(act, self._previous):
            reason = "undelivered history events"
        elif not self._ran_live and runs_a_dead_workers_task(act, self._made_ns):
            reason = "a dead worker's task"
        if reason is not None:
            info = self._inner.get_info()
            log.warning(
                "query deferred",
                reason=reason,
                workflow_id=info.workflow_id,
                run_id=act.run_id,
                history_length=act.history_length,
                jobs=[job.WhichOneof("variant") for job in act.jobs],
            )
            return _failed(act.run_id, QUERY_DEFERRED_MESSAGE)
        if _runs_history(act):
            self._previous = (act.history_length, act.timestamp.ToNanoseconds())
            self._ran_live = self._ran_live or not act.is_replaying
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


def _failed(run_id: str, message: str) -> WorkflowActivationCompletion:
    completion = WorkflowActivationCompletion(run_id=run_id)
    completion.failed.failure.message = message
    completion.failed.failure.application_failure_info.SetInParent()
    return completion
