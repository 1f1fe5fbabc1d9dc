"""The command, `python -m bench.escalations`: its arguments, the stack, both sides, the table, the JSON."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bench.escalations
from activities import create_pool, load_policies
from bench.common import find_dev_server_pid, machine_info, source_version
from bench.escalations.bare_side import run_bare
from bench.escalations.cleanup import cleanup
from bench.escalations.context import Run
from bench.escalations.engine_side import run_engine
from bench.escalations.plan import POLICY, SEVERITY, promise_warn_seconds
from bench.escalations.report import notes, table
from config import load_settings
from logs import configure_logging
from stack import running_stack
from stack.client import connect_client
from tools.harness.process import run_to_exit
from tools.harness.progress import Progress, say
from tools.harness.stack import demo_roster, prepare_database
from tools.harness.worker import REPO

WORKFLOW_CACHE = load_settings().workflow_cache

# In bench/, beside the other benchmarks' results, where docs/performance.md cites it.
RESULTS = Path(__file__).resolve().parents[1] / "results-escalations.json"


async def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    policies = load_policies(settings.policies_path)
    roster = demo_roster()
    with Progress() as progress:
        progress.set("starting the stack (embedded defaults unless TEMPORAL_ADDRESS / DATABASE_URL are set)")
        async with running_stack(settings) as stack:
            pool = await create_pool(stack.database_url, max_size=4)
            try:
                await prepare_database(pool, roster)
                client = await connect_client(stack.temporal_address, settings.namespace)
                ctx = Run(
                    cases=args.cases, concurrency=args.concurrency, pool_size=args.pool_size, window=args.window,
                    worker_log_level=args.worker_log_level, client=client, pool=pool,
                    address=stack.temporal_address, namespace=settings.namespace, database_url=stack.database_url,
                    roster=roster, policies=policies, log_dir=settings.data_dir / "bench",
                    server_pid=find_dev_server_pid(stack.temporal_address),
                    max_cached_workflows=args.max_cached_workflows,
                )
                say(f"run {ctx.run_id}: {ctx.cases} cases, concurrency {ctx.concurrency}, pool {ctx.pool_size}; "
                    f"Temporal {stack.temporal_address}; worker logs in {ctx.log_dir}")
                machine = await machine_info(client, pool)
                started = datetime.now(timezone.utc)
                engine: dict[str, Any] = {}
                bare: dict[str, Any] = {}
                try:
                    if args.only != "bare":
                        engine = await run_engine(ctx, progress)
                    if args.only != "engine":
                        bare = await run_bare(ctx, progress)
                finally:
                    if not args.keep:
                        await cleanup(ctx, progress)
            finally:
                await pool.close()

    text, ratios = table(engine, bare)
    complete = all(side.get("seen") == args.cases for side in (engine, bare) if side or args.only is None)
    print(f"\nEscalation lateness: {args.cases} escalations due at one instant, on each side "
          f"(run {ctx.run_id}, {started:%Y-%m-%d %H:%M} UTC, {machine.get('cores')} cores)\n")
    print(text)
    print()
    for line in notes(engine, bare, promise_warn_seconds(policies.resolve(POLICY, SEVERITY))):
        print(line)
    results = {
        "benchmark": "escalations",
        "run_id": ctx.run_id,
        "date": started.isoformat(timespec="seconds"),
        "cases": args.cases,
        "concurrency": args.concurrency,
        "pool_size": args.pool_size,
        "worker_log_level": args.worker_log_level,
        "max_cached_workflows": args.max_cached_workflows or WORKFLOW_CACHE,
        "complete": complete,
        "engine": engine,
        "bare": bare,
        "ratio_engine_over_bare": ratios,
        "machine": machine,
        "source": source_version(),
        "definitions": {
            "lateness": "created_at - due_at of each escalation row (notifications for the engine, bench_bare_escalations for bare); created_at is clock_timestamp() at the insert; nearest-rank percentiles",
            "escalations_per_second": "N / (last created_at - the shared due instant)",
            "worker_peak_rss": "VmHWM of the worker subprocess (/proc/<pid>/status) after the last row: peak resident memory over its whole life",
        },
    }
    output = Path(args.output)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {output}")
    logs = sorted(ctx.log_dir.glob(f"{ctx.run_id}-*-worker.log"))
    if complete and not args.keep:
        for log in logs:  # tens of MB at INFO; kept when something went wrong or with --keep
            log.unlink(missing_ok=True)
    elif logs:
        print("worker logs: " + ", ".join(str(log) for log in logs))
    return 0 if complete else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.escalations", description=bench.escalations.__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="escalations due at one instant, per side (default 1000)")
    parser.add_argument("--concurrency", type=int, default=50, help="cases opened / workflows started at a time (default 50)")
    parser.add_argument("--pool-size", type=int, default=10, help="database pool per worker = its max concurrent activities (default 10, as worker.py)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds after the due instant kept free of other clocks' escalations when possible (default 10)")
    parser.add_argument("--worker-log-level", default="INFO", help="log level of the worker subprocesses (default INFO, as `make worker`)")
    parser.add_argument("--output", default=str(RESULTS), help=f"where the figures go (default {RESULTS.relative_to(REPO)})")
    parser.add_argument("--max-cached-workflows", type=int,
                        help=f"sticky cache size of both workers (default: COMPLAINTS_WORKFLOW_CACHE, now {WORKFLOW_CACHE})")
    parser.add_argument("--only", choices=("engine", "bare"), help="run one side only (for debugging; the table then has one column of figures)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's workflows and rows afterwards")
    args = parser.parse_args()
    if args.cases < 1 or args.concurrency < 1 or args.pool_size < 1:
        parser.error("--cases, --concurrency and --pool-size must be at least 1")
    configure_logging(load_settings().log_format, level=logging.WARNING)
    run_to_exit(lambda: run(args), failed="benchmark failed")
