"""The two sides of the lifecycle benchmark, the engine and bare Temporal, each opening and working a
case on its own task queue, and one measured run of a side: N cases worked by the agents."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from bench.bare_lifecycle import UPDATE_NAME, WORKFLOW_TYPE
from bench.common import CpuMeter, latency_summary, ratio
from bench.plan import ACTIONS_PER_CASE, Agent, Ctx, intake, script
from complaint_client import ComplaintClient
from tools.harness.progress import Progress, say
from tools.harness.report import load_average
from tools.harness.worker import WorkerProcess


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
        ctx.measured("bare" if side_name == "bare" else "engine", wall)
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
