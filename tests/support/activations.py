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

    at: only the tasks at these history lengths; None, every task that carries both.
    history_jobs_at: the time the history jobs run at (a catch-up runs at an earlier task's); None, the task's.
    """

    def __init__(
        self, inner: WorkflowRunner | None = None, at: set[int] | None = None, history_jobs_at: datetime | None = None
    ) -> None:
        super().__init__(inner)
        self.at = at
        self.history_jobs_at = history_jobs_at

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _InTwo(self.inner.create_instance(det), self)


class _InTwo(_WrappedInstance):
    def __init__(self, inner: WorkflowInstance, how: DeliveredInTwo) -> None:
        super().__init__(inner)
        self.how = how

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        at = self.how.at
        parts = split_updates(act) if at is None or act.history_length in at else None
        if parts is None:
            return self.inner.activate(act)
        history, updates = parts
        if self.how.history_jobs_at is not None:
            history.timestamp.FromDatetime(self.how.history_jobs_at)
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
