"""The lifecycle benchmark's plan: the case every agent works (the same ten actions on both sides) and
the run's context (its servers, its options, its workers, each side's time and load)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.common import start_bench_worker
from tools.harness.progress import Progress
from tools.harness.report import load_average
from tools.harness.worker import WorkerProcess

ACTIONS_PER_CASE = 10


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
    # Per side (engine, bare): the seconds of its measured runs and the 1-minute load average at the end of each.
    side_seconds: dict[str, float] = field(default_factory=dict)
    side_loads: dict[str, list[float]] = field(default_factory=dict)

    async def start_worker(self, kind: str, label: str, *, count_db: Path | None = None) -> tuple[WorkerProcess, str]:
        queue = f"bench-{self.run_id}-{label}-{kind}"
        worker = await start_bench_worker(
            kind, address=self.address, namespace=self.namespace, database_url=self.database_url,
            task_queue=queue, pool_size=self.args.pool_size, log_level=self.args.worker_log_level,
            log_path=self.log_dir / f"{label}-{kind}.log",
            max_cached_workflows=self.args.max_cached_workflows,
            extra_args=["--count-db", str(count_db)] if count_db else (),
        )
        return worker, queue

    def measured(self, side: str, seconds: float) -> None:
        """A measured run of `side` ended after `seconds`: its time, and how busy the machine was then."""
        self.side_seconds[side] = self.side_seconds.get(side, 0.0) + seconds
        load = load_average()
        if load:
            self.side_loads.setdefault(side, []).append(load[0])

    def sides_summary(self) -> dict[str, Any]:
        return {
            side: {
                "seconds": round(self.side_seconds[side], 1),
                "load_average_1min": self.side_loads.get(side, []),
                "load_average_1min_mean": round(sum(loads) / len(loads), 2) if (loads := self.side_loads.get(side)) else None,
            }
            for side in sorted(self.side_seconds)
        }
