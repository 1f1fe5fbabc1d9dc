"""One run of the escalation benchmark: its servers and options, the names of its cases, workflows
and task queues (unique per run, so runs never meet), and the worker subprocess of each side."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.common import start_bench_worker
from bench.escalations.plan import MAX_DEFER
from schemas import Roster
from tools.harness.worker import WorkerProcess


@dataclass
class Run:
    """What both sides and the cleanup share; `to_delete` collects every workflow the run starts."""

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
    # How much later than planned the due instant may be put to find a quiet window (0: never put off).
    max_defer: float = MAX_DEFER
    # Seconds after the due instant the engine side waits for the measured rows (None: max(120, 0.2 per case)).
    burst_wait: float | None = None
    # Added to the workers' environment (the delivery benchmark's SMTP_URL, bench/delivery/).
    worker_env: dict[str, str] = field(default_factory=dict)
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
            max_cached_workflows=self.max_cached_workflows, env=self.worker_env,
        )
