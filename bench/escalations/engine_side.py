"""The engine side: N demo cases, each with a promise due at one shared instant; measured, the
level-2 escalation of each promise (its row in notifications) and the worker's load around it."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

from bench.common import CpuMeter, bounded
from bench.escalations.cleanup import terminate
from bench.escalations.context import Run
from bench.escalations.figures import figures
from bench.escalations.plan import (
    GUARD,
    LEAD,
    MEASURED_CLOCK,
    MEASURED_LEVEL,
    POLICY,
    POLL,
    SEVERITY,
    background_instants,
    plan_due,
    promise_warn_seconds,
)
from complaint_client import ComplaintClient
from tools.harness.progress import Progress, say
from workflows.start_input import workflow_id_for


# How often an action is sent when the server gives up waiting for the case to take it (on a busy
# machine a case's workflow task can wait a minute); it goes under a request_id, so it applies once.
ACT_ATTEMPTS = 3

# Called once the promises are made, before the due instant (the delivery benchmark points the roster
# at its witness here, so that the set-up's escalations are not delivered).
BeforeBurst = Callable[[], Awaitable[None]]
# Called with the measured rows (id, complaint_id, level, due_at, created_at) once they are written, while the worker
# still runs; what it returns joins the side's figures (the delivery benchmark waits for arrivals here).
AfterBurst = Callable[[list[Any]], Awaitable[dict[str, Any]]]


async def run_engine(ctx: Run, progress: Progress, before_burst: BeforeBurst | None = None,
                     after_burst: AfterBurst | None = None) -> dict[str, Any]:
    n, prefix = ctx.cases, ctx.case_prefix
    engine = ComplaintClient(ctx.client, ctx.engine_queue, read_your_writes=True)  # it plans from the snapshots in PostgreSQL
    owners = [a for a in ctx.roster.agents if a.role == "agent" and a.active and a.supervisor_id]
    like = prefix + "%"

    def owner_of(i: int) -> Any:
        return owners[i % len(owners)]

    def cid(i: int) -> str:
        return f"{prefix}{i:05d}"

    resent = 0

    async def act(i: int, name: str, action: dict[str, Any]) -> None:
        nonlocal resent
        for attempt in range(1, ACT_ATTEMPTS + 1):
            try:
                await engine.act(cid(i), name, {**action, "request_id": f"bench-{name}"})
                return
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                if attempt == ACT_ATTEMPTS:
                    raise
                resent += 1

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
        await act(i, "accept_ownership", {"actor": owner.id})
        await act(i, "contact_customer", {"actor": owner.id, "channel": "phone", "summary": "Called back"})

    async def promise(i: int, due: datetime) -> None:
        await act(i, "make_promise",
                  {"actor": owner_of(i).id, "description": "Call the customer back with the outcome", "due_at": due.isoformat()})

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
        plan = plan_due(earliest, instants, warn, ctx.window, ctx.max_defer)
        due = plan.due
        say(f"engine: {n} cases opened in {open_s:.1f}s; shared due instant {due.isoformat()} "
            f"({(due - datetime.now(timezone.utc)).total_seconds():.1f}s from now"
            + (f", deferred {plan.deferred_s}s to avoid other clocks' escalations)" if plan.quiet
               else f"; no quiet window within {ctx.max_defer:.0f}s: {plan.expected_background_in_window} other escalations may fall in it)"))

        progress.set(f"engine: make_promise due {due.strftime('%H:%M:%S.%f')[:-3]}", n)
        t1 = time.monotonic()
        await bounded(range(n), lambda i: promise(i, due), ctx.concurrency, progress)
        promise_s = time.monotonic() - t1
        if before_burst is not None:
            await before_burst()
        meter.mark("promised")
        promised_at = datetime.now(timezone.utc)
        lead_s = (due - promised_at).total_seconds()
        if lead_s < warn:
            say(f"engine: warning: the last promise was made {lead_s:.1f}s before the due instant "
                f"(level 1 fires {warn:.0f}s before it), so setup overlapped the escalations")

        hwm_before = None
        wait_until = due + timedelta(seconds=ctx.burst_wait if ctx.burst_wait is not None else max(120.0, n * 0.2))
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
            "SELECT id, complaint_id, level, due_at, created_at FROM notifications WHERE complaint_id LIKE $1 AND clock = $2",
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
                "actions_resent": resent,
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

        if after_burst is not None:
            result.update(await after_burst(level2))
        progress.set("engine: terminating the benchmark cases", n)
        await bounded(range(n), lambda i: terminate(ctx.client, workflow_id_for(cid(i))), ctx.concurrency, progress)
        return result
    finally:
        status = await worker.stop()
        if status not in (0, None):
            say(f"engine worker exited with status {status}; its log: {worker.log_path}")
