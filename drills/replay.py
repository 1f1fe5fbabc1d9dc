"""Histories no worker could take back: cases whose workflow task keeps failing (stuck), and histories
that do not replay with this checkout's code, each classified against what the worker ran live."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drills.agents import CaseRun
from drills.worker_process import trace_activations
from tools.harness.progress import Progress, say
from workflows.start_input import workflow_id_for

# A case whose workflow task has failed this many times in a row is stuck (a nondeterminism error or
# a deadlocked task is retried for ever): the drill stops waiting for it and says why.
STUCK_ATTEMPTS = 3


async def watch_for_stuck_cases(runs: list[CaseRun], tasks: dict[str, asyncio.Task[None]], client: Any) -> None:
    while True:
        await asyncio.sleep(15)
        for run in runs:
            if run.done or run.stuck:
                continue
            why = await stuck_because(client, run.complaint_id)
            if why:
                run.stuck = why
                say(f"!! {run.complaint_id} is stuck: {why}")
                tasks[run.complaint_id].cancel()


async def stuck_because(client: Any, complaint_id: str) -> str | None:
    """Why the case's workflow task keeps failing, if it does (None: it does not, or Temporal is away)."""
    from temporalio.api.enums.v1 import EventType

    handle = client.get_workflow_handle(workflow_id_for(complaint_id))
    try:
        desc = await asyncio.wait_for(handle.describe(), 10)
        raw = desc.raw_description
        if not raw.HasField("pending_workflow_task") or raw.pending_workflow_task.attempt < STUCK_ATTEMPTS:
            return None
        history = await asyncio.wait_for(handle.fetch_history(), 30)
    except Exception:
        return None
    for event in reversed(history.events):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return None  # attempts that timed out (a killed worker), not a task that fails
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            return f"workflow task attempt {raw.pending_workflow_task.attempt} failing: {failure.message[:300]}"
    return None


@dataclass
class ReplayFailure:
    workflow_id: str
    failure: str
    # sdk: the worker processed the jobs of one workflow task in other activations than a replay of the
    # same history does (the workflow code is not at fault); workflow: the same jobs produced other
    # commands (a nondeterministic workflow); unknown: the worker's trace does not tell.
    cause: str = "unknown"
    evidence: str = ""

    def describe(self) -> str:
        return f"{self.failure} [cause: {self.cause}{'; ' + self.evidence if self.evidence else ''}]"


Activation = tuple[int, str, list[str], list[str]]  # history_length, workflow.now(), jobs, commands


def deferred_queries(worker_log: Path) -> int:
    """How many queries the worker's guard deferred (workflow_runner.py: a legacy query's catch-up refused)."""
    try:
        lines = worker_log.read_text(errors="replace").splitlines()
    except OSError:
        return 0
    return sum(1 for line in lines if '"event": "query deferred"' in line)


def live_activations(worker_log: Path) -> dict[str, list[Activation]]:
    """The activations each run went through when the worker processed it live (not replaying), in order,
    from the worker's `ACTIVATION` lines (drills/worker_process.py)."""
    import ast
    import re

    line_re = re.compile(
        r"^ACTIVATION run=(\S+) replaying=(True|False) history_length=(\d+) now=(\S+) jobs=(\[.*?\]) commands=(\[.*\])$"
    )
    found: dict[str, list[Activation]] = {}
    try:
        lines = worker_log.read_text(errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        match = line_re.match(line)
        if match is None or match[2] == "True":
            continue
        try:
            jobs, commands = ast.literal_eval(match[5]), ast.literal_eval(match[6])
        except (SyntaxError, ValueError):
            continue  # a line cut by another thread's output (older logs)
        if not jobs or jobs == ["remove_from_cache"] or all(j.startswith("query_workflow") for j in jobs):
            continue
        found.setdefault(match[1], []).append((int(match[3]), match[4], jobs, commands))
    return found


def _last_processing(group: list[Activation]) -> list[Activation]:
    """The last time a worker processed these events live: a task retried after its worker was killed
    runs the same jobs again (at the same or a later history length)."""
    start = 0
    for index in range(1, len(group)):
        if group[index][2] == group[start][2]:
            start = index
    return group[start:]


def classify(live: list[Activation], replayed: list[Activation]) -> tuple[str, str]:
    """Where the replay first differs from what ran live: ('sdk' | 'workflow' | 'unknown', evidence)."""
    previous = 0
    for length, now, jobs, commands in replayed:
        jobs = [j for j in jobs if j != "notify_has_patch"]  # a replay learns of patch markers; live never does
        if not jobs or jobs == ["remove_from_cache"] or all(j.startswith("query_workflow") for j in jobs):
            continue
        group = _last_processing([a for a in live if previous < a[0] <= length])
        previous = length
        live_jobs = [j for a in group for j in a[2]]
        live_commands = [c for a in group for c in a[3]]
        if not group:
            return "unknown", f"no live activation recorded up to history length {length}"
        if sorted(live_jobs) != sorted(jobs):
            return "unknown", f"at history length {length} the replay ran {jobs}, live ran {[a[2] for a in group]}"
        if live_commands == commands:
            continue
        if len(group) > 1 or live_jobs != jobs:
            return "sdk", (
                f"at history length {length} the worker ran jobs {[a[2] for a in group]} as {len(group)} "
                f"activation(s), commands {[a[3] for a in group]}; a replay of the same history runs {jobs} "
                f"as one, commands {commands}"
            )
        if group[0][1] != now:
            return "sdk", (
                f"at history length {length} the same jobs {jobs} ran with workflow.now() {group[0][1]} live and "
                f"{now} on replay, so they gave {live_commands} live and {commands} on replay"
            )
        return "workflow", (
            f"at history length {length} the same jobs {jobs} at the same workflow.now() {now} gave "
            f"{live_commands} live and {commands} on replay"
        )
    return "unknown", "no difference found in the activations"


async def replay_check(
    client: Any, workflow_ids: list[str], keep_dir: Path, worker_log: Path, progress: Progress
) -> dict[str, ReplayFailure]:
    """Replay every history with the code of this checkout: {workflow id: failure} for those that do not replay
    (their histories are written to keep_dir, as `temporal workflow show -o json` would).

    A history that does not replay is a case a worker cannot take back after a restart or a cache
    eviction (its workflow task would fail for ever), even if it happened to complete. Each failure
    is compared with the worker's trace of what ran live (classify).
    """
    from workflow_runner import replayer as workflow_replayer

    histories = []
    progress.set("fetching histories", len(workflow_ids))
    for workflow_id in workflow_ids:
        try:
            histories.append(await asyncio.wait_for(client.get_workflow_handle(workflow_id).fetch_history(), 60))
        except Exception as error:
            say(f"replay check: cannot fetch {workflow_id}: {type(error).__name__}: {error}")
        progress.done += 1
    replayed: dict[str, list[Activation]] = {}
    trace_activations(lambda run_id, replaying, length, now, jobs, commands:
                      replayed.setdefault(run_id, []).append((length, now, jobs, commands)))
    replayer = workflow_replayer(client.data_converter)
    failures: dict[str, ReplayFailure] = {}
    live = live_activations(worker_log)
    progress.set("replaying histories", len(histories))
    async with replayer.workflow_replay_iterator(_aiter(histories)) as results:
        async for result in results:
            progress.done += 1
            if result.replay_failure is None:
                continue
            history = result.history
            failure = ReplayFailure(history.workflow_id, str(result.replay_failure)[:300])
            failure.cause, failure.evidence = classify(live.get(history.run_id, []), replayed.get(history.run_id, []))
            failures[history.workflow_id] = failure
            keep_dir.mkdir(parents=True, exist_ok=True)
            (keep_dir / (history.workflow_id.replace("/", "_") + ".json")).write_text(history.to_json())
    return failures


async def _aiter(items: list[Any]) -> Any:
    for item in items:
        yield item
