"""The `delivery` section of `python -m bench`: for each N of --delivery-sizes, the escalation benchmark's
engine side (N cases, a promise each, all due at one instant) with a worker that delivers, and the
arrivals of each level-2 escalation at the SMTP sink and the webhook receiver."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Any

from activities import load_policies
from bench.delivery.arrivals import attempts, wait_for_arrivals
from bench.delivery.breakdown import breakdown
from bench.delivery.figures import GOAL_SHARE_MS, delivery_figures
from bench.escalations.context import Run
from bench.escalations.engine_side import run_engine
from bench.escalations.plan import MEASURED_CLOCK, MEASURED_LEVEL, POLICY
from bench.plan import Ctx
from config import load_settings
from tools.harness.delivery_witness import DeliveryWitness
from tools.harness.report import load_average
from tools.harness.stack import demo_roster

# Cases opened (and promises made) at a time, as the escalation benchmark's default.
CONCURRENCY = 50
# Seconds after the due instant kept free of the cases' other escalations when possible.
WINDOW = 10.0
# The level-2 rows are waited for max(300 s, 0.6 s per case) after the due instant (deliveries slow the
# escalations down: 921 of 1,000 were written within the escalation benchmark's 200 s on 2 cores).

DEFINITIONS = {
    "measured": f"level {MEASURED_LEVEL} of each case's {MEASURED_CLOCK} clock ({POLICY} policy): one notification "
                "per case, all due at one shared instant, to the owner's supervisor",
    "escalation_lateness": "created_at - due_at of the notification row (created_at: clock_timestamp() at the insert)",
    "arrival_after_due": "arrival - due_at: the email accepted by the SMTP sink (Message-ID <ntf-<id>.), the webhook "
                         "answered 2xx with a good signature by the receiver (webhook-id ntf-<id>); the first of each",
    "delivery_share": "arrival - created_at: the delivery's own part, after the escalation was written",
    "delivery_breakdown": "from the histories of up to 100 of the measured notifications' DeliveryWorkflows: row "
                          "commit to workflow start, and from the start to the first `deliver` starting, the time "
                          "its workflow tasks and activity tasks waited on the task queue (scheduled to started). "
                          "The durable path: a route the first try at commit delivered, that `deliver` finds "
                          "delivered and sends nothing",
    "delivery_attempts": "per channel: attempts, those delivered, and those delivered by the first try at commit "
                         "(attempt 0); the rows' final status",
    "percentiles": "nearest rank over the notifications that arrived; `missing` counts the others",
    "goal": f"p99 of the delivery share <= {GOAL_SHARE_MS:.0f} ms on each channel, every notification arrived",
}


async def section_delivery(ctx: Ctx) -> dict[str, Any]:
    settings = load_settings()
    policies = load_policies(settings.policies_path)
    runs = [await delivery_run(ctx, n, policies) for n in ctx.args.delivery_sizes]
    return {"runs": runs, "goal_met": all(r["delivery"]["goal"]["met"] for r in runs), "definitions": DEFINITIONS}


async def delivery_run(ctx: Ctx, n: int, policies: Any) -> dict[str, Any]:
    """One burst of n escalations, delivered by email and webhook to the witness of this run."""
    load_before = load_average()
    t0 = time.monotonic()
    async with AsyncExitStack() as cleanup:
        witness = DeliveryWitness(sender="bench@complaints.test", domain="bench.test")
        await witness.start(cleanup)
        # No channels while the cases are set up: the demo clocks escalate every few seconds then (several
        # rows per case), and delivering those would slow the set-up and load the burst. The roster is read
        # per notification (plan_delivery), so wiring it once the promises are made, before level 1 of
        # the promise clock, covers the burst; it is put back afterwards.
        await witness.silence_roster(ctx.pool)
        cleanup.push_async_callback(witness.restore_roster, ctx.pool)
        run = Run(
            cases=n, concurrency=CONCURRENCY, pool_size=ctx.args.pool_size, window=WINDOW,
            worker_log_level=ctx.args.worker_log_level, client=ctx.client, pool=ctx.pool, address=ctx.address,
            namespace=ctx.namespace, database_url=ctx.database_url, roster=demo_roster(), policies=policies,
            log_dir=ctx.log_dir / "delivery", server_pid=ctx.server_pid,
            max_cached_workflows=ctx.args.max_cached_workflows, max_defer=ctx.args.delivery_defer,
            burst_wait=max(300.0, n * 0.6), worker_env=witness.worker_env(),
        )  # fmt: skip

        async def after_burst(rows: list[Any]) -> dict[str, Any]:
            arrived = await wait_for_arrivals(witness, rows, ctx.progress, limit=max(600.0, n * 1.2))
            return {"delivery": delivery_figures(rows, arrived, n), "delivery_attempts": await attempts(ctx.pool, rows),
                    "delivery_breakdown": await breakdown(ctx.client, rows)}

        escalation = await run_engine(run, ctx.progress, before_burst=lambda: witness.wire_roster(ctx.pool),
                                      after_burst=after_burst)
    delivery = escalation.pop("delivery", None) or delivery_figures([], {}, n)
    return {
        "cases": n,
        "run_id": run.run_id,
        "delivery": delivery,
        "delivery_attempts": escalation.pop("delivery_attempts", {}),
        "delivery_breakdown": escalation.pop("delivery_breakdown", {}),
        "escalation": escalation,
        "seconds": round(time.monotonic() - t0, 1),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
