"""Fault injection: the plan's worker kills, dev server restart and database outage, one at a time, each
noted with the cases in flight; the outage also reads how the worker's activities retried through it."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drills.agents import CaseRun
from drills.plan import Plan
from drills.servers import Servers
from tools.harness.progress import say
from tools.harness.worker import WorkerProcess
from workflows.start_input import workflow_id_for

# Seconds between the end of one disruption (the worker or server back) and the start of the next.
SETTLE = 3.0


@dataclass
class Incident:
    at: float  # seconds after the cases were opened
    what: str
    in_flight: int


@dataclass
class OutageReport:
    seconds: float = 0.0
    connections_cut: int = 0
    connections_refused: int = 0
    worker_pid_before: int | None = None
    worker_pid_after: int | None = None
    worker_alive_after: bool = False
    retrying_activities: int = 0
    retrying_cases: int = 0
    max_attempt: int = 0
    backoff_seconds: list[float] = field(default_factory=list)
    activity_types: dict[str, int] = field(default_factory=dict)
    first_write_after_seconds: float | None = None
    # From the worker's log (regular and local activities alike): failed attempts during the outage,
    # in how many (case, activity type), and the seconds between successive failures of one of them.
    failed_attempts: int = 0
    failing_activities: int = 0
    retry_gaps_seconds: list[float] = field(default_factory=list)


class Chaos:
    """Runs the plan against the servers and the worker while the agents work the cases."""

    def __init__(self, plan: Plan, servers: Servers, worker: WorkerProcess, runs: list[CaseRun], t0: float,
                 server_stop: str, client: Any) -> None:
        self.plan = plan
        self.servers = servers
        self.worker = worker
        self.runs = runs
        self.t0 = t0
        self.server_stop = server_stop
        self.client = client
        self.incidents: list[Incident] = []
        self.server_restarts = 0
        self.worker_restarts = 0
        self.outage = OutageReport()
        self._settled = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def in_flight(self) -> int:
        return sum(not r.done for r in self.runs)

    def note(self, what: str) -> None:
        incident = Incident(round(self.now(), 1), what, self.in_flight())
        self.incidents.append(incident)
        say(f"[{incident.at:6.1f}s] {what} ({incident.in_flight} cases in flight)")

    async def _until(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - self.now()))

    async def run(self) -> None:
        events: list[tuple[float, str, Any]] = [(t, "kill", d) for t, d in zip(self.plan.kills, self.plan.kill_delays)]
        if self.plan.server_restart is not None:
            events.append((self.plan.server_restart, "server", None))
        if self.plan.outage_start is not None:
            events.append((self.plan.outage_start, "outage", None))
        for moment, kind, arg in sorted(events, key=lambda e: e[0]):
            # Late when the previous disruption took longer than planned: never two at once.
            await self._until(max(moment, self._settled))
            if not self.in_flight():
                self.note(f"no case in flight any more: {kind} at {moment:.1f}s skipped")
                continue
            if kind == "kill":
                await self.kill_worker(arg)
            elif kind == "server":
                await self.restart_server()
            else:
                await self.cut_database()
            self._settled = self.now() + SETTLE

    async def kill_worker(self, delay: float) -> None:
        pid = await self.worker.kill()
        self.note(f"worker killed (kill -9, pid {pid}); restarting it in {delay:.1f}s")
        await asyncio.sleep(delay)
        took = await self.worker.start()
        self.worker_restarts += 1
        self.note(f"worker restarted (pid {self.worker.pid}, ready in {took:.1f}s)")

    async def restart_server(self) -> None:
        self.note(f"Temporal dev server stopping ({'SIGKILL' if self.server_stop == 'kill' else 'SIGTERM'})")
        took = await self.servers.temporal.stop(self.server_stop)
        began = time.monotonic()
        await self.servers.temporal.start()
        self.server_restarts += 1
        self.note(f"Temporal dev server restarted on {self.servers.address}, same database file "
                  f"(stopped in {took:.1f}s, up again in {time.monotonic() - began:.1f}s)")

    async def cut_database(self) -> None:
        proxy = self.servers.proxy
        assert proxy is not None
        report = self.outage
        report.worker_pid_before = self.worker.pid
        refused_before = proxy.stats.refused
        log_offset = _size(self.worker.log_path)
        cut_at = time.monotonic()
        report.connections_cut = await proxy.cut()
        self.note(f"PostgreSQL cut for {self.plan.outage_seconds:g}s: {report.connections_cut} open connections reset, "
                  "new ones reset at once")
        # Read the retries from Temporal shortly before the database comes back.
        await asyncio.sleep(max(0.0, self.plan.outage_seconds - 4))
        await self._read_retries()
        await asyncio.sleep(max(0.0, cut_at + self.plan.outage_seconds - time.monotonic()))
        report.connections_refused = proxy.stats.refused - refused_before
        _read_failed_attempts(self.worker.log_path, log_offset, report)
        report.worker_pid_after = self.worker.pid
        report.worker_alive_after = self.worker.alive() and report.worker_pid_after == report.worker_pid_before
        proxy.restore()
        report.seconds = round(proxy.stats.outages[-1], 1)
        self.note(f"PostgreSQL back after {report.seconds:g}s: {report.connections_refused} connections refused meanwhile; "
                  f"worker pid {report.worker_pid_after} {'still up' if report.worker_alive_after else 'NOT the same live process'}; "
                  f"{report.retrying_activities} activities of {report.retrying_cases} cases were retrying "
                  f"(attempts up to {report.max_attempt}, backoff {backoffs_text(report.backoff_seconds)}); the worker's log: "
                  f"{report.failed_attempts} failed attempts by {report.failing_activities} (case, activity), "
                  f"{gaps_text(report.retry_gaps_seconds)} between one's attempts")
        await self._first_write_after()

    async def _read_retries(self) -> None:
        report = self.outage
        attempts: list[int] = []
        backoffs: set[float] = set()
        types: Counter[str] = Counter()
        cases = 0

        async def describe(run: CaseRun) -> None:
            nonlocal cases
            if run.done:
                return
            try:
                desc = await asyncio.wait_for(
                    self.client.get_workflow_handle(workflow_id_for(run.complaint_id)).describe(), 10)
            except Exception:
                return
            retrying = [a for a in desc.raw_description.pending_activities if a.attempt > 1]
            if retrying:
                cases += 1
            for activity in retrying:
                attempts.append(activity.attempt)
                types[activity.activity_type.name] += 1
                if activity.HasField("next_attempt_schedule_time") and activity.HasField("last_attempt_complete_time"):
                    gap = (activity.next_attempt_schedule_time.ToDatetime()
                           - activity.last_attempt_complete_time.ToDatetime()).total_seconds()
                    backoffs.add(round(gap))

        await asyncio.gather(*(describe(run) for run in self.runs))
        report.retrying_activities = len(attempts)
        report.retrying_cases = cases
        report.max_attempt = max(attempts, default=0)
        report.backoff_seconds = sorted(backoffs)
        report.activity_types = dict(types)

    async def _first_write_after(self) -> None:
        """How long after the database came back the worker's first write landed (read directly)."""
        pool = self.servers.pool
        assert pool is not None
        back = await pool.fetchval("SELECT now()")
        began = time.monotonic()
        ids = [r.complaint_id for r in self.runs]
        while time.monotonic() - began < 120:
            written = await pool.fetchval(
                "SELECT min(recorded_at) FROM case_events WHERE complaint_id = ANY($1::text[]) AND recorded_at >= $2",
                ids, back)
            if written is not None:
                self.outage.first_write_after_seconds = round((written - back).total_seconds(), 1)
                self.note(f"first event written {self.outage.first_write_after_seconds:g}s after PostgreSQL came back")
                return
            await asyncio.sleep(0.5)
        self.note("no event written within 120 s after PostgreSQL came back")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_failed_attempts(log_path: Path, offset: int, report: OutageReport) -> None:
    """Failed activity attempts the worker logged since `offset`, and the gaps between each one's attempts."""
    # Per case and activity type: a local activity's attempts each have an activity id of their own.
    attempts: dict[tuple[str, str], list[datetime]] = {}
    try:
        with log_path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        if '"Completing activity as failed"' not in line:
            continue
        try:
            entry = json.loads(line)
            key = (entry["workflow_id"], entry["activity_type"])
            attempts.setdefault(key, []).append(datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")))
        except (ValueError, KeyError):
            continue
    report.failed_attempts = sum(len(times) for times in attempts.values())
    report.failing_activities = len(attempts)
    gaps = {round((b - a).total_seconds()) for times in attempts.values() for a, b in zip(times, times[1:])}
    report.retry_gaps_seconds = sorted(gaps)


def gaps_text(values: list[float]) -> str:
    return ("{" + ", ".join(f"{v:g}" for v in values) + "} s") if values else "no repeated attempt"


def backoffs_text(values: list[float]) -> str:
    return ", ".join(f"{v:g}s" for v in values) if values else "none seen"
