"""The engine against bare Temporal, in one run: `python -m bench` (or `make bench`).

    .venv/bin/python -m bench [--cases 300] [--sizes 100,300,1000,2000] [--scale-cases 10000]
                              [--delivery-sizes 100,1000] [--delivery-defer 300]
                              [--only lifecycle,latency,queries,scale,database,growth,delivery] [--help]

A script that prints figures, never a timed test. It starts the embedded
defaults on servers of its own (a Temporal dev server with a SQLite file on free
ports, and the embedded PostgreSQL, both in <data dir>/bench-lifecycle/<run>/,
deleted afterwards unless --keep; the demo's ./data and port 7233 are never
touched), loads the demo roster, and measures each side with its own worker
subprocess (bench/worker_process.py) and task queue:

engine  the production worker (worker.build_worker). A case: ComplaintClient.start_case
        (a direct start, not through the problem door, which would add an update and a
        workflow per customer), received by its agent, then ten updates through the typed
        client: accept_ownership, contact_customer, request_info, provide_info,
        make_promise, add_note, keep_promise, propose_resolution, confirm_resolution
        (the case closes), record_feedback. Each update answers once the case has applied
        it (its events reach PostgreSQL in the case's next write); a case counts as done
        once all its events are in case_events (the harness reads the table).
bare    bench/bare_lifecycle.py: a workflow started the same way, then ten updates, each
        running one no-op activity. Same worker settings (worker.worker_settings: cache,
        max concurrent activities = pool size, graceful shutdown), same payloads.

Simulated agents (--agents, default 20) each work one case at a time, action
after action, taking the next case from a shared queue. Sections (--only picks
some; all by default):

lifecycle  N = --cases complaints per side: cases/s, actions/s, and engine/bare.
latency    update round trip p50/p99, with 1 agent and with --latency-agents (20).
queries    `state` and `timeline` query latency on a case holding 500 events (and a
           bare workflow holding 500), and a fleet list query (one page of 100 and a
           count) once --fleet-cases (5,000) cases exist.
scale      --scale-cases (10,000) cases opened and left waiting, by one fresh worker
           per side: its RSS every 1,000, MiB per 1,000 open cases, then the lifecycle
           (N = --cases) run beside them by the same worker.
database   --db-cases (50) engine cases with a worker whose pool counts every round
           trip and statement (bench/dbcount.py), and pg_stat_statements: per action
           and per case, by statement.
growth     the lifecycle at each of --sizes (100, 300, 1,000, 2,000).
delivery   engine only: for each of --delivery-sizes (100, 1,000), N escalations due at
           one instant (the escalation benchmark's engine side) delivered by a worker
           with SMTP_URL to an SMTP sink and a webhook receiver in this process: the
           escalation's lateness, each channel's arrival after the due time and the
           delivery's own share, p50/p99/max (bench/delivery/).

Prints one table (metric | engine | bare Temporal | engine/bare) to stdout and
writes bench/results.json (figures, N, settings, machine: cores, memory,
Python, temporalio, Temporal server and PostgreSQL versions, load average
before and after). The table ends with the wall time and each side's load
average. Progress goes to stderr: a bar per phase on a terminal, a plain line
now and then elsewhere. Exit status 0 when every section completed, 1
otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from activities import create_pool
from bench.common import machine_info, own_stack, source_version
from bench.delivery.section import section_delivery
from bench.escalations.plan import MAX_DEFER
from bench.plan import ACTIONS_PER_CASE, Agent, Ctx
from bench.report import goal_lines, print_table
from bench.sections import (
    section_database,
    section_growth,
    section_latency,
    section_lifecycle,
    section_queries,
    section_scale,
)
from config import load_settings
from logs import configure_logging
from tools.harness.process import run_to_exit
from tools.harness.progress import Progress, say
from tools.harness.report import load_average
from tools.harness.stack import demo_roster, prepare_database
from tools.harness.worker import REPO

RESULTS = Path(__file__).resolve().with_name("results.json")
# delivery last: it points the roster at a webhook receiver of its own while it runs.
SECTIONS = ("lifecycle", "latency", "queries", "scale", "database", "growth", "delivery")


async def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    run_id = datetime.now(timezone.utc).strftime("%m%d%H%M%S") + secrets.token_hex(2)
    data_dir = settings.data_dir / "bench-lifecycle" / run_id
    # The benchmark's own stack: clients and workers find its encryption key under this data dir.
    os.environ["COMPLAINTS_DATA_DIR"] = str(data_dir)
    for variable in ("TEMPORAL_ADDRESS", "DATABASE_URL"):
        os.environ.pop(variable, None)
    if args.encryption == "off":
        os.environ["COMPLAINTS_ENCRYPTION_KEYS"] = "off"
    settings = load_settings()
    from codec import keyring_for
    from stack.client import connect_client

    data_dir.mkdir(parents=True, exist_ok=True)
    keyring_for(settings, create=True)
    roster = demo_roster()
    agents = [Agent(a.id, a.skills[0]) for a in roster.agents if a.role == "agent" and a.active]
    results: dict[str, Any] = {}
    complete = False
    with Progress() as progress:
        progress.set(f"run {run_id}: starting a dev server and PostgreSQL of the benchmark's own in {data_dir}")
        try:
            async with own_stack(data_dir) as stack:
                pool = await create_pool(stack.database_url, max_size=4)
                try:
                    await prepare_database(pool, roster)
                    client = await connect_client(stack.temporal_address, settings.namespace, settings=settings)
                    ctx = Ctx(args=args, client=client, pool=pool, address=stack.temporal_address,
                              namespace=settings.namespace, database_url=stack.database_url,
                              server_pid=stack.server_pid, pg_stat_statements=stack.pg_stat_statements,
                              agents=agents, log_dir=data_dir / "logs", progress=progress, run_id=run_id)
                    machine = await machine_info(client, pool)
                    started = datetime.now(timezone.utc)
                    results = {
                        "benchmark": "lifecycle",
                        "run_id": run_id,
                        "date": started.isoformat(timespec="seconds"),
                        "settings": settings_of(args),
                        "machine": machine,
                        "load_average_before": load_average(),
                        "source": source_version(),
                        "sections": {},
                    }
                    sections = results["sections"]
                    t0 = time.monotonic()
                    for name in SECTIONS:
                        if name not in args.only:
                            continue
                        if name == "lifecycle":
                            sections[name] = await section_lifecycle(ctx)
                        elif name == "latency":
                            sections[name] = await section_latency(ctx)
                        elif name == "queries":
                            sections[name] = await section_queries(ctx)
                        elif name == "scale":
                            sections[name] = await section_scale(ctx)
                        elif name == "database":
                            sections[name] = await section_database(ctx)
                        elif name == "growth":
                            sections[name] = await section_growth(ctx, sections)
                        elif name == "delivery":
                            sections[name] = await section_delivery(ctx)
                        results["sides"] = ctx.sides_summary()
                        write_results(args.output, results)  # what is done so far survives a later failure
                    results["seconds"] = round(time.monotonic() - t0, 1)
                    results["load_average_after"] = load_average()
                    complete = True
                finally:
                    await pool.close()
        finally:
            if results:
                results["complete"] = complete
                results.setdefault("load_average_after", load_average())
                write_results(args.output, results)
            if complete and not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
            else:
                say(f"the run's servers' data and worker logs are kept in {data_dir}")
    print_table(results)
    goals = goal_lines(results)
    for line in goals:
        print(line)
    print(f"\nwritten to {args.output}")
    return 0 if complete else 1


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cases": args.cases,
        "rounds": args.rounds,
        "agents": args.agents,
        "sizes": args.sizes,
        "delivery_sizes": args.delivery_sizes,
        "delivery_defer": args.delivery_defer,
        "latency_agents": args.latency_agents,
        "latency_cases": args.latency_cases,
        "latency_cases_single": args.latency_cases_single,
        "scale_cases": args.scale_cases,
        "fleet_cases": args.fleet_cases,
        "db_cases": args.db_cases,
        "queries": args.queries,
        "query_events": args.query_events,
        "pool_size": args.pool_size,
        "max_concurrent_activities": args.pool_size,
        "max_cached_workflows": args.max_cached_workflows or load_settings().workflow_cache,
        "worker_log_level": args.worker_log_level,
        "encryption": args.encryption,
        "start": "ComplaintClient.start_case (direct, not through the problem door)",
        "actions_per_case": ACTIONS_PER_CASE,
    }


def write_results(path: str, results: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(results, indent=2, default=str) + "\n")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes takes numbers separated by commas (got {text!r})")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--sizes needs at least one number, each at least 1")
    return sizes


def _sections(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--only takes some of {', '.join(SECTIONS)} (got {text!r})")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--cases", type=int, default=300, help="complaints per side in the lifecycle section (default 300; 2,000 documented)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the lifecycle section, each side's order swapped every round; "
                   "its figures are the median round's (default 3)")
    p.add_argument("--agents", type=int, default=20, help="concurrent simulated agents (default 20)")
    p.add_argument("--sizes", type=_sizes, default=[100, 300, 1000, 2000], help="N of the growth section (default 100,300,1000,2000)")
    p.add_argument("--scale-cases", type=int, default=10_000, help="cases opened and left waiting in the scale section (default 10000)")
    p.add_argument("--fleet-cases", type=int, default=5_000, help="cases the fleet list query runs over (default 5000)")
    p.add_argument("--latency-agents", type=int, default=20, help="concurrent agents of the loaded latency run (default 20)")
    p.add_argument("--latency-cases", type=int, default=100, help="cases of the loaded latency run (default 100)")
    p.add_argument("--latency-cases-single", type=int, default=20, help="cases of the one-agent latency run (default 20)")
    p.add_argument("--db-cases", type=int, default=50, help="cases of the database section (default 50)")
    p.add_argument("--queries", type=int, default=200, help="queries of each kind in the queries section (default 200)")
    p.add_argument("--query-events", type=int, default=500, help="events of the case the queries read (default 500)")
    p.add_argument("--delivery-sizes", type=_sizes, default=[100, 1000],
                   help="N of the delivery section: escalations due at one instant (default 100,1000)")
    p.add_argument("--delivery-defer", type=float, default=MAX_DEFER,
                   help=f"seconds the delivery section may put off the due instant to find a window free of the cases' "
                        f"other escalations (default {MAX_DEFER:g}; 0 for a quick run)")
    p.add_argument("--only", type=_sections, default=list(SECTIONS), help=f"sections to run, comma-separated (default all: {','.join(SECTIONS)})")
    p.add_argument("--pool-size", type=int, default=10, help="database pool per worker = its max concurrent activities (default 10, as worker.py)")
    p.add_argument("--max-cached-workflows", type=int, help="both workers' cache (default: COMPLAINTS_WORKFLOW_CACHE, as worker.py)")
    p.add_argument("--worker-log-level", default="INFO", help="log level of the worker subprocesses (default INFO, as `make worker`)")
    p.add_argument("--encryption", choices=("on", "off"), default="on", help="payload encryption on both sides (default on, as the embedded stack)")
    p.add_argument("--output", default=str(RESULTS), help=f"where the figures go (default {RESULTS.relative_to(REPO)})")
    p.add_argument("--keep", action="store_true", help="keep the run's servers' data and worker logs")
    return p


def main() -> None:
    args = parser().parse_args()
    for name in ("cases", "rounds", "agents", "scale_cases", "fleet_cases", "latency_agents", "latency_cases",
                 "latency_cases_single", "db_cases", "queries", "query_events", "pool_size"):
        if getattr(args, name) < 1:
            parser().error(f"--{name.replace('_', '-')} must be at least 1")
    if args.delivery_defer < 0:
        parser().error("--delivery-defer must be at least 0")
    configure_logging(load_settings().log_format, level=logging.WARNING)
    run_to_exit(lambda: run(args), failed="benchmark failed")


if __name__ == "__main__":
    main()
