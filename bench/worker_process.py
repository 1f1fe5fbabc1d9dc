"""One benchmark worker in its own process, so its peak RSS is its own: `python -m bench.worker_process`.

    BENCH_DATABASE_URL=URL python -m bench.worker_process engine|bare|bare-lifecycle --address HOST:PORT \
        --namespace NS --task-queue Q [--pool-size 10] [--log-level INFO] [--count-db FILE]

(The database URL comes from the environment, so a password never shows in `ps`.)

engine: the production worker (worker.build_worker: ComplaintWorkflow, the case
activities, resolve_policy; max_concurrent_activities = pool size,
max_cached_workflows = worker.MAX_CACHED_WORKFLOWS, or --max-cached-workflows).
bare: bench.bare.SleepThenNoop and its no-op activity, with the same pool size,
max_concurrent_activities, max_cached_workflows and graceful shutdown.
bare-lifecycle: bench.bare_lifecycle.BareLifecycle (an update running one no-op
activity) with the same settings as engine (worker.worker_settings).

--count-db FILE: the pool counts every round trip and statement it sends
(bench/dbcount.py) and writes them to FILE as JSON when the worker stops.

Prints one line `ready` on stdout once the worker runs; logs go to stderr.
SIGTERM or SIGINT stops the worker, closes the pool and exits 0 (1 on failure).
The stack (Temporal, PostgreSQL, migrations) is the parent's business.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from temporalio.worker import Worker

from activities import create_pool, load_policies
from bench.bare import BareActivities, SleepThenNoop
from bench.bare_lifecycle import BareLifecycle, bare_lifecycle_activities
from config import load_settings
from logs import configure_logging
from stack.client import connect_client
from stack.process import exit_for_real, run_worker_until, stop_on_signals
from worker import GRACEFUL_SHUTDOWN, build_worker, worker_settings
from stack.bytecode import compile_for_the_sandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_process", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("engine", "bare", "bare-lifecycle"))
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--max-cached-workflows", type=int, help="override worker.MAX_CACHED_WORKFLOWS (an experiment)")
    parser.add_argument("--count-db", help="count the pool's round trips and statements; write them to this file at exit")
    return parser


async def _run(args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    # The production setting (COMPLAINTS_WORKFLOW_CACHE), or the experiment's override, for both kinds.
    cache = args.max_cached_workflows or load_settings().workflow_cache
    pool_options = {}
    if args.count_db:
        from bench.dbcount import CountingConnection

        pool_options["connection_class"] = CountingConnection
    pool = await create_pool(os.environ["BENCH_DATABASE_URL"], max_size=args.pool_size, **pool_options)
    try:
        client = await connect_client(args.address, args.namespace)
        if args.kind == "engine":
            worker = build_worker(
                client, pool, args.task_queue, load_policies(load_settings().policies_path), max_cached_workflows=cache
            )
        elif args.kind == "bare-lifecycle":
            compile_for_the_sandbox([BareLifecycle])  # as build_worker does for the engine's workflows
            worker = Worker(
                client,
                task_queue=args.task_queue,
                workflows=[BareLifecycle],
                activities=bare_lifecycle_activities(),
                **worker_settings(pool, cache),
            )
        else:
            compile_for_the_sandbox([SleepThenNoop])
            worker = Worker(
                client,
                task_queue=args.task_queue,
                workflows=[SleepThenNoop],
                activities=BareActivities(pool).all(),
                max_concurrent_activities=pool.get_max_size(),
                max_cached_workflows=cache,
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            )
        await run_worker_until(worker, stop)  # a worker that failed on its own re-raises here: exit 1
        return 0
    finally:
        await pool.close()
        if args.count_db:
            import json

            from bench.dbcount import COUNTS

            with open(args.count_db, "w") as out:
                json.dump(COUNTS.snapshot(), out)


def main() -> None:
    args = _parser().parse_args()
    configure_logging("json", level=args.log_level.upper())
    status = 1
    try:
        status = asyncio.run(_run(args))
    except Exception as error:
        print(f"bench worker failed: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        exit_for_real(status)


if __name__ == "__main__":
    main()
