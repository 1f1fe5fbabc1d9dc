"""The child side of tools/harness/worker.py: the options every worker subprocess takes and how it serves.

The database URL comes from the environment, so a password never shows in `ps`.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from activities import create_pool
from stack.client import connect_client
from stack.process import run_worker_until, stop_on_signals

BuildWorker = Callable[[Any, Any], Any]  # (temporalio Client, asyncpg Pool) -> temporalio Worker


def worker_arguments(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--log-level", default="INFO")
    return parser


async def serve(args: argparse.Namespace, database_url: str, build: BuildWorker, **pool_options: Any) -> int:
    """Run the worker `build` makes until SIGTERM or SIGINT (exit 0); a worker that fails on its own raises."""
    stop = stop_on_signals()
    pool = await create_pool(database_url, max_size=args.pool_size, **pool_options)
    try:
        client = await connect_client(args.address, args.namespace)
        await run_worker_until(build(client, pool), stop)
        return 0
    finally:
        await pool.close()
