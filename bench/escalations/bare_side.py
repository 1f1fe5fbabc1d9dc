"""The bare side: N bench/bare.py workflows sleeping on one timer to a shared instant, then inserting
one row each; the least Temporal can do for an escalation, measured like the engine side."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.bare import BARE_TABLE, CREATE_BARE_TABLE, BareInput
from bench.common import CpuMeter, bounded
from bench.escalations.cleanup import terminate
from bench.escalations.context import Run
from bench.escalations.figures import figures
from bench.escalations.plan import GUARD, LEAD, POLL
from tools.harness.progress import Progress, say

# Bare workflows are started at least this fast (73/s measured with 1,000 on 2 busy cores).
BARE_STARTS_PER_SECOND = 40.0


async def run_bare(ctx: Run, progress: Progress) -> dict[str, Any]:
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
            await bounded(ids, lambda wid: terminate(ctx.client, wid), ctx.concurrency, progress)
        return result
    finally:
        status = await worker.stop()
        if status not in (0, None):
            say(f"bare worker exited with status {status}; its log: {worker.log_path}")
