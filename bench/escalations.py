"""Escalation lateness: how late the engine's escalations land when many fall due at once (issue 3).

    .venv/bin/python -m bench.escalations [--cases N]      (or `make bench-escalations`)

A script that prints figures, never a timed test. One run, on the dev server
and the real PostgreSQL (the embedded defaults through running_stack, or the
servers TEMPORAL_ADDRESS / DATABASE_URL name), in two parts:

engine  A worker subprocess (bench/worker_process.py: worker.build_worker, a
        pool of --pool-size connections, so as many concurrent activities) on
        a task queue of its own. The demo roster is loaded; N cases with the
        `demo` policy are opened (--concurrency at a time), each accepted and
        contacted by its owner (which stops the acknowledge and first-response
        clocks; customer_update restarts at the contact and resolution runs
        from receipt, both in seconds under `demo`), then every case gets
        `make_promise` with ONE shared absolute `due_at` T. Measured: level 2
        of each case's `promise:P1` clock, due at T exactly; its row in
        `notifications` (one per escalation, written by record_case_events in
        the events' transaction) carries `due_at` (T) and `created_at`
        (clock_timestamp() at the insert). T is placed after the promise phase
        and where no other clock of these cases reaches a level or its deadline
        from T - warn_before - 3 s to T + --window (computed from the clocks in
        the cases' snapshots in PostgreSQL), deferred up to 300 s for that.
        The promise's own level 1 (T - 5 s under `demo`) and level 3 (T + 15 s)
        are part of the engine's load and are reported beside the table.
bare    The same with the least Temporal can do: bench/bare.py SleepThenNoop
        sleeps on one timer until its own shared instant T2, then one activity
        inserts a row (created_at clock_timestamp()) into
        bench_bare_escalations in the same PostgreSQL. Own worker subprocess,
        own task queue, the same pool size, max_concurrent_activities,
        max_cached_workflows and concurrency of starts.

Figures, per side:
  lateness            created_at - due_at of each row (ms): p50, p99, max
                      (nearest-rank percentiles over the N rows)
  escalations/s       N / (last created_at - due instant): the rate at which
                      the burst of N escalations due at one instant is drained
  worker peak RSS     VmHWM of the worker subprocess (/proc/<pid>/status), read
                      after the last row: its peak resident memory over its
                      whole life (start-up, setup of the N cases, the burst)
Beside them (JSON and the notes under the table): CPU seconds of the worker
and of the local Temporal dev server, and how busy the whole machine was, per
phase, from /proc; so a run says where the time went.

Prints a table (metric | engine | bare Temporal | ratio engine/bare) and
writes bench/results-escalations.json. Progress goes to stderr. Afterwards the
benchmark's workflows are terminated and deleted, and their rows removed from
PostgreSQL, and the worker logs (data/bench/) deleted (--keep keeps all of
them; the logs are kept too when a run is incomplete). Exit status 0 when every escalation of both
sides was seen, 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client

from activities import create_pool, load_policies
from bench.bare import BARE_TABLE, CREATE_BARE_TABLE, BareInput
from bench.common import (
    CpuMeter,
    bounded,
    find_dev_server_pid,
    machine_info,
    percentile,
    source_version,
    start_bench_worker,
)
from complaint_client import ComplaintClient
from config import load_settings
from logs import configure_logging
from schemas import Roster
from schemas.state import Clock, Promise
from stack import running_stack
from stack.client import connect_client
from workflows import clocks as clock_math
from tools.harness.process import run_to_exit
from tools.harness.progress import Progress, say
from tools.harness.stack import demo_roster, prepare_database
from tools.harness.worker import REPO, WorkerProcess
from workflows.complaint import workflow_id_for

WORKFLOW_CACHE = load_settings().workflow_cache

RESULTS = Path(__file__).resolve().with_name("results-escalations.json")

POLICY = "demo"
SEVERITY = "high"
MEASURED_CLOCK = "promise:P1"
MEASURED_LEVEL = 2
# Seconds between the end of a setup phase and its due instant (the demo promise warns 5 s before).
LEAD = 8.0
# Guard before the promise's level 1 kept free of other clocks' escalations (they may be late too).
GUARD = 3.0
# How much later than the planned instant the due instant may be put to find a quiet window:
# enough for every other clock of the demo policy to have fired its last level (resolution:
# level 3 at 180 s after receipt), after which the window is always quiet.
MAX_DEFER = 300.0
POLL = 0.5
# Bare workflows are started at least this fast (73/s measured with 1,000 on 2 busy cores).
BARE_STARTS_PER_SECOND = 40.0


# --- figures ------------------------------------------------------------------


def figures(rows: list[Any], due: datetime, expected: int) -> dict[str, Any]:
    """Lateness and drain rate of rows (each with due_at and created_at) due at `due`."""
    if not rows:
        return {"seen": 0, "expected": expected}
    late_ms = sorted((r["created_at"] - r["due_at"]).total_seconds() * 1000 for r in rows)
    last = max(r["created_at"] for r in rows)
    span = (last - due).total_seconds()
    return {
        "seen": len(rows),
        "expected": expected,
        "lateness_ms": {
            "min": round(late_ms[0], 1),
            "p50": round(percentile(late_ms, 50), 1),
            "p99": round(percentile(late_ms, 99), 1),
            "max": round(late_ms[-1], 1),
            "mean": round(sum(late_ms) / len(late_ms), 1),
        },
        "drain_seconds": round(span, 3),
        "escalations_per_second": round(len(rows) / span, 1) if span > 0 else None,
        "due_at_off_by_max_ms": round(max(abs((r["due_at"] - due).total_seconds()) for r in rows) * 1000, 3),
    }


# --- the engine side ------------------------------------------------------------


@dataclass
class Plan:
    due: datetime
    planned: datetime
    deferred_s: float
    quiet: bool
    expected_background_in_window: int


def background_instants(snapshots: list[Any], calendar: Any) -> list[datetime]:
    """Every instant still ahead at which a non-promise clock of these cases fires a level or is breached."""
    instants: list[datetime] = []
    for clocks_json in snapshots:
        for raw in clocks_json or []:
            clock = Clock.model_validate(raw)
            if clock.kind == "promise" or clock.paused:
                continue
            for level in range(clock.level, clock_math.TOP_LEVEL):
                instants.append(clock_math.instant(clock, clock.level_seconds[level], calendar))
            if not clock.breached:
                instants.append(clock.due_at)
    return sorted(instants)


def plan_due(earliest: datetime, instants: list[datetime], warn: float, window: float) -> Plan:
    """The first instant >= earliest with no background instant in [t - warn - GUARD, t + window]."""

    def clashes(t: datetime) -> int:
        lo = bisect_left(instants, t - timedelta(seconds=warn + GUARD))
        hi = bisect_left(instants, t + timedelta(seconds=window), lo)
        return hi - lo

    candidates = [earliest] + [
        x + timedelta(seconds=warn + GUARD + 0.01) for x in instants if x + timedelta(seconds=warn + GUARD) > earliest
    ]
    for t in sorted(candidates):
        if (t - earliest).total_seconds() > MAX_DEFER:
            break
        if clashes(t) == 0:
            return Plan(t, earliest, round((t - earliest).total_seconds(), 2), True, 0)
    return Plan(earliest, earliest, 0.0, False, clashes(earliest))


def promise_warn_seconds(policy: Any) -> float:
    """How long before its due time a promise clock reaches level 1 (demo: 5 s)."""
    now = datetime.now(timezone.utc)
    promise = Promise(promise_id="P1", description="-", owed_by="-", due_at=now + timedelta(hours=1), made_at=now)
    clock = clock_math.start_promise_clock(promise, policy.promise, now, policy.calendar)
    return clock.level_seconds[1] - clock.level_seconds[0]


async def run_engine(ctx: "Run", progress: Progress) -> dict[str, Any]:
    n, prefix = ctx.cases, ctx.case_prefix
    engine = ComplaintClient(ctx.client, ctx.engine_queue, read_your_writes=True)  # it plans from the snapshots in PostgreSQL
    owners = [a for a in ctx.roster.agents if a.role == "agent" and a.active and a.supervisor_id]
    like = prefix + "%"

    def owner_of(i: int) -> Any:
        return owners[i % len(owners)]

    def cid(i: int) -> str:
        return f"{prefix}{i:05d}"

    async def open_case(i: int) -> None:
        owner = owner_of(i)
        # Directly, not through the problem door: the benchmark measures escalations, and its
        # customers repeat from run to run, so an earlier run's idle doors (on that run's own,
        # now unpolled, task queue) would take these contacts.
        await engine.start_case(
            {
                "complaint_id": cid(i),
                "customer": {"customer_id": f"BENCH-CU-{i}", "name": "Benchmark Customer"},
                "channel": "phone",
                "category": owner.skills[0],
                "severity": SEVERITY,
                "policy": POLICY,
                "received_by": owner.id,
                "summary": "Benchmark case: a promise falls due at the shared instant",
            },
            wait_for_owner=None,
        )
        await engine.act(cid(i), "accept_ownership", {"actor": owner.id})
        await engine.act(cid(i), "contact_customer", {"actor": owner.id, "channel": "phone", "summary": "Called back"})

    async def promise(i: int, due: datetime) -> None:
        await engine.act(
            cid(i),
            "make_promise",
            {"actor": owner_of(i).id, "description": "Call the customer back with the outcome", "due_at": due.isoformat()},
        )

    ctx.to_delete.extend(workflow_id_for(cid(i)) for i in range(n))
    worker = await ctx.start_worker("engine", ctx.engine_queue)
    meter = CpuMeter({"worker": worker.pid, "temporal_server": ctx.server_pid})
    try:
        progress.set("engine: opening cases (start, accept_ownership, contact_customer)", n)
        meter.mark("ready")
        t0 = time.monotonic()
        await bounded(range(n), open_case, ctx.concurrency, progress)
        open_s = time.monotonic() - t0
        meter.mark("opened")

        # Plan T from the clocks the cases are really running (their snapshots in PostgreSQL).
        policy = ctx.policies.resolve(POLICY, SEVERITY)
        warn = promise_warn_seconds(policy)
        snapshots = [r["clocks"] for r in await ctx.pool.fetch(
            "SELECT snapshot->'clocks' AS clocks FROM cases WHERE complaint_id LIKE $1", like)]
        instants = background_instants(snapshots, policy.calendar)
        # make_promise is one update per case; opening was two updates and a start, slowed by the
        # escalations of the cases opened first (the demo clocks run in seconds).
        estimate_s = open_s * 0.35
        earliest = datetime.now(timezone.utc) + timedelta(seconds=estimate_s + LEAD)
        plan = plan_due(earliest, instants, warn, ctx.window)
        due = plan.due
        say(f"engine: {n} cases opened in {open_s:.1f}s; shared due instant {due.isoformat()} "
            f"({(due - datetime.now(timezone.utc)).total_seconds():.1f}s from now"
            + (f", deferred {plan.deferred_s}s to avoid other clocks' escalations)" if plan.quiet
               else f"; no quiet window within {MAX_DEFER:.0f}s: {plan.expected_background_in_window} other escalations may fall in it)"))

        progress.set(f"engine: make_promise due {due.strftime('%H:%M:%S.%f')[:-3]}", n)
        t1 = time.monotonic()
        await bounded(range(n), lambda i: promise(i, due), ctx.concurrency, progress)
        promise_s = time.monotonic() - t1
        meter.mark("promised")
        promised_at = datetime.now(timezone.utc)
        lead_s = (due - promised_at).total_seconds()
        if lead_s < warn:
            say(f"engine: warning: the last promise was made {lead_s:.1f}s before the due instant "
                f"(level 1 fires {warn:.0f}s before it), so setup overlapped the escalations")

        hwm_before = None
        wait_until = due + timedelta(seconds=max(120.0, n * 0.2))
        progress.set(f"engine: waiting for level {MEASURED_LEVEL} of {MEASURED_CLOCK}", n)
        count_sql = "SELECT count(*) FILTER (WHERE level = 1), count(*) FILTER (WHERE level = 2) " \
                    "FROM notifications WHERE complaint_id LIKE $1 AND clock = $2"
        while True:
            now = datetime.now(timezone.utc)
            if hwm_before is None and now >= due - timedelta(seconds=warn + GUARD):
                hwm_before = worker.status_kib("VmHWM")
                meter.mark("window_start")
            l1, l2 = await ctx.pool.fetchrow(count_sql, like, MEASURED_CLOCK)
            progress.done = l2
            progress.extra = f" (level 1: {l1}/{n}; due in {(due - now).total_seconds():.1f}s)" if now < due \
                else f" (level 1: {l1}/{n}; {(now - due).total_seconds():.1f}s after due)"
            if l2 >= n or now > wait_until:
                break
            await asyncio.sleep(POLL)
        hwm_kib = worker.status_kib("VmHWM")
        meter.mark("window_end")
        progress.print()

        rows = await ctx.pool.fetch(
            "SELECT level, due_at, created_at FROM notifications WHERE complaint_id LIKE $1 AND clock = $2",
            like, MEASURED_CLOCK)
        level2 = [r for r in rows if r["level"] == MEASURED_LEVEL]
        level1 = [r for r in rows if r["level"] == 1]
        result = figures(level2, due, n)
        window_start = due - timedelta(seconds=warn + GUARD)
        window_end = max((r["created_at"] for r in level2), default=due)
        # The promise ladder's own load in the window: level 1 (warn_before earlier) and level 3.
        in_window = [r for r in rows if window_start <= r["created_at"] <= window_end]
        window_s = (window_end - window_start).total_seconds()
        background = await ctx.pool.fetchval(
            "SELECT count(*) FROM notifications WHERE complaint_id LIKE $1 AND clock <> $2 "
            "AND created_at BETWEEN $3 AND $4",
            like, MEASURED_CLOCK, due - timedelta(seconds=warn + GUARD), window_end)
        result.update(
            worker_peak_rss_kib=hwm_kib,
            worker_peak_rss_kib_before_escalations=hwm_before,
            worker_rss_kib_at_start=worker.ready_rss_kib,
            due_at=due.isoformat(),
            level1=figures(level1, due - timedelta(seconds=warn), n),
            setup={
                "open_seconds": round(open_s, 2),
                "promise_seconds": round(promise_s, 2),
                "lead_seconds": round(lead_s, 2),
                "due_deferred_seconds": plan.deferred_s,
                "quiet_window_found": plan.quiet,
            },
            other_escalations_written_in_window=background,
            promise_escalations_in_window={
                "from": window_start.isoformat(),
                "to": window_end.isoformat(),
                "by_level": {str(level): sum(1 for r in in_window if r["level"] == level) for level in (1, 2, 3)},
                "per_second": round(len(in_window) / window_s, 1) if window_s > 0 else None,
            },
            cpu={"open": meter.between("ready", "opened"), "promise": meter.between("opened", "promised"),
                 "burst": meter.between("window_start", "window_end")},
        )

        progress.set("engine: terminating the benchmark cases", n)
        await bounded(range(n), lambda i: _terminate(ctx.client, workflow_id_for(cid(i))), ctx.concurrency, progress)
        return result
    finally:
        status = await worker.stop()
        if status not in (0, None):
            say(f"engine worker exited with status {status}; its log: {worker.log_path}")


async def _terminate(client: Client, workflow_id: str) -> None:
    try:
        await client.get_workflow_handle(workflow_id).terminate(reason="escalation benchmark finished")
    except Exception:
        pass  # already closed: nothing to stop


# --- the bare side --------------------------------------------------------------


async def run_bare(ctx: "Run", progress: Progress) -> dict[str, Any]:
    n = ctx.cases
    await ctx.pool.execute(CREATE_BARE_TABLE)
    ids = [f"{ctx.bare_prefix}{i:05d}" for i in range(n)]
    ctx.to_delete.extend(ids)
    worker = await ctx.start_worker("bare", ctx.bare_queue)
    meter = CpuMeter({"worker": worker.pid, "temporal_server": ctx.server_pid})
    try:
        # A start is one cheap RPC: BARE_STARTS_PER_SECOND is a conservative rate for this machine.
        due = datetime.now(timezone.utc) + timedelta(seconds=n / BARE_STARTS_PER_SECOND + LEAD)
        meter.mark("ready")

        async def start(wid: str) -> None:
            await ctx.client.start_workflow(
                "BenchSleepThenNoop", BareInput(run_id=ctx.run_id, due_at=due), id=wid, task_queue=ctx.bare_queue)

        progress.set(f"bare: starting SleepThenNoop due {due.strftime('%H:%M:%S.%f')[:-3]}", n)
        t0 = time.monotonic()
        await bounded(ids, start, ctx.concurrency, progress)
        start_s = time.monotonic() - t0
        meter.mark("started")
        lead_s = (due - datetime.now(timezone.utc)).total_seconds()
        if lead_s < 1:
            say(f"bare: warning: the last workflow started {lead_s:.1f}s before the due instant")

        hwm_before = None
        wait_until = due + timedelta(seconds=max(120.0, n * 0.2))
        progress.set("bare: waiting for the no-op activities", n)
        while True:
            now = datetime.now(timezone.utc)
            if hwm_before is None and now >= due - timedelta(seconds=GUARD):
                hwm_before = worker.status_kib("VmHWM")
                meter.mark("window_start")
            seen = await ctx.pool.fetchval(f"SELECT count(*) FROM {BARE_TABLE} WHERE run_id = $1", ctx.run_id)
            progress.done = seen
            progress.extra = f" (due in {(due - now).total_seconds():.1f}s)" if now < due \
                else f" ({(now - due).total_seconds():.1f}s after due)"
            if seen >= n or now > wait_until:
                break
            await asyncio.sleep(POLL)
        hwm_kib = worker.status_kib("VmHWM")
        meter.mark("window_end")
        progress.print()
        rows = await ctx.pool.fetch(f"SELECT due_at, created_at FROM {BARE_TABLE} WHERE run_id = $1", ctx.run_id)
        result = figures(list(rows), due, n)
        result.update(
            worker_peak_rss_kib=hwm_kib,
            worker_peak_rss_kib_before_escalations=hwm_before,
            worker_rss_kib_at_start=worker.ready_rss_kib,
            due_at=due.isoformat(),
            setup={"start_seconds": round(start_s, 2), "lead_seconds": round(lead_s, 2)},
            cpu={"start": meter.between("ready", "started"), "burst": meter.between("window_start", "window_end")},
        )
        if len(rows) < n:
            await bounded(ids, lambda wid: _terminate(ctx.client, wid), ctx.concurrency, progress)
        return result
    finally:
        status = await worker.stop()
        if status not in (0, None):
            say(f"bare worker exited with status {status}; its log: {worker.log_path}")


# --- the run ------------------------------------------------------------------------


@dataclass
class Run:
    cases: int
    concurrency: int
    pool_size: int
    window: float
    worker_log_level: str
    client: Client
    pool: Any
    address: str
    namespace: str
    database_url: str
    roster: Roster
    policies: Any
    log_dir: Path
    server_pid: int | None = None
    max_cached_workflows: int | None = None
    run_id: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(2))
    to_delete: list[str] = field(default_factory=list)

    @property
    def case_prefix(self) -> str:
        return f"BENCH-ESC-{self.run_id}-"

    @property
    def bare_prefix(self) -> str:
        return f"bench-bare-{self.run_id}-"

    @property
    def engine_queue(self) -> str:
        return f"bench-escalations-{self.run_id}-engine"

    @property
    def bare_queue(self) -> str:
        return f"bench-escalations-{self.run_id}-bare"

    async def start_worker(self, kind: str, task_queue: str) -> WorkerProcess:
        return await start_bench_worker(
            kind, address=self.address, namespace=self.namespace, database_url=self.database_url,
            task_queue=task_queue, pool_size=self.pool_size, log_level=self.worker_log_level,
            log_path=self.log_dir / f"{self.run_id}-{kind}-worker.log",
            max_cached_workflows=self.max_cached_workflows,
        )


async def cleanup(ctx: Run, progress: Progress) -> None:
    progress.set("cleanup: deleting the benchmark's workflows", len(ctx.to_delete))

    async def delete(wid: str) -> None:
        try:
            await ctx.client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(namespace=ctx.namespace, workflow_execution=WorkflowExecution(workflow_id=wid)))
        except Exception:
            pass  # already gone

    await bounded(ctx.to_delete, delete, ctx.concurrency, progress)
    # Deletion is asynchronous on the server: wait for it here, so that it does not load the
    # server during whatever comes next (or, for the embedded server, at its next start).
    query = f"TaskQueue = '{ctx.engine_queue}' OR TaskQueue = '{ctx.bare_queue}'"
    progress.set("cleanup: waiting for the server to finish deleting")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            left = (await ctx.client.count_workflows(query)).count
        except Exception as error:
            say(f"cleanup: cannot count the remaining workflows ({type(error).__name__}: {error})")
            break
        progress.extra = f": {left} left"
        if left == 0:
            break
        await asyncio.sleep(1)
    like = ctx.case_prefix + "%"
    async with ctx.pool.acquire() as conn, conn.transaction():
        for table in ("notifications", "case_events", "promises", "cases"):
            await conn.execute(f"DELETE FROM {table} WHERE complaint_id LIKE $1", like)
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", BARE_TABLE)
        if exists:
            await conn.execute(f"DELETE FROM {BARE_TABLE} WHERE run_id = $1", ctx.run_id)
            if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {BARE_TABLE})"):
                await conn.execute(f"DROP TABLE {BARE_TABLE}")
    say("cleanup: workflows deleted, rows removed")


def ratio(engine: float | None, bare: float | None) -> str:
    if engine is None or bare is None or bare == 0:
        return "n/a"
    return f"{engine / bare:.1f}x"


def table(engine: dict[str, Any], bare: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    def late(side: dict[str, Any], key: str) -> float | None:
        return side.get("lateness_ms", {}).get(key)

    def mib(side: dict[str, Any]) -> float | None:
        kib = side.get("worker_peak_rss_kib")
        return round(kib / 1024, 1) if kib else None

    rows = [
        ("lateness p50 (ms)", late(engine, "p50"), late(bare, "p50")),
        ("lateness p99 (ms)", late(engine, "p99"), late(bare, "p99")),
        ("lateness max (ms)", late(engine, "max"), late(bare, "max")),
        ("escalations/s", engine.get("escalations_per_second"), bare.get("escalations_per_second")),
        ("worker peak RSS (MiB)", mib(engine), mib(bare)),
    ]
    header = ("metric", "engine", "bare Temporal", "ratio (engine/bare)")
    cells = [header] + [(m, "-" if e is None else f"{e:g}", "-" if b is None else f"{b:g}", ratio(e, b)) for m, e, b in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    lines = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    ratios = {m: (None if ratio(e, b) == "n/a" else round(e / b, 2)) for m, e, b in rows}  # type: ignore[operator]
    return "\n".join(lines), ratios


def notes(engine: dict[str, Any], bare: dict[str, Any], warn: float) -> list[str]:
    """What the table does not say: the promise ladder's other levels, background, where the CPU went."""
    lines = []
    if engine:
        l1 = engine.get("level1", {}).get("lateness_ms", {})
        window = engine.get("promise_escalations_in_window", {})
        by_level = window.get("by_level", {})
        lines.append(
            f"engine: {engine.get('seen')}/{engine.get('expected')} level-{MEASURED_LEVEL} rows of {MEASURED_CLOCK}. "
            f"The same cases' level 1 fell due {warn:g}s earlier (lateness p50 {l1.get('p50')} ms, max {l1.get('max')} ms); "
            f"from {warn + GUARD:g}s before the due instant to the last level-2 row the worker wrote "
            f"{by_level.get('1')} level-1, {by_level.get('2')} level-2 and {by_level.get('3')} level-3 rows "
            f"({window.get('per_second')} promise escalations/s), and "
            f"{engine.get('other_escalations_written_in_window')} rows of other clocks."
        )
        setup = engine.get("setup", {})
        lines.append(
            f"engine setup: {setup.get('open_seconds')}s to open the cases, {setup.get('promise_seconds')}s to make the promises, "
            f"then {setup.get('lead_seconds')}s to the due instant"
            + (" (placed after the other clocks' levels)" if setup.get("quiet_window_found") else " (no quiet window found)")
        )
    for name, side in (("engine", engine), ("bare", bare)):
        burst = side.get("cpu", {}).get("burst", {})
        if burst:
            lines.append(
                f"{name} burst, {burst.get('wall_seconds')}s: worker {burst.get('worker_cores', '?')} cores, "
                f"Temporal server {burst.get('temporal_server_cores', '?')} cores, machine {_percent(burst.get('machine_busy'))} busy"
            )
    return lines


def _percent(share: float | None) -> str:
    return "?" if share is None else f"{share * 100:.0f}%"


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
    parser = argparse.ArgumentParser(prog="python -m bench.escalations", description=__doc__.splitlines()[0])
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


if __name__ == "__main__":
    main()
