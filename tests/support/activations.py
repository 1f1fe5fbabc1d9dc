"""Runners for replay tests: one that hands a task's jobs over in two activations, one that notes each task."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

# (history length, the jobs' kinds, sorted; the commands' kinds, in order) of one activation.
TaskRecord = tuple[int, list[str], list[str]]


def split_updates(activation: WorkflowActivation) -> tuple[WorkflowActivation, WorkflowActivation] | None:
    """The activation as two, its history's jobs and then its updates; None when it does not carry both."""
    updates = [job for job in activation.jobs if job.HasField("do_update")]
    if not updates or len(updates) == len(activation.jobs):
        return None
    history = [job for job in activation.jobs if not job.HasField("do_update")]
    return _with_jobs(activation, history), _with_jobs(activation, updates)


def _with_jobs(activation: WorkflowActivation, jobs: list[Any]) -> WorkflowActivation:
    part = WorkflowActivation()
    part.CopyFrom(activation)
    del part.jobs[:]
    part.jobs.extend(jobs)
    return part


def join_completions(first: WorkflowActivationCompletion, second: WorkflowActivationCompletion) -> WorkflowActivationCompletion:
    """One completion with both activations' commands, in order, as core sends one task's commands."""
    if not first.HasField("successful"):
        return first
    if not second.HasField("successful"):
        return second
    joined = WorkflowActivationCompletion()
    joined.CopyFrom(first)
    joined.successful.commands.extend(second.successful.commands)
    flags = set(first.successful.used_internal_flags)
    joined.successful.used_internal_flags.extend(f for f in second.successful.used_internal_flags if f not in flags)
    return joined


class _Wrapping(WorkflowRunner):
    def __init__(self, inner: WorkflowRunner | None = None) -> None:
        self.inner = inner or SandboxedWorkflowRunner()

    def prepare_workflow(self, defn: Any) -> None:
        self.inner.prepare_workflow(defn)

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class _WrappedInstance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance) -> None:
        self.inner = inner

    def get_serialization_context(self, command_info: Any) -> Any:
        return self.inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self.inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()


class DeliveredInTwo(_Wrapping):
    """`inner`, handed a task's history jobs and then its updates as two activations (as the crash drill's
    restarted worker ran one task), the two completions sent back as one.

    updates: only the tasks that carry an update of these names; None, every task that carries both.
    catch_up_at: the time the history jobs run at (None: the task's own). A query's catch-up runs
    them at the time of a task a killed worker began; catch_up_midway runs them halfway between the
    previous activation's time and the task's.
    """

    def __init__(
        self,
        inner: WorkflowRunner | None = None,
        *,
        updates: set[str] | None = None,
        catch_up_at: datetime | None = None,
        catch_up_midway: bool = False,
    ) -> None:
        super().__init__(inner)
        self.updates = updates
        self.catch_up_at = catch_up_at
        self.catch_up_midway = catch_up_midway

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _InTwo(self.inner.create_instance(det), self)


class _InTwo(_WrappedInstance):
    def __init__(self, inner: WorkflowInstance, how: DeliveredInTwo) -> None:
        super().__init__(inner)
        self.how = how
        self.previous_ns: int | None = None

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        previous_ns = self.previous_ns
        if act.HasField("timestamp"):
            self.previous_ns = act.timestamp.ToNanoseconds()
        parts = split_updates(act)
        if parts is not None and self.how.updates is not None:
            names = {job.do_update.name for job in parts[1].jobs}
            parts = parts if names & self.how.updates else None
        if parts is None:
            return self.inner.activate(act)
        history, updates = parts
        if self.how.catch_up_at is not None:
            history.timestamp.FromDatetime(self.how.catch_up_at)
        elif self.how.catch_up_midway and previous_ns is not None:
            history.timestamp.FromNanoseconds((previous_ns + act.timestamp.ToNanoseconds()) // 2)
        return join_completions(self.inner.activate(history), self.inner.activate(updates))


class Recording(_Wrapping):
    """`inner`, with every activation it is handed noted in `tasks`."""

    def __init__(self, inner: WorkflowRunner | None = None) -> None:
        super().__init__(inner)
        self.tasks: list[TaskRecord] = []

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Recorded(self.inner.create_instance(det), self.tasks)


class _Recorded(_WrappedInstance):
    def __init__(self, inner: WorkflowInstance, tasks: list[TaskRecord]) -> None:
        super().__init__(inner)
        self.tasks = tasks

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = self.inner.activate(act)
        commands = [c.WhichOneof("variant") for c in completion.successful.commands]
        self.tasks.append((act.history_length, sorted(j.WhichOneof("variant") for j in act.jobs), commands))
        return completion
