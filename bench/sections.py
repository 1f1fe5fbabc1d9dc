"""The measurements of the lifecycle benchmark, one function per section (`--only` picks some): each
runs both sides the same way and returns its figures with the engine/bare ratios."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable

from bench.bare_lifecycle import SIGNAL_NAME, WORKFLOW_TYPE
from bench.common import bounded, latency_summary, ratio
from bench.plan import ACTIONS_PER_CASE, Ctx
from bench.sides import SIDES, BareSide, EngineSide, Side, both_sides, lifecycle_side, median_round
from config import load_settings
from tools.harness.worker import WorkerProcess

# Cases opened (and left waiting) at a time by the scale and fleet set-up.
OPEN_CONCURRENCY = 50


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
        t0 = time.perf_counter()
        result["engine"] = {
            "state": await timed(n_queries, lambda: engine.state(cid)),
            "timeline": await timed(n_queries, lambda: engine.timeline(cid)),
        }
        ctx.measured("engine", time.perf_counter() - t0)
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
        t0 = time.perf_counter()
        result["bare"] = {
            "state": await timed(n_queries, lambda: handle.query("state", result_type=dict)),
            "timeline": await timed(n_queries, lambda: handle.query("timeline", result_type=list)),
        }
        ctx.measured("bare", time.perf_counter() - t0)
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
        t0 = time.perf_counter()
        out[side_name] = {
            "workflows": count,
            "page_query": query,
            "page_rows": rows,
            "list_page_of_100": await timed(n_queries, page),
            "count": await timed(n_queries, lambda: ctx.client.count_workflows(everything)),
        }
        ctx.measured(side_name, time.perf_counter() - t0)
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
