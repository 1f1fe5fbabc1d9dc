"""The crash drill's worker, in a process of its own so the drill can kill -9 it: `python -m drills.worker_process`.

    DRILL_DATABASE_URL=URL python -m drills.worker_process --address HOST:PORT --namespace NS \
        --task-queue Q [--pool-size 10] [--log-level INFO]

The production worker (worker.build_worker: ComplaintWorkflow, the problem
door, the case and door activities, resolve_policy) on a pool of --pool-size
connections, with the production cache (COMPLAINTS_WORKFLOW_CACHE); the drill
points the database URL at its proxy. Prints `ready` once it polls, logs JSON
lines on stderr, stops cleanly on SIGTERM (tools/harness/worker_entry.py). With
DRILL_TRACE_ACTIVATIONS=1 (the drill sets it) each workflow activation is
logged as one `ACTIVATION` line, so a history that later fails to replay can be
compared with what ran live.
"""

from __future__ import annotations

import os
import sys
import threading

from activities import load_policies
from config import load_settings
from logs import configure_logging
from tools.harness.process import run_to_exit
from tools.harness.worker_entry import serve, worker_arguments
from worker import build_worker

DATABASE_URL_ENV = "DRILL_DATABASE_URL"
# Set to 1: one `ACTIVATION ...` line on stderr per workflow activation (see trace_activations).
TRACE_ENV = "DRILL_TRACE_ACTIVATIONS"


def trace_activations(record) -> None:  # type: ignore[no-untyped-def]
    """Call record(run_id, replaying, history_length, timestamp, jobs, commands) for every workflow activation
    (timestamp: workflow.now() during it, ISO 8601).

    The drill compares what a worker did live with what a replay of the same history does, to tell a
    nondeterministic workflow from activations the SDK composed differently. Wraps a private temporalio
    method: a debugging aid, never used by the production worker.
    """
    from temporalio.worker import _workflow_instance as instance

    activate = instance._WorkflowInstanceImpl.activate

    def traced(self, act):  # type: ignore[no-untyped-def]
        completion = activate(self, act)
        jobs = []
        for job in act.jobs:
            kind = job.WhichOneof("variant")
            detail = getattr(job, kind)
            extra = detail.name if kind == "do_update" else getattr(detail, "seq", None)
            jobs.append(f"{kind}({extra})" if extra not in (None, "") else kind)
        commands = [c.WhichOneof("variant") for c in completion.successful.commands]
        stamp = act.timestamp.ToDatetime().isoformat(timespec="milliseconds") if act.HasField("timestamp") else "-"
        record(act.run_id, act.is_replaying, act.history_length, stamp, jobs, commands)
        return completion

    instance._WorkflowInstanceImpl.activate = traced


_log_lock = threading.Lock()


def _log_activation(
    run_id: str, replaying: bool, history_length: int, stamp: str, jobs: list[str], commands: list[str]
) -> None:
    line = (
        f"ACTIVATION run={run_id} replaying={replaying} history_length={history_length} now={stamp} "
        f"jobs={jobs} commands={commands}\n"
    )
    with _log_lock:  # activations run on several threads: one whole line at a time
        sys.stderr.write(line)
        sys.stderr.flush()


def main() -> None:
    args = worker_arguments("python -m drills.worker_process", __doc__.splitlines()[0]).parse_args()
    configure_logging("json", level=args.log_level.upper())
    if os.environ.get(TRACE_ENV) == "1":
        trace_activations(_log_activation)
    settings = load_settings()
    policies = load_policies(settings.policies_path)

    def build(client, pool):  # type: ignore[no-untyped-def]
        return build_worker(client, pool, args.task_queue, policies, max_cached_workflows=settings.workflow_cache)

    run_to_exit(lambda: serve(args, os.environ[DATABASE_URL_ENV], build), failed="drill worker failed", cancel_on_signals=False)


if __name__ == "__main__":
    main()
