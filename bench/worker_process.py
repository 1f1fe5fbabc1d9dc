"""One benchmark worker in its own process, so its peak RSS is its own: `python -m bench.worker_process`.

    BENCH_DATABASE_URL=URL python -m bench.worker_process engine|bare|bare-lifecycle --address HOST:PORT \
        --namespace NS --task-queue Q [--pool-size 10] [--log-level INFO] [--count-db FILE]

engine: the production worker (worker.build_worker: ComplaintWorkflow, the case
activities, resolve_policy; max_concurrent_activities = pool size,
max_cached_workflows = worker.MAX_CACHED_WORKFLOWS, or --max-cached-workflows).
bare: bench.bare.SleepThenNoop and its no-op activity, with the same pool size,
max_concurrent_activities, max_cached_workflows and graceful shutdown.
bare-lifecycle: bench.bare_lifecycle.BareLifecycle (an update running one no-op
activity) with the same settings as engine (worker.worker_settings).

--count-db FILE: the pool counts every round trip and statement it sends
(bench/dbcount.py) and writes them to FILE as JSON when the worker stops.

Prints `ready` once the worker runs, logs on stderr, and stops cleanly on
SIGTERM (tools/harness/worker_entry.py). The stack (Temporal, PostgreSQL,
migrations) is the parent's business.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from temporalio.worker import Worker

from activities import load_policies
from bench.bare import BareActivities, SleepThenNoop
from bench.bare_lifecycle import BareLifecycle, bare_lifecycle_activities
from config import load_settings
from logs import configure_logging
from stack.bytecode import compile_for_the_sandbox
from tools.harness.process import run_to_exit
from tools.harness.worker_entry import serve, worker_arguments
from worker import GRACEFUL_SHUTDOWN, build_worker, worker_settings


def _parser() -> argparse.ArgumentParser:
    parser = worker_arguments("python -m bench.worker_process", __doc__.splitlines()[0])
    parser.add_argument("kind", choices=("engine", "bare", "bare-lifecycle"))
    parser.add_argument("--max-cached-workflows", type=int, help="override worker.MAX_CACHED_WORKFLOWS (an experiment)")
    parser.add_argument("--count-db", help="count the pool's round trips and statements; write them to this file at exit")
    return parser


def _worker(args: argparse.Namespace, client: Any, pool: Any) -> Worker:
    # The production setting (COMPLAINTS_WORKFLOW_CACHE), or the experiment's override, for every kind.
    cache = args.max_cached_workflows or load_settings().workflow_cache
    if args.kind == "engine":
        return build_worker(client, pool, args.task_queue, load_policies(load_settings().policies_path), max_cached_workflows=cache)
    if args.kind == "bare-lifecycle":
        compile_for_the_sandbox([BareLifecycle])  # as build_worker does for the engine's workflows
        return Worker(
            client,
            task_queue=args.task_queue,
            workflows=[BareLifecycle],
            activities=bare_lifecycle_activities(),
            **worker_settings(pool, cache),
        )
    compile_for_the_sandbox([SleepThenNoop])
    return Worker(
        client,
        task_queue=args.task_queue,
        workflows=[SleepThenNoop],
        activities=BareActivities(pool).all(),
        max_concurrent_activities=pool.get_max_size(),
        max_cached_workflows=cache,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def _run(args: argparse.Namespace) -> int:
    pool_options = {}
    if args.count_db:
        from bench.dbcount import CountingConnection

        pool_options["connection_class"] = CountingConnection
    try:
        return await serve(args, os.environ["BENCH_DATABASE_URL"], lambda client, pool: _worker(args, client, pool),
                           **pool_options)
    finally:
        if args.count_db:
            from bench.dbcount import COUNTS

            with open(args.count_db, "w") as out:
                json.dump(COUNTS.snapshot(), out)


def main() -> None:
    args = _parser().parse_args()
    configure_logging("json", level=args.log_level.upper())
    run_to_exit(lambda: _run(args), failed="bench worker failed", cancel_on_signals=False)


if __name__ == "__main__":
    main()
