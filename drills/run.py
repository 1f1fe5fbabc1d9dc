"""One drill run: servers and worker up, the cases worked while the plan's faults strike, then the
checks and the report. Every process and server it started is stopped, also on failure."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from complaint_client import ComplaintClient
from config import load_settings
from drills.agents import POLICY, STAGES, Agents, CaseRun
from drills.checks import verify
from drills.delivery import DeliveryWitness
from drills.faults import Chaos
from drills.plan import Options, make_plan
from drills.replay import replay_check, watch_for_stuck_cases
from drills.report import Finished, report
from drills.servers import Servers
from drills.worker_process import DATABASE_URL_ENV, TRACE_ENV
from stack.client import connect_client, data_converter_for
from tools.harness.progress import Progress, say
from tools.harness.worker import WorkerProcess, tail
from workflows.start_input import workflow_id_for

# How long a restarted worker may take to print `ready` (imports and connecting, on a busy machine).
WORKER_READY_TIMEOUT = 120.0


async def drill(opts: Options) -> int:
    began = time.monotonic()
    run_id = datetime.now(timezone.utc).strftime("%H%M%S") + "-" + secrets.token_hex(2)
    owned_dir = opts.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="crash-drill-")) if owned_dir else opts.work_dir.resolve()  # type: ignore[union-attr]
    work_dir.mkdir(parents=True, exist_ok=True)
    # Everything the settings put in a data dir (the embedded stack's encryption keys) goes to the work
    # dir, never ./data: this process and the worker subprocesses (which inherit it) share it.
    os.environ["COMPLAINTS_DATA_DIR"] = str(work_dir)
    data_converter_for(load_settings())  # creates the key file, if the settings want one, before any worker
    plan = make_plan(random.Random(opts.seed), opts.kills, opts.server_restart, opts.outage)
    say(f"crash drill {run_id}: {opts.cases} cases, seed {opts.seed}; work dir {work_dir}")
    say(f"plan (s after the cases open): kills at {', '.join(f'{k:.1f}' for k in plan.kills) or 'none'}; "
        f"server restart at {plan.server_restart and round(plan.server_restart, 1)}; "
        f"PostgreSQL cut at {plan.outage_start and round(plan.outage_start, 1)} for {plan.outage_seconds:g}s")
    passed = False
    status = 1
    summary: dict[str, Any] = {"run_id": run_id, "seed": opts.seed, "cases": opts.cases, "plan": asdict(plan)}
    worker: WorkerProcess | None = None
    try:
        with Progress() as progress:
            async with AsyncExitStack() as cleanup:
                progress.set("starting the servers and the worker")
                servers = Servers(work_dir, run_id)
                await servers.start(cleanup)
                assert servers.proxy is not None and servers.pool is not None
                witness = DeliveryWitness()
                await witness.start(cleanup)
                await witness.wire_roster(servers.pool)
                pg_version = await servers.postgres_version()
                say(f"Temporal dev server {servers.address} (db {servers.temporal_dir / 'temporal.db'}); "
                    f"{servers.database_kind} (PostgreSQL {pg_version}); worker reaches it through the proxy on port {servers.proxy.port}")
                task_queue = f"crash-drill-{run_id}"
                worker = WorkerProcess(
                    "drills.worker_process",
                    ["--address", servers.address, "--namespace", "default", "--task-queue", task_queue,
                     "--pool-size", str(opts.pool_size)],
                    log_path=work_dir / "worker.log", ready_timeout=WORKER_READY_TIMEOUT, tied_to_parent=True,
                    env={DATABASE_URL_ENV: servers.proxy.url_for(servers.database_url), TRACE_ENV: "1",
                         **witness.worker_env()},
                )
                cleanup.push_async_callback(_stop_worker, worker)
                await worker.start()
                client = await connect_client(servers.address)
                engine = ComplaintClient(client, task_queue)
                runs = [
                    CaseRun(i, f"DRILL-{run_id}-{i:03d}", f"CU-DRILL-{run_id}-{i:03d}", "door" if i % 2 == 0 else "direct")
                    for i in range(1, opts.cases + 1)
                ]
                agents = Agents(engine, asyncio.get_running_loop().time() + opts.timeout,
                                (opts.promise_min, opts.promise_max), opts.seed)
                chaos = Chaos(plan, servers, worker, runs, time.monotonic(), opts.server_stop, client)
                cases_seconds = await work_the_cases(opts, runs, agents, chaos, progress)
                say(f"[{cases_seconds:6.1f}s] every agent is done; checking PostgreSQL against the timelines")
                if not worker.alive():
                    await worker.start()  # the timeline queries of completed cases need a worker
                agents.deadline = asyncio.get_running_loop().time() + 180  # the checks' own time, however long the cases took
                progress.set("waiting for every escalation's delivery")
                delivery = await witness.check(servers.pool, [r.complaint_id for r in runs])
                say("replaying every case's, door's and delivery's history with this checkout's code")
                doors = sorted({r.door_workflow_id for r in runs if r.door_workflow_id})
                replayed = [workflow_id_for(r.complaint_id) for r in runs] + doors + delivery.workflow_ids
                replay_failures = await replay_check(
                    client, replayed, work_dir / "histories-that-do-not-replay", worker.log_path, progress,
                )
                check = await verify(runs, engine, servers.pool, agents, replay_failures, progress)
                check.delivery = delivery
                check.problems.extend(delivery.problems)
                worker_alive_at_end = worker.alive()
                stop_status = await worker.stop()
                progress.set("stopping the servers")
        where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded"
        finished = Finished(opts, run_id, f"{pg_version} ({where})", work_dir, runs, replayed, check, replay_failures,
                            chaos, worker, agents, worker_alive_at_end, stop_status, cases_seconds)
        verdict, summary_of_run = report(finished, time.monotonic() - began)
        passed, status = verdict.passed, verdict.status
        summary.update(summary_of_run)
    except BaseException as error:
        summary.update({"passed": False, "error": f"{type(error).__name__}: {error}"})
        if not isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
            say(f"crash drill failed: {type(error).__name__}: {error}")
            if worker is not None:
                say(f"worker log ({worker.log_path}) ends:\n{tail(worker.log_path)}")
        raise
    finally:
        if opts.json_path is not None:
            opts.json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if owned_dir and passed and not opts.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif not passed:
            say(f"work dir kept: {work_dir}")
    return status


async def work_the_cases(opts: Options, runs: list[CaseRun], agents: Agents, chaos: Chaos, progress: Progress) -> float:
    """Every case worked by its agent while the chaos runs, until all are done or the timeout; the seconds it took."""
    t0 = chaos.t0
    progress.set(f"cases ({STAGES} milestones each)", len(runs) * STAGES)
    say(f"[   0.0s] opening {opts.cases} cases on the {POLICY} policy")
    working = [asyncio.create_task(agents.work(r), name=r.complaint_id) for r in runs]
    watchdog = asyncio.create_task(watch_for_stuck_cases(runs, {t.get_name(): t for t in working}, chaos.client))
    chaos_task = asyncio.create_task(chaos.run(), name="chaos")
    following = asyncio.create_task(_follow(runs, progress))
    try:
        await asyncio.wait({chaos_task, *working}, timeout=opts.timeout + 60, return_when=asyncio.FIRST_EXCEPTION)
        if chaos_task.done() and chaos_task.exception() is not None:
            raise chaos_task.exception()  # type: ignore[misc]
        await asyncio.wait(working, timeout=max(1.0, opts.timeout + 60 - (time.monotonic() - t0)))
    finally:
        following.cancel()
        watchdog.cancel()
        if not chaos_task.done():
            chaos_task.cancel()
            await asyncio.gather(chaos_task, return_exceptions=True)
        for task in working:
            task.cancel()
        await asyncio.gather(*working, return_exceptions=True)
    _show(runs, progress)
    progress.end_phase()
    return time.monotonic() - t0


async def _follow(runs: list[CaseRun], progress: Progress) -> None:
    while True:
        _show(runs, progress)
        await asyncio.sleep(1.0)


def _show(runs: list[CaseRun], progress: Progress) -> None:
    closed = sum(r.closed_status == "closed" for r in runs)
    completed = sum(r.outcome is not None for r in runs)
    failed = sum(r.error is not None for r in runs)
    progress.extra = f"{closed} closed, {completed} completed, {failed} failed, {sum(not r.done for r in runs)} in flight"
    progress.done = sum(r.stage for r in runs)


async def _stop_worker(worker: WorkerProcess) -> None:
    if worker.alive():
        await worker.stop()
