"""The engine against bare Temporal, in one run: `python -m bench` (or `make bench`).

    .venv/bin/python -m bench [--cases 300] [--sizes 100,300,1000,2000] [--scale-cases 10000]
                              [--only lifecycle,latency,queries,scale,database,growth] [--help]

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

Prints one table (metric | engine | bare Temporal | engine/bare) to stdout and
writes bench/results.json (figures, N, settings, machine: cores, memory,
Python, temporalio, Temporal server and PostgreSQL versions, load average
before and after). Progress goes to stderr. Exit status 0 when every section
completed, 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from temporalio.client import Client

from activities import apply_migrations, create_pool
from activities.roster_store import load_roster
from bench.bare_lifecycle import SIGNAL_NAME, UPDATE_NAME, WORKFLOW_TYPE
from bench.common import (
    REPO,
    CpuMeter,
    Progress,
    WorkerProcess,
    bounded,
    fmt,
    latency_summary,
    load_average,
    machine_info,
    own_stack,
    ratio,
    render_table,
    say,
    source_version,
)
from complaint_client import ComplaintClient
from config import load_settings
from logs import configure_logging
from schemas import Roster
from stack.process import exit_for_real

DEMO_ROSTER = REPO / "roster" / "demo.json"
RESULTS = Path(__file__).resolve().with_name("results.json")
SECTIONS = ("lifecycle", "latency", "queries", "scale", "database", "growth")
ACTIONS_PER_CASE = 10
# Cases opened (and left waiting) at a time by the scale and fleet set-up.
OPEN_CONCURRENCY = 50


# --- the case -------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    """A simulated agent: a roster member who receives calls and works the cases they receive."""

    id: str
    category: str


def intake(complaint_id: str, customer_id: str, agent: Agent) -> dict[str, Any]:
    return {
        "complaint_id": complaint_id,
        "customer": {"customer_id": customer_id, "name": "Benchmark Customer", "email": "customer@example.com"},
        "channel": "phone",
        "category": agent.category,
        "severity": "medium",
        "summary": "Charged twice for one order; the second charge is still pending",
        "details": "The customer sees two charges of 89.99 for order ORD-1; the shop says the bank holds it.",
        "received_by": agent.id,
        "facts": {"amount": "89.99"},
    }


def script(agent: Agent, customer_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The ten actions of a case, in order: the demo's lifecycle, worked by its owner and customer."""
    owner, customer = agent.id, f"customer:{customer_id}"
    due = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    return [
        ("accept_ownership", {"actor": owner}),
        ("contact_customer", {"actor": owner, "channel": "phone", "summary": "Called back; reviewed both charges"}),
        ("request_info", {"actor": owner, "fields": ["order_id"], "question": "Which order number shows the two charges?"}),
        ("provide_info", {"actor": customer, "facts": {"order_id": "ORD-1"}, "channel": "email"}),
        ("make_promise", {"actor": owner, "description": "Have the pending charge voided and confirm by email", "due_at": due}),
        ("add_note", {"actor": owner, "text": "Payment processor confirms the second authorisation is a duplicate"}),
        ("keep_promise", {"actor": owner, "promise_id": "P1", "evidence": "Void reference VX-1 emailed to the customer"}),
        ("propose_resolution", {"actor": owner, "resolution": "The duplicate authorisation is voided",
                                "root_cause": "A retried checkout created a second authorisation"}),
        ("confirm_resolution", {"actor": customer, "satisfied": True, "comment": "Thanks"}),
        ("record_feedback", {"actor": customer, "score": 5, "comment": "Quick and clear"}),
    ]


# --- the run --------------------------------------------------------------------


@dataclass
class Ctx:
    args: argparse.Namespace
    client: Client
    pool: Any
    address: str
    namespace: str
    database_url: str
    server_pid: int | None
    pg_stat_statements: bool
    agents: list[Agent]
    log_dir: Path
    progress: Progress
    run_id: str
    _serial: int = 0
    failures: list[str] = field(default_factory=list)

    def next_label(self, what: str) -> str:
        self._serial += 1
        return f"{what}-{self._serial}"

    async def start_worker(self, kind: str, label: str, *, count_db: Path | None = None) -> tuple[WorkerProcess, str]:
        queue = f"bench-{self.run_id}-{label}-{kind}"
        worker = await WorkerProcess.start(
            kind, address=self.address, namespace=self.namespace, database_url=self.database_url,
            task_queue=queue, pool_size=self.args.pool_size, log_level=self.args.worker_log_level,
            log_path=self.log_dir / f"{label}-{kind}.log",
            max_cached_workflows=self.args.max_cached_workflows,
            extra_args=["--count-db", str(count_db)] if count_db else (),
        )
        return worker, queue


class Side:
    """One side's way of opening and working a case on a task queue."""

    kind = ""

    def __init__(self, ctx: Ctx, queue: str, label: str) -> None:
        self.ctx, self.queue, self.label = ctx, queue, label

    def ids(self, i: int) -> tuple[str, str]:
        """(complaint id, customer id) of case i."""
        return f"B{self.ctx.run_id}-{self.label}-{self.kind[0]}{i:05d}", f"BCU-{self.ctx.run_id}-{self.label}-{i}"

    def agent(self, i: int) -> Agent:
        return self.ctx.agents[i % len(self.ctx.agents)]

    async def open(self, i: int) -> None:
        raise NotImplementedError

    async def work(self, i: int, latencies: list[tuple[str, float]]) -> None:
        """The case's ten actions, one after the other; each update's round trip (name, ms) into latencies."""
        raise NotImplementedError


class EngineSide(Side):
    kind = "engine"

    def __init__(self, ctx: Ctx, queue: str, label: str) -> None:
        super().__init__(ctx, queue, label)
        self.engine = ComplaintClient(ctx.client, queue)

    async def open(self, i: int) -> None:
        cid, customer = self.ids(i)
        await self.engine.start_case(intake(cid, customer, self.agent(i)), wait_for_owner=None)

    async def work(self, i: int, latencies: list[tuple[str, float]]) -> None:
        cid, customer = self.ids(i)
        state = None
        for name, payload in script(self.agent(i), customer):
            t0 = time.perf_counter()
            state = await self.engine.act(cid, name, payload)
            latencies.append((name, (time.perf_counter() - t0) * 1000))
        assert state is not None
        await self.until_written(cid, state.event_count)

    async def until_written(self, cid: str, seq: int) -> None:
        """A case counts as done once all its events are in PostgreSQL (an update answers before its write).

        Checked by reading case_events, as a report would, rather than asking the case
        (wait_for_writes): the harness's check should cost the Temporal server nothing.
        """
        deadline = time.monotonic() + 60
        while (await self.ctx.pool.fetchval(WRITTEN_SQL, cid) or 0) < seq:
            if time.monotonic() > deadline:
                raise TimeoutError(f"case {cid}: events up to {seq} not written after 60 s")
            await asyncio.sleep(0.02)


# Marked, so the database section leaves the harness's own reads out of the engine's statements.
WRITTEN_SQL = "SELECT /* bench:written */ max(seq) FROM case_events WHERE complaint_id = $1"


class EngineReadingWritesSide(EngineSide):
    """The engine through a client that reads its writes: each update answers once its events are written."""

    def __init__(self, ctx: Ctx, queue: str, label: str) -> None:
        super().__init__(ctx, queue, label)
        self.engine = ComplaintClient(ctx.client, queue, read_your_writes=True)


class BareSide(Side):
    kind = "bare-lifecycle"

    async def open(self, i: int) -> None:
        cid, customer = self.ids(i)
        await self.ctx.client.start_workflow(
            WORKFLOW_TYPE, intake(cid, customer, self.agent(i)), id=f"bare-{cid}", task_queue=self.queue
        )

    async def work(self, i: int, latencies: list[tuple[str, float]]) -> None:
        cid, customer = self.ids(i)
        handle = self.ctx.client.get_workflow_handle(f"bare-{cid}")
        for name, payload in script(self.agent(i), customer):
            t0 = time.perf_counter()
            await handle.execute_update(UPDATE_NAME, payload, result_type=dict)
            latencies.append((name, (time.perf_counter() - t0) * 1000))


SIDES: dict[str, type[Side]] = {"engine": EngineSide, "engine_read_your_writes": EngineReadingWritesSide, "bare": BareSide}


async def run_agents(n: int, agents: int, one_case: Callable[[int], Awaitable[None]], progress: Progress) -> None:
    """`agents` workers, each taking the next case number and working it to the end."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    failures: list[BaseException] = []

    async def agent() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await one_case(i)
            except Exception as error:
                failures.append(error)
            progress.done += 1

    await asyncio.gather(*(agent() for _ in range(min(agents, n))))
    if failures:
        raise RuntimeError(f"{len(failures)} of {n} cases failed; the first: {type(failures[0]).__name__}: {failures[0]}")


async def lifecycle_side(ctx: Ctx, side_name: str, n: int, agents: int, label: str, *,
                         worker: WorkerProcess | None = None, queue: str | None = None,
                         first_case: int = 0, count_db: Path | None = None) -> dict[str, Any]:
    """N cases through the lifecycle on one side; a fresh worker unless one is given."""
    own_worker = worker is None
    if worker is None:
        worker, queue = await ctx.start_worker(SIDES[side_name].kind, label, count_db=count_db)
    assert queue is not None
    side = SIDES[side_name](ctx, queue, label)
    latencies: list[tuple[str, float]] = []
    meter = CpuMeter({"worker": worker.pid, "temporal_server": ctx.server_pid, "bench_client": os.getpid()})

    async def one_case(i: int) -> None:
        await side.open(first_case + i)
        await side.work(first_case + i, latencies)

    try:
        ctx.progress.set(f"{label}: {side_name}, {n} cases, {agents} agents", n)
        load_before = load_average()
        meter.mark("start")
        t0 = time.perf_counter()
        await asyncio.wait_for(run_agents(n, agents, one_case, ctx.progress), timeout=max(600.0, n * 3.0))
        wall = time.perf_counter() - t0
        meter.mark("end")
        actions = n * ACTIONS_PER_CASE
        return {
            "cases": n,
            "agents": agents,
            "actions": actions,
            "wall_seconds": round(wall, 2),
            "cases_per_second": round(n / wall, 2),
            "actions_per_second": round(actions / wall, 1),
            "update_latency_ms": latency_summary(ms for _, ms in latencies),
            "update_latency_ms_by_action": {
                name: {k: v for k, v in latency_summary(ms for n, ms in latencies if n == name).items()
                       if k in ("p50", "p99")}
                for name, _ in script(ctx.agents[0], "-")
            },
            "cpu": meter.between("start", "end"),
            "worker_rss_kib": worker.status_kib("VmRSS"),
            "worker_peak_rss_kib": worker.status_kib("VmHWM"),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        }
    finally:
        if own_worker:
            status = await worker.stop()
            if status not in (0, None):
                say(f"{label}: the {side_name} worker exited with status {status}; its log: {worker.log_path}")


async def both_sides(ctx: Ctx, n: int, agents: int, label: str, *, engine_first: bool = False) -> dict[str, Any]:
    """The bare side first, then the engine (which so runs on the slightly larger server state),
    or the other way round (engine_first)."""
    if engine_first:
        engine = await lifecycle_side(ctx, "engine", n, agents, label)
        bare = await lifecycle_side(ctx, "bare", n, agents, label)
    else:
        bare = await lifecycle_side(ctx, "bare", n, agents, label)
        engine = await lifecycle_side(ctx, "engine", n, agents, label)
    order = "engine, bare" if engine_first else "bare, engine"
    return {"cases": n, "agents": agents, "order": order, "engine": engine, "bare": bare,
            "ratio": lifecycle_ratios(engine, bare)}


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose engine/bare cases/s is the median (the lower middle one of an even count)."""
    ranked = sorted(rounds, key=lambda r: r["ratio"]["cases_per_second"] or 0.0)
    return ranked[(len(ranked) - 1) // 2]


def lifecycle_ratios(engine: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    return {
        "cases_per_second": ratio(engine.get("cases_per_second"), bare.get("cases_per_second")),
        "update_p50": ratio(engine.get("update_latency_ms", {}).get("p50"), bare.get("update_latency_ms", {}).get("p50")),
        "update_p99": ratio(engine.get("update_latency_ms", {}).get("p99"), bare.get("update_latency_ms", {}).get("p99")),
    }


# --- sections -------------------------------------------------------------------------


async def section_lifecycle(ctx: Ctx) -> dict[str, Any]:
    """--rounds rounds of both sides, the order swapped each round (bare first, then engine first, ...),
    so that neither side always meets the busier server or the machine's quieter minute; the
    section's figures are those of the median round, and every round's are kept beside them."""
    rounds = []
    for number in range(ctx.args.rounds):
        label = "lifecycle" if ctx.args.rounds == 1 else f"lifecycle-round{number + 1}"
        rounds.append(await both_sides(ctx, ctx.args.cases, ctx.args.agents, label, engine_first=number % 2 == 1))
    chosen = median_round(rounds)
    summary = [
        {"order": r["order"], "engine_cases_per_second": r["engine"]["cases_per_second"],
         "bare_cases_per_second": r["bare"]["cases_per_second"], "ratio": r["ratio"]["cases_per_second"]}
        for r in rounds
    ]
    return {**chosen, "rounds": summary, "median_of_rounds": len(rounds)}


async def section_growth(ctx: Ctx, done: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for n in ctx.args.sizes:
        if done.get("lifecycle", {}).get("cases") == n and done["lifecycle"].get("agents") == ctx.args.agents:
            runs.append({**done["lifecycle"], "from": "lifecycle section"})
            continue
        runs.append(await both_sides(ctx, n, ctx.args.agents, f"growth{n}"))
    return {"agents": ctx.args.agents, "runs": runs}


async def section_latency(ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for agents, cases in ((1, ctx.args.latency_cases_single), (ctx.args.latency_agents, ctx.args.latency_cases)):
        run = await both_sides(ctx, cases, agents, f"latency{agents}")
        reading = await lifecycle_side(ctx, "engine_read_your_writes", cases, agents, f"latency{agents}-reading")
        out[str(agents)] = {
            "agents": agents,
            "cases": cases,
            "updates": cases * ACTIONS_PER_CASE,
            "engine": run["engine"]["update_latency_ms"],
            "bare": run["bare"]["update_latency_ms"],
            "ratio": {"p50": run["ratio"]["update_p50"], "p99": run["ratio"]["update_p99"]},
            # act() with read_your_writes=True: the update, then wait_for_writes (answered once written).
            "engine_read_your_writes": reading["update_latency_ms"],
            "ratio_read_your_writes": {
                p: ratio(reading["update_latency_ms"].get(p), run["bare"]["update_latency_ms"].get(p)) for p in ("p50", "p99")
            },
        }
    return out


async def timed(n: int, fn: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return latency_summary(samples)


async def section_queries(ctx: Ctx) -> dict[str, Any]:
    n_queries = ctx.args.queries
    events = ctx.args.query_events
    label = "queries"
    result: dict[str, Any] = {"events": events, "queries_each": n_queries}
    # The engine: one case, accepted, then notes sent as signals until it holds 500 events, all in PostgreSQL.
    worker, queue = await ctx.start_worker("engine", label)
    try:
        side = EngineSide(ctx, queue, label)
        engine = side.engine
        cid, _ = side.ids(0)
        agent = side.agent(0)
        ctx.progress.set(f"{label}: engine case with {events} events")
        await side.open(0)
        await engine.act(cid, "accept_ownership", {"actor": agent.id})
        state = await engine.state(cid)
        for k in range(events - state.event_count):
            await engine.send(cid, "add_note", {"actor": agent.id, "text": f"Note {k}: checked the ledger again"})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            stored = await ctx.pool.fetchval("SELECT count(*) FROM case_events WHERE complaint_id = $1", cid)
            ctx.progress.extra = f": {stored} events stored"
            if stored >= events:
                break
            await asyncio.sleep(0.5)
        state = await engine.state(cid)
        timeline = await engine.timeline(cid)
        result["engine_case"] = {"event_count": state.event_count, "timeline_length": len(timeline)}
        ctx.progress.set(f"{label}: engine state and timeline queries, {n_queries} each")
        result["engine"] = {
            "state": await timed(n_queries, lambda: engine.state(cid)),
            "timeline": await timed(n_queries, lambda: engine.timeline(cid)),
        }
    finally:
        await worker.stop()
    worker, queue = await ctx.start_worker(BareSide.kind, label)
    try:
        side = BareSide(ctx, queue, label)
        cid, _ = side.ids(0)
        ctx.progress.set(f"{label}: bare workflow with {events} events")
        await side.open(0)
        handle = ctx.client.get_workflow_handle(f"bare-{cid}")
        for k in range(events - 1):
            await handle.signal(SIGNAL_NAME, {"actor": "bench", "text": f"Note {k}: checked the ledger again"})
        while (await handle.query("state", result_type=dict))["event_count"] < events:
            await asyncio.sleep(0.2)
        ctx.progress.set(f"{label}: bare state and timeline queries, {n_queries} each")
        result["bare"] = {
            "state": await timed(n_queries, lambda: handle.query("state", result_type=dict)),
            "timeline": await timed(n_queries, lambda: handle.query("timeline", result_type=list)),
        }
    finally:
        await worker.stop()
    result["ratio"] = {
        f"{q}_{p}": ratio(result["engine"][q].get(p), result["bare"][q].get(p))
        for q in ("state", "timeline") for p in ("p50", "p99")
    }
    result["fleet"] = await fleet_queries(ctx)
    return result


async def open_cases(ctx: Ctx, side: Side, first: int, count: int, worker: WorkerProcess | None = None,
                     rss_every: int = 0) -> list[dict[str, Any]]:
    """Open cases first..first+count-1 (left waiting); with rss_every, the worker's RSS every rss_every cases."""
    samples: list[dict[str, Any]] = []
    step = rss_every or count
    done = 0
    while done < count:
        chunk = min(step, count - done)
        await bounded(range(first + done, first + done + chunk), side.open, OPEN_CONCURRENCY, ctx.progress)
        done += chunk
        if worker is not None and rss_every:
            await asyncio.sleep(1.0 if chunk >= 100 else 0.1)  # let the last openings' workflow tasks finish
            samples.append({"open": done, "rss_kib": worker.status_kib("VmRSS")})
    return samples


async def fleet_queries(ctx: Ctx) -> dict[str, Any]:
    """A manager's fleet list once --fleet-cases cases exist: one page of 100 and a count, each side."""
    target = ctx.args.fleet_cases
    n_queries = max(5, ctx.args.queries // 10)
    out: dict[str, Any] = {"fleet_cases": target, "queries_each": n_queries}
    specs = {
        "engine": ("WorkflowType = 'ComplaintWorkflow'",
                   "WorkflowType = 'ComplaintWorkflow' AND ComplaintStatus = 'assigned' AND ComplaintOwner = '{owner}'"),
        "bare": (f"WorkflowType = '{WORKFLOW_TYPE}'",
                 f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"),
    }
    for side_name in ("bare", "engine"):
        everything, page_query = specs[side_name]
        existing = (await ctx.client.count_workflows(everything)).count
        missing = max(0, target - existing)
        if missing:
            worker, queue = await ctx.start_worker(SIDES[side_name].kind, "fleet")
            try:
                ctx.progress.set(f"fleet: opening {missing} {side_name} cases (to {target})", missing)
                await open_cases(ctx, SIDES[side_name](ctx, queue, "fleet"), 0, missing)
            finally:
                await worker.stop()
        # Visibility is eventually consistent: wait until the count sees them.
        deadline = time.monotonic() + 120
        while (count := (await ctx.client.count_workflows(everything)).count) < target and time.monotonic() < deadline:
            await asyncio.sleep(1)
        query = page_query.format(owner=ctx.agents[0].id)
        # The search attributes of the newest cases may still be on their way: wait until the page's count settles.
        previous, deadline = -1, time.monotonic() + 60
        while time.monotonic() < deadline:
            matching = (await ctx.client.count_workflows(query)).count
            if matching == previous:
                break
            previous = matching
            await asyncio.sleep(2)

        async def page() -> int:
            return len([w async for w in ctx.client.list_workflows(query, limit=100, page_size=100)])

        rows = await page()
        ctx.progress.set(f"fleet: {side_name} list and count queries over {count} workflows, {n_queries} each")
        out[side_name] = {
            "workflows": count,
            "page_query": query,
            "page_rows": rows,
            "list_page_of_100": await timed(n_queries, page),
            "count": await timed(n_queries, lambda: ctx.client.count_workflows(everything)),
        }
    out["ratio"] = {
        f"{q}_{p}": ratio(out["engine"][q].get(p), out["bare"][q].get(p))
        for q in ("list_page_of_100", "count") for p in ("p50", "p99")
    }
    return out


async def drained(ctx: Ctx, queue: str, timeout: float = 1800.0) -> None:
    """Wait until the task queue's workflow-task backlog is empty (twice in a row), or timeout."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    request = DescribeTaskQueueRequest(
        namespace=ctx.namespace, task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, report_stats=True,
    )
    empty, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = (await ctx.client.workflow_service.describe_task_queue(request)).stats
        ctx.progress.extra = f": backlog {stats.approximate_backlog_count}"
        empty = empty + 1 if stats.approximate_backlog_count == 0 else 0
        if empty >= 2:
            return
        await asyncio.sleep(1)


async def section_scale(ctx: Ctx) -> dict[str, Any]:
    n_open, n = ctx.args.scale_cases, ctx.args.cases
    out: dict[str, Any] = {"open_cases": n_open, "lifecycle_cases": n,
                           "max_cached_workflows": ctx.args.max_cached_workflows or load_settings().workflow_cache}
    for side_name in ("bare", "engine"):
        label = "scale"
        kind = SIDES[side_name].kind
        worker, queue = await ctx.start_worker(kind, label)
        try:
            side = SIDES[side_name](ctx, queue, label)
            start_rss = worker.status_kib("VmRSS")
            ctx.progress.set(f"scale: opening {n_open} {side_name} cases and leaving them waiting", n_open)
            t0 = time.perf_counter()
            samples = await open_cases(ctx, side, 0, n_open, worker, rss_every=max(1, min(1000, n_open // 10)))
            open_s = time.perf_counter() - t0
            # The starts are answered at once; their first workflow tasks queue up. Wait until the worker took them all.
            ctx.progress.set(f"scale: waiting for the {side_name} worker to take up the opened cases")
            await drained(ctx, queue)
            taken_s = time.perf_counter() - t0
            rss_open = worker.status_kib("VmRSS")
            lifecycle = await lifecycle_side(ctx, side_name, n, ctx.args.agents, label, worker=worker, queue=queue,
                                             first_case=n_open)
            out[side_name] = {
                "open_seconds": round(open_s, 1),
                "opened_per_second": round(n_open / open_s, 1) if open_s else None,
                "taken_up_seconds": round(taken_s, 1),
                "taken_up_per_second": round(n_open / taken_s, 1) if taken_s else None,
                "worker_rss_kib_at_start": start_rss,
                "worker_rss_kib_with_cases_open": rss_open,
                "rss_by_open_cases": samples,
                "mib_per_1000_open_cases": round((rss_open - start_rss) / 1024 / (n_open / 1000), 1)
                if rss_open and start_rss else None,
                "lifecycle_with_cases_open": lifecycle,
            }
        finally:
            await worker.stop()
    out["ratio"] = {
        "cases_per_second_with_cases_open": ratio(
            out["engine"]["lifecycle_with_cases_open"]["cases_per_second"],
            out["bare"]["lifecycle_with_cases_open"]["cases_per_second"],
        ),
        "mib_per_1000_open_cases": ratio(out["engine"]["mib_per_1000_open_cases"], out["bare"]["mib_per_1000_open_cases"]),
    }
    return out


async def section_database(ctx: Ctx) -> dict[str, Any]:
    n = ctx.args.db_cases
    label = "database"
    counts_file = ctx.log_dir / "database-counts.json"
    if ctx.pg_stat_statements:
        await ctx.pool.execute("SELECT pg_stat_statements_reset()")
    run = await lifecycle_side(ctx, "engine", n, ctx.args.agents, label, count_db=counts_file)
    out: dict[str, Any] = {"cases": n, "actions": n * ACTIONS_PER_CASE, "lifecycle": run}
    counted = json.loads(counts_file.read_text()) if counts_file.exists() else None
    if counted:
        out["pool"] = {
            "round_trips": counted["round_trips"],
            "statements": counted["statements"],
            "round_trips_per_case": round(counted["round_trips"] / n, 2),
            "round_trips_per_action": round(counted["round_trips"] / (n * ACTIONS_PER_CASE), 2),
            "statements_per_action": round(counted["statements"] / (n * ACTIONS_PER_CASE), 2),
            "by_statement_per_case": {k: round(v / n, 2) for k, v in counted["by_statement"].items()},
        }
    if ctx.pg_stat_statements:
        rows = await ctx.pool.fetch(
            "SELECT query, calls, total_exec_time FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query NOT ILIKE '%pg_stat_statements%' AND query NOT LIKE '%bench:written%' ORDER BY calls DESC"
        )
        total = sum(r["calls"] for r in rows)
        from bench.dbcount import label as short

        out["pg_stat_statements"] = {
            "statements": total,
            "statements_per_action": round(total / (n * ACTIONS_PER_CASE), 2),
            "server_ms_per_action": round(sum(r["total_exec_time"] for r in rows) / (n * ACTIONS_PER_CASE), 3),
            "by_statement_per_case": {short(r["query"]): round(r["calls"] / n, 2) for r in rows[:15]},
        }
    return out


# --- the table ------------------------------------------------------------------------


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def add(metric: str, engine: float | int | None, bare: float | int | None, digits: int = 1) -> None:
        r = ratio(engine, bare)
        rows.append((metric, fmt(engine, digits), fmt(bare, digits), "-" if r is None else f"{r:.2f}"))

    def lat(side: dict[str, Any], p: str) -> float | None:
        return side.get(p)

    sections = results["sections"]
    if "lifecycle" in sections:
        s = sections["lifecycle"]
        e, b = s["engine"], s["bare"]
        add(f"lifecycle N={s['cases']}, {s['agents']} agents: cases/s", e["cases_per_second"], b["cases_per_second"], 2)
        add("  actions/s", e["actions_per_second"], b["actions_per_second"])
        add("  worker CPU (cores)", e["cpu"].get("worker_cores"), b["cpu"].get("worker_cores"), 2)
        add("  Temporal server CPU (cores)", e["cpu"].get("temporal_server_cores"), b["cpu"].get("temporal_server_cores"), 2)
        rounds = s.get("rounds", [])
        if len(rounds) > 1:
            for number, r in enumerate(rounds, 1):
                add(f"  round {number} ({r['order']}): cases/s", r["engine_cases_per_second"], r["bare_cases_per_second"], 2)
    if "latency" in sections:
        for key, s in sections["latency"].items():
            add(f"update latency, {key} agent{'s' if key != '1' else ''}: p50 (ms)", lat(s["engine"], "p50"), lat(s["bare"], "p50"))
            add("  p99 (ms)", lat(s["engine"], "p99"), lat(s["bare"], "p99"))
            if "engine_read_your_writes" in s:
                ryw = s["engine_read_your_writes"]
                add("  engine reading its writes: p50 (ms)", lat(ryw, "p50"), lat(s["bare"], "p50"))
                add("  engine reading its writes: p99 (ms)", lat(ryw, "p99"), lat(s["bare"], "p99"))
    if "queries" in sections:
        s = sections["queries"]
        for q in ("state", "timeline"):
            add(f"query {q}, {s['events']} events: p50 (ms)", s["engine"][q]["p50"], s["bare"][q]["p50"], 2)
            add("  p99 (ms)", s["engine"][q]["p99"], s["bare"][q]["p99"], 2)
        f = s.get("fleet", {})
        if "engine" in f:
            add(f"fleet list, page of 100 (of {f['engine']['workflows']:,} / {f['bare']['workflows']:,}): p50 (ms)",
                f["engine"]["list_page_of_100"]["p50"], f["bare"]["list_page_of_100"]["p50"])
            add("  p99 (ms)", f["engine"]["list_page_of_100"]["p99"], f["bare"]["list_page_of_100"]["p99"])
            add("fleet count: p50 (ms)", f["engine"]["count"]["p50"], f["bare"]["count"]["p50"])
    if "scale" in sections:
        s = sections["scale"]
        e, b = s["engine"], s["bare"]
        add(f"scale: worker RSS with {s['open_cases']:,} open (MiB)",
            round(e["worker_rss_kib_with_cases_open"] / 1024, 1), round(b["worker_rss_kib_with_cases_open"] / 1024, 1))
        add("  MiB per 1,000 open cases", e["mib_per_1000_open_cases"], b["mib_per_1000_open_cases"])
        add("  opened per second (started)", e["opened_per_second"], b["opened_per_second"])
        add("  taken up by the worker per second", e.get("taken_up_per_second"), b.get("taken_up_per_second"))
        el, bl = e["lifecycle_with_cases_open"], b["lifecycle_with_cases_open"]
        add(f"  lifecycle N={s['lifecycle_cases']} beside them: cases/s", el["cases_per_second"], bl["cases_per_second"], 2)
    if "database" in sections:
        s = sections["database"]
        if "pool" in s:
            add(f"database ({s['cases']} cases): round trips per action", s["pool"]["round_trips_per_action"], 0, 2)
            add("  statements per action (pool)", s["pool"]["statements_per_action"], 0, 2)
        if "pg_stat_statements" in s:
            add("  statements per action (pg_stat_statements)", s["pg_stat_statements"]["statements_per_action"], 0, 2)
    if "growth" in sections:
        for run in sections["growth"]["runs"]:
            add(f"growth N={run['cases']:,}: cases/s", run["engine"]["cases_per_second"], run["bare"]["cases_per_second"], 2)
            add("  update p50 (ms)", run["engine"]["update_latency_ms"]["p50"], run["bare"]["update_latency_ms"]["p50"])
    return rows


def print_table(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(f"\nEngine against bare Temporal, run {results['run_id']} ({results['date']}), "
          f"{machine.get('cores')} cores, {machine.get('memory_mib')} MiB, Python {machine.get('python')}, "
          f"temporalio {machine.get('temporalio')}, Temporal {machine.get('temporal_server')}, "
          f"PostgreSQL {machine.get('postgresql')}; load average {results['load_average_before']} before, "
          f"{results['load_average_after']} after\n")
    print(render_table(("metric", "engine", "bare Temporal", "engine/bare"), table_rows(results)))
    print()


# --- main -----------------------------------------------------------------------------


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
    roster = Roster.model_validate(json.loads(DEMO_ROSTER.read_text()))
    agents = [Agent(a.id, a.skills[0]) for a in roster.agents if a.role == "agent" and a.active]
    results: dict[str, Any] = {}
    complete = False
    with Progress() as progress:
        progress.set(f"run {run_id}: starting a dev server and PostgreSQL of the benchmark's own in {data_dir}")
        try:
            async with own_stack(data_dir) as stack:
                pool = await create_pool(stack.database_url, max_size=4)
                try:
                    await apply_migrations(pool)
                    await load_roster(pool, roster)
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


def goal_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    sections = results["sections"]
    if "lifecycle" in sections:
        s = sections["lifecycle"]
        r = s["ratio"]["cases_per_second"]
        of = f" (median of {len(s['rounds'])} rounds)" if len(s.get("rounds", [])) > 1 else ""
        lines.append(f"goal: lifecycle engine/bare >= 1.0: {r}{of} ({'met' if r is not None and r >= 1.0 else 'not met'})")
    if "latency" in sections:
        for key, s in sections["latency"].items():
            r = s["ratio"]["p50"]
            lines.append(f"goal: update p50 within 1.2x of bare with {key} agent(s): {r} "
                         f"({'met' if r is not None and r <= 1.2 else 'not met'})")
    return lines


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cases": args.cases,
        "rounds": args.rounds,
        "agents": args.agents,
        "sizes": args.sizes,
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
    configure_logging(load_settings().log_format, level=logging.WARNING)
    status = 1
    try:
        status = asyncio.run(run(args))
    except KeyboardInterrupt:
        status = 130
    except Exception as error:
        print(f"benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        exit_for_real(status)


if __name__ == "__main__":
    main()
