"""Crash drills (issue 5): cases in flight survive kill -9 of the worker, a dev server restart and a database outage.

    .venv/bin/python -m drills.crash [--cases 50] [--seed N] [--kills 4] [--outage 30]

One run, on servers of its own: a Temporal dev server with a persistent
`--db-filename` in a temporary directory, on free ports (TEMPORAL_ADDRESS is
ignored: the drill must be able to restart the server), and PostgreSQL: the
embedded one in the same directory, or, when DATABASE_URL is set, a scratch
database created on that server and dropped afterwards. Migrations are applied
and the demo roster loaded. The worker (drills/worker_process.py: the
production worker.build_worker) runs as a subprocess and reaches PostgreSQL
only through a TCP proxy in this process (drills/proxy.py), so the database can
be made unreachable without touching the real server.

--cases complaints on the `demo` policy (clocks in seconds) are opened at once,
half through the problem door (ComplaintClient.start, a customer of their own
each) and half directly (start_case), and worked concurrently by simulated
agents through the typed client: accept, contact the customer, sometimes ask
for and receive information, promise something due in --promise-min..max
seconds, keep working the case (notes, contacts) until the promise has
escalated (level 1 to the owner, level 2 to the supervisor), keep it, propose
a resolution (sometimes rejected once by the customer), have the customer
confirm it, sometimes rate the handling; the case closes and the workflow
completes when the policy's 20 s feedback window ends. Every action carries a
request_id, and an agent retries an action (same request id, so at most once)
for as long as Temporal or the worker is away.

Meanwhile, at moments drawn from --seed:
  worker kills   --kills times: kill -9 of the worker process, then a restart
                 after 0.5-4 s; spread before, between and after the others
  server restart the dev server is stopped (SIGTERM, or SIGKILL with
                 --server-stop kill) and started again on the same port and
                 database file
  DB outage      --outage seconds: the proxy resets every open connection and
                 every new one; the worker must stay up (same pid, alive) while
                 its activities retry with backoff (the pending activities'
                 attempts and backoff intervals are read from Temporal before
                 the database comes back)

Then each case must complete (its workflow result, within --timeout; a case
whose workflow task keeps failing is reported as stuck, with the failure, as
soon as it is seen), and PostgreSQL is checked, on its own and against each
workflow's `timeline` query:
  gaps        seqs missing from case_events between 1 and the last one
  duplicates  a seq stored twice, an escalation (clock, level, occurrence)
              fired twice, or notified twice in the outbox
  lost        timeline events missing from case_events, and escalations
              without their notifications row
  mismatched  a stored event whose kind or actor differs from the timeline's at
              that seq, a stored event the timeline lacks, or a notifications
              row without its escalated event
  snapshot    the cases row not closed, with another outcome, or behind the
              events
and every case's promise must have escalated at levels 1 and 2 before it was
kept. Finally every case's and door's history is replayed with this checkout's
code (temporalio's Replayer): a history that does not replay is a case no
worker could take back after a restart. The worker logs each workflow
activation (drills/worker_process.py), so each such failure is classified by
comparing what ran live with the replay: `sdk` when the SDK gave the worker the
same jobs in other activations, or at another workflow.now(), than it gives a
replay (the workflow code is not at fault; README, "Crash drills"), `workflow`
when the same jobs at the same time gave other commands.

Prints the chaos log and a table of counts; --json PATH writes them too.
Exit status 0 when every case completed and every check is zero; 3 when the
only failures are histories that do not replay for the SDK's reason above (and
what follows from them: no timeline, stuck); 1 otherwise; 130 on Ctrl-C.
Every process and server it started is stopped, also on failure; the work
directory (servers' files, the worker's log, histories that do not replay) is
deleted after a passing run, unless --keep or --work-dir.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from activities import apply_migrations, create_pool
from activities.roster_store import load_roster
from complaint_client import CommandRejected, ComplaintClient
from config import load_settings
from drills.proxy import PgProxy, upstream_for
from drills.worker_process import DATABASE_URL_ENV, TRACE_ENV, trace_activations
from logs import configure_logging
from schemas import CaseOutcome, Roster
from schemas.state import TimelineEvent
from stack.client import connect_client, data_converter_for
from stack.process import exit_for_real
from workflows.complaint import workflow_id_for

REPO = Path(__file__).resolve().parent.parent
DEMO_ROSTER = REPO / "roster" / "demo.json"
POLICY = "demo"
CATEGORIES = ("billing", "payments", "delivery", "product", "service")
CHANNELS = ("email", "phone", "chat", "web")
# How long a restarted worker may take to print `ready` (imports and connecting, on a busy machine).
WORKER_READY_TIMEOUT = 120.0
# One attempt of one client call; a call that takes longer is abandoned and retried (same request id).
ATTEMPT_TIMEOUT = 90.0
# Exit status when every failure is a history Temporal cannot replay (README, "Crash drills").
EXIT_NONDETERMINISM_ONLY = 3
# Seconds between the end of one disruption (the worker or server back) and the start of the next.
SETTLE = 3.0

T = TypeVar("T")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class DrillError(RuntimeError):
    """The drill itself could not go on (a server or the worker would not start)."""


# --- the schedule -----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """When each disruption happens, in seconds after the cases are opened."""

    kills: list[float]
    kill_delays: list[float]  # seconds between each kill and the restart
    server_restart: float | None
    outage_start: float | None
    outage_seconds: float


def make_plan(rng: random.Random, kills: int, server_restart: bool, outage: float) -> Plan:
    """Kills spread over three windows (before the server restart, between it and the outage, after the
    outage), none within a few seconds of the other disruptions, at least 5 s apart."""
    restart_at = rng.uniform(14, 18) if server_restart else None
    anchor = restart_at if restart_at is not None else 16.0
    outage_at = anchor + rng.uniform(20, 24) if outage > 0 else None
    outage_end = (outage_at + outage) if outage_at is not None else anchor + 22
    windows = [(3.0, anchor - 4), (anchor + 8, anchor + 16), (outage_end + 3, outage_end + 20)]
    order = [0, 2, 1, 2]  # the first four kills: before, after, between, after again
    per_window: Counter[int] = Counter(order[i % len(order)] for i in range(kills))
    moments: list[float] = []
    for index, count in per_window.items():
        low, high = windows[index]
        for _ in range(200):  # rejection sampling for the spacing; falls back to even spacing
            picks = sorted(rng.uniform(low, high) for _ in range(count))
            if all(b - a >= 5 for a, b in zip(picks, picks[1:])):
                break
        else:
            step = (high - low) / (count + 1)
            picks = [low + step * (k + 1) for k in range(count)]
        moments.extend(picks)
    moments.sort()
    return Plan(
        kills=moments,
        kill_delays=[round(rng.uniform(0.5, 4.0), 2) for _ in moments],
        server_restart=restart_at,
        outage_start=outage_at,
        outage_seconds=outage,
    )


# --- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def _redacted(url: str) -> str:
    from stack import redact_url

    return redact_url(url)


class Servers:
    """The drill's Temporal dev server (restartable), its PostgreSQL, and the proxy in front of it."""

    def __init__(self, work_dir: Path, run_id: str) -> None:
        self.work_dir = work_dir
        self.run_id = run_id
        self.temporal_dir = work_dir / "temporal"
        self.port = free_port()
        self.ui_port = free_port()
        self.server: Any = None  # stack.temporal.DevServer
        self.database_url = ""
        self.database_kind = ""
        self.pool: asyncpg.Pool | None = None
        self.proxy: PgProxy | None = None
        self._embedded: Any = None
        self._scratch: tuple[str, str] | None = None  # (admin url, database) created by the drill

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, cleanup: AsyncExitStack) -> None:
        cleanup.push_async_callback(self.close)
        await self._start_postgres()
        self.pool = await create_pool(self.database_url, min_size=1, max_size=4)
        await apply_migrations(self.pool)
        await load_roster(self.pool, Roster.model_validate(json.loads(DEMO_ROSTER.read_text())))
        self.proxy = PgProxy(upstream_for(self.database_url))
        await self.proxy.start()
        await self.start_temporal()

    async def _start_postgres(self) -> None:
        given = os.environ.get("DATABASE_URL")
        if given:
            database = f"crash_drill_{self.run_id.replace('-', '_').lower()}"
            conn = await asyncpg.connect(given, timeout=30)
            try:
                await conn.execute(f'CREATE DATABASE "{database}"')
            finally:
                await conn.close()
            self._scratch = (given, database)
            self.database_url = _with_database(given, database)
            self.database_kind = f"scratch database {database} on DATABASE_URL ({_redacted(given)})"
            return
        from stack.postgres import start_embedded_postgres

        self._embedded = await asyncio.to_thread(start_embedded_postgres, self.work_dir)
        self.database_url = self._embedded.url
        self.database_kind = f"embedded PostgreSQL in {self._embedded.pgdata}"

    async def start_temporal(self) -> None:
        from stack.temporal import start_dev_server

        self.server = await start_dev_server(self.temporal_dir, port=self.port, ui_port=self.ui_port)
        if self.server.reused:
            raise DrillError(f"port {self.port} was taken by another Temporal server; the drill needs its own")

    async def stop_temporal(self, how: str) -> float:
        """Stop the dev server (SIGTERM, or SIGKILL for how='kill'); return how long stopping took."""
        began = time.monotonic()
        proc = self.server.process
        if how == "kill":
            proc.kill()
            await asyncio.to_thread(proc.wait)
        else:
            await self.server.aclose()
        return time.monotonic() - began

    async def postgres_version(self) -> str:
        assert self.pool is not None
        return str(await self.pool.fetchval("SHOW server_version"))

    async def close(self) -> None:
        errors: list[str] = []
        if self.server is not None:
            try:
                await self.server.aclose()
            except Exception as error:
                errors.append(f"dev server: {error}")
        if self.proxy is not None:
            await self.proxy.close()
        if self.pool is not None:
            await self.pool.close()
        if self._scratch is not None:
            admin, database = self._scratch
            try:
                conn = await asyncpg.connect(admin, timeout=30)
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                finally:
                    await conn.close()
            except Exception as error:
                errors.append(f"dropping {database}: {error}")
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)
        if errors:
            say("cleanup: " + "; ".join(errors))


# --- the worker subprocess --------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child, before exec: if the drill dies (even by kill -9), the worker gets SIGKILL too."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class WorkerProcess:
    """drills.worker_process, killed and restarted at will; any exit the drill did not cause is recorded."""

    def __init__(self, address: str, task_queue: str, database_url: str, log_path: Path, pool_size: int) -> None:
        self.address = address
        self.task_queue = task_queue
        self.database_url = database_url
        self.log_path = log_path
        self.pool_size = pool_size
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0
        self.unexpected_exits: list[str] = []
        self._expecting_exit = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> float:
        """Start it and wait for `ready`; return the seconds that took."""
        began = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, DATABASE_URL_ENV: self.database_url, TRACE_ENV: "1"}
        with self.log_path.open("ab") as log:
            log.write(f"\n--- worker start {self.starts + 1} at {datetime.now(timezone.utc).isoformat()}\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "drills.worker_process",
                "--address", self.address, "--namespace", "default", "--task-queue", self.task_queue,
                "--pool-size", str(self.pool_size),
                cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )  # fmt: skip
        self.starts += 1
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=WORKER_READY_TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self._end(signal.SIGKILL)
            raise DrillError(f"the worker did not start; its log ({self.log_path}) ends:\n{_tail(self.log_path)}")
        self._expecting_exit = False
        self._watch = asyncio.create_task(self._watch_exit(self.proc))
        return time.monotonic() - began

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        status = await proc.wait()
        if not self._expecting_exit:
            what = f"pid {proc.pid} exited by itself with status {status}"
            self.unexpected_exits.append(what)
            say(f"!! worker {what}; its log: {self.log_path}")

    async def kill(self) -> int:
        """kill -9; return the pid killed."""
        assert self.proc is not None
        pid = self.proc.pid
        await self._end(signal.SIGKILL)
        self.kills += 1
        return pid

    async def stop(self) -> int | None:
        """SIGTERM (a clean stop), SIGKILL after 30 s; the exit status."""
        if self.proc is None:
            return None
        return await self._end(signal.SIGTERM)

    async def _end(self, signum: int) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        self._expecting_exit = True
        if proc.returncode is None:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), timeout=30)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        return proc.returncode


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- agents -----------------------------------------------------------------------------


@dataclass
class CaseRun:
    index: int
    complaint_id: str
    customer_id: str
    via: str  # door or direct
    owner: str | None = None
    opened_as: str | None = None  # the door's or start_case's outcome
    promise_id: str | None = None
    rejected_first_resolution: bool = False
    asked_for_info: bool = False
    feedback: str | None = None  # given N, refused (window over), or None
    closed_status: str | None = None
    outcome: CaseOutcome | None = None
    error: str | None = None
    retries: int = 0  # client calls retried (the worker or the server was away)
    door_workflow_id: str | None = None  # the problem door it was opened through
    stuck: str | None = None  # the workflow task keeps failing: why (from the history)
    done: bool = False


class Agents:
    """The support floor: one task per case, acting through the typed client, retrying through outages."""

    def __init__(self, engine: ComplaintClient, deadline: float, promise_range: tuple[float, float], seed: int) -> None:
        self.engine = engine
        self.deadline = deadline  # loop time
        self.promise_range = promise_range
        self.seed = seed
        self.retry_kinds: Counter[str] = Counter()

    async def persist(self, run: CaseRun, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """call() until it answers: transient failures (server or worker away) are retried with backoff;
        a CommandRejected is the engine's answer and is raised. Every action carries its request_id,
        so a retried action is applied at most once."""
        loop = asyncio.get_running_loop()
        delay = 0.25
        while True:
            remaining = self.deadline - loop.time()
            try:
                return await asyncio.wait_for(call(), timeout=max(1.0, min(ATTEMPT_TIMEOUT, remaining)))
            except CommandRejected:
                raise
            except Exception as error:  # RPCError, update/query timeouts, a worker that went away mid-call
                run.retries += 1
                self.retry_kinds[type(error).__name__] += 1
                if loop.time() >= self.deadline:
                    raise DrillError(f"{run.complaint_id}: {what} still failing at the deadline: {type(error).__name__}: {error}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 4.0)

    async def act(self, run: CaseRun, step: str, action: str, payload: dict[str, Any]):  # type: ignore[no-untyped-def]
        payload = {**payload, "request_id": f"{run.complaint_id}:{step}"}
        return await self.persist(run, f"{action} ({step})", lambda: self.engine.act(run.complaint_id, action, payload))

    async def work(self, run: CaseRun) -> None:
        try:
            await self._work(run)
        except asyncio.CancelledError:
            if not run.stuck:
                raise
            run.error = f"stuck: {run.stuck}"  # the watchdog gave up on it
        except Exception as error:
            run.error = f"{type(error).__name__}: {error}"
            say(f"!! {run.complaint_id}: {run.error}")
        finally:
            run.done = True

    async def _work(self, run: CaseRun) -> None:
        rng = random.Random(f"{self.seed}:{run.index}")
        customer = f"customer:{run.customer_id}"
        cid = run.complaint_id
        await asyncio.sleep(run.index * 0.05)  # a burst, not one instant
        intake = {
            "complaint_id": cid,
            "customer": {"customer_id": run.customer_id, "name": f"Drill customer {run.index}"},
            "channel": rng.choice(CHANNELS),
            "category": rng.choice(CATEGORIES),
            "severity": rng.choice(("low", "medium", "high", "critical")),
            "summary": f"Crash drill complaint {run.index}: the order arrived damaged",
            "details": "Opened by drills/crash.py while the worker is killed and restarted.",
            "policy": POLICY,
            "facts": {"order_id": f"ORD-{run.index:05d}"},
        }
        if run.via == "door":
            started = await self.persist(run, "start (door)", lambda: self.engine.start(intake, wait_for_owner=None))
        else:
            started = await self.persist(run, "start_case", lambda: self.engine.start_case(intake, wait_for_owner=None))
        run.opened_as = started.outcome
        run.door_workflow_id = started.door_workflow_id
        if started.complaint_id != cid:
            raise DrillError(f"{cid}: the door routed the contact to {started.complaint_id} ({started.outcome})")
        run.owner = await self._owner(run)
        owner = run.owner

        await self._think(rng)
        await self.act(run, "accept", "accept_ownership", {"actor": owner})
        await self._think(rng)
        await self.act(run, "contact-1", "contact_customer",
                       {"actor": owner, "channel": intake["channel"], "summary": "Apologised; looking into it now"})
        if rng.random() < 0.4:
            run.asked_for_info = True
            await self._think(rng)
            await self.act(run, "ask", "request_info",
                           {"actor": owner, "fields": ["photo_reference"], "question": "Could you send a photo of the damage?"})
            await self._think(rng)
            await self.act(run, "answer", "provide_info",
                           {"actor": customer, "facts": {"photo_reference": f"IMG-{run.index:05d}"}, "channel": "email"})

        # A promise that slips: it escalates (owner warned, then the supervisor) before it is kept.
        state = None
        for attempt in range(1, 4):
            due = datetime.now(timezone.utc) + timedelta(seconds=rng.uniform(*self.promise_range))
            try:
                state = await self.act(run, f"promise-{attempt}", "make_promise",
                                       {"actor": owner, "description": "Courier collects the damaged parcel",
                                        "due_at": due.isoformat()})
                break
            except CommandRejected as refused:
                # Delayed past its due time by an outage: promise again, later.
                say(f"   {cid}: make_promise refused ({refused.message}); promising again")
        if state is None:
            raise DrillError(f"{cid}: make_promise refused three times")
        run.promise_id = state.promises[-1].promise_id
        notes = 0
        while True:
            await asyncio.sleep(rng.uniform(3, 9))
            state = await self.persist(run, "state", lambda: self.engine.state(cid))
            promise = next(p for p in state.promises if p.promise_id == run.promise_id)
            if promise.status == "overdue":
                break
            notes += 1
            if rng.random() < 0.5:
                await self.act(run, f"note-{notes}", "add_note", {"actor": owner, "text": f"Chased the courier ({notes})"})
            else:
                await self.act(run, f"contact-{notes + 1}", "contact_customer",
                               {"actor": owner, "channel": "email", "summary": f"Update {notes}: the courier is booked"})
        await self.act(run, "keep", "keep_promise",
                       {"actor": owner, "promise_id": run.promise_id, "evidence": "Courier collected it, late (ref CR-1)"})
        await self._think(rng)
        resolution = {"actor": owner, "resolution": "Replacement sent; the damaged parcel collected",
                      "root_cause": "Parcel packed without corner protection"}
        await self.act(run, "propose-1", "propose_resolution", resolution)
        if rng.random() < 0.25:
            run.rejected_first_resolution = True
            await self._think(rng)
            await self.act(run, "reject", "confirm_resolution",
                           {"actor": customer, "satisfied": False, "comment": "The replacement is damaged too"})
            await self._think(rng)
            await self.act(run, "propose-2", "propose_resolution",
                           {**resolution, "resolution": "A second replacement, double boxed, and a refund of postage"})
        await self._think(rng)
        state = await self.act(run, "confirm", "confirm_resolution",
                               {"actor": customer, "satisfied": True, "comment": "Arrived intact, thanks"})
        run.closed_status = state.status
        if rng.random() < 0.5:
            score = rng.randint(1, 5)  # 1 or 2 notifies the supervisor through the outbox
            try:
                await self.act(run, "feedback", "record_feedback", {"actor": customer, "score": score})
                run.feedback = f"given {score}"
            except CommandRejected:
                run.feedback = "refused (window over)"
        # The workflow completes when the feedback window ends.
        handle = self.engine.client.get_workflow_handle(workflow_id_for(cid), result_type=CaseOutcome)
        run.outcome = await self.persist(run, "result", lambda: handle.result())

    async def _owner(self, run: CaseRun) -> str:
        while True:
            state = await self.persist(run, "state", lambda: self.engine.state(run.complaint_id))
            if state.owner:
                return state.owner
            await asyncio.sleep(0.5)

    @staticmethod
    async def _think(rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0.2, 1.5))


# --- the chaos --------------------------------------------------------------------------


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
        took = await self.servers.stop_temporal(self.server_stop)
        began = time.monotonic()
        await self.servers.start_temporal()
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
                  f"(attempts up to {report.max_attempt}, backoff {_backoffs(report.backoff_seconds)}); the worker's log: "
                  f"{report.failed_attempts} failed attempts by {report.failing_activities} (case, activity), "
                  f"{_gaps(report.retry_gaps_seconds)} between one's attempts")
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


def _gaps(values: list[float]) -> str:
    return ("{" + ", ".join(f"{v:g}" for v in values) + "} s") if values else "no repeated attempt"


def _backoffs(values: list[float]) -> str:
    return ", ".join(f"{v:g}s" for v in values) if values else "none seen"


# --- stuck cases ------------------------------------------------------------------------

# A case whose workflow task has failed this many times in a row is stuck (a nondeterminism error or
# a deadlocked task is retried for ever): the drill stops waiting for it and says why.
STUCK_ATTEMPTS = 3


async def watch_for_stuck_cases(runs: list[CaseRun], tasks: dict[str, asyncio.Task[None]], client: Any) -> None:
    while True:
        await asyncio.sleep(15)
        for run in runs:
            if run.done or run.stuck:
                continue
            why = await stuck_because(client, run.complaint_id)
            if why:
                run.stuck = why
                say(f"!! {run.complaint_id} is stuck: {why}")
                tasks[run.complaint_id].cancel()


async def stuck_because(client: Any, complaint_id: str) -> str | None:
    """Why the case's workflow task keeps failing, if it does (None: it does not, or Temporal is away)."""
    from temporalio.api.enums.v1 import EventType

    handle = client.get_workflow_handle(workflow_id_for(complaint_id))
    try:
        desc = await asyncio.wait_for(handle.describe(), 10)
        raw = desc.raw_description
        if not raw.HasField("pending_workflow_task") or raw.pending_workflow_task.attempt < STUCK_ATTEMPTS:
            return None
        history = await asyncio.wait_for(handle.fetch_history(), 30)
    except Exception:
        return None
    for event in reversed(history.events):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return None  # attempts that timed out (a killed worker), not a task that fails
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            return f"workflow task attempt {raw.pending_workflow_task.attempt} failing: {failure.message[:300]}"
    return None


@dataclass
class ReplayFailure:
    workflow_id: str
    failure: str
    # sdk: the worker processed the jobs of one workflow task in other activations than a replay of the
    # same history does (the workflow code is not at fault); workflow: the same jobs produced other
    # commands (a nondeterministic workflow); unknown: the worker's trace does not tell.
    cause: str = "unknown"
    evidence: str = ""

    def describe(self) -> str:
        return f"{self.failure} [cause: {self.cause}{'; ' + self.evidence if self.evidence else ''}]"


Activation = tuple[int, str, list[str], list[str]]  # history_length, workflow.now(), jobs, commands


def deferred_queries(worker_log: Path) -> int:
    """How many queries the worker's guard deferred (workflow_runner.py: a legacy query's catch-up refused)."""
    try:
        lines = worker_log.read_text(errors="replace").splitlines()
    except OSError:
        return 0
    return sum(1 for line in lines if '"event": "query deferred"' in line)


def live_activations(worker_log: Path) -> dict[str, list[Activation]]:
    """The activations each run went through when the worker processed it live (not replaying), in order,
    from the worker's `ACTIVATION` lines (drills/worker_process.py)."""
    import ast
    import re

    line_re = re.compile(
        r"^ACTIVATION run=(\S+) replaying=(True|False) history_length=(\d+) now=(\S+) jobs=(\[.*?\]) commands=(\[.*\])$"
    )
    found: dict[str, list[Activation]] = {}
    try:
        lines = worker_log.read_text(errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        match = line_re.match(line)
        if match is None or match[2] == "True":
            continue
        try:
            jobs, commands = ast.literal_eval(match[5]), ast.literal_eval(match[6])
        except (SyntaxError, ValueError):
            continue  # a line cut by another thread's output (older logs)
        if not jobs or jobs == ["remove_from_cache"] or all(j.startswith("query_workflow") for j in jobs):
            continue
        found.setdefault(match[1], []).append((int(match[3]), match[4], jobs, commands))
    return found


def _last_processing(group: list[Activation]) -> list[Activation]:
    """The last time a worker processed these events live: a task retried after its worker was killed
    runs the same jobs again (at the same or a later history length)."""
    start = 0
    for index in range(1, len(group)):
        if group[index][2] == group[start][2]:
            start = index
    return group[start:]


def classify(live: list[Activation], replayed: list[Activation]) -> tuple[str, str]:
    """Where the replay first differs from what ran live: ('sdk' | 'workflow' | 'unknown', evidence)."""
    previous = 0
    for length, now, jobs, commands in replayed:
        jobs = [j for j in jobs if j != "notify_has_patch"]  # a replay learns of patch markers; live never does
        if not jobs or jobs == ["remove_from_cache"] or all(j.startswith("query_workflow") for j in jobs):
            continue
        group = _last_processing([a for a in live if previous < a[0] <= length])
        previous = length
        live_jobs = [j for a in group for j in a[2]]
        live_commands = [c for a in group for c in a[3]]
        if not group:
            return "unknown", f"no live activation recorded up to history length {length}"
        if sorted(live_jobs) != sorted(jobs):
            return "unknown", f"at history length {length} the replay ran {jobs}, live ran {[a[2] for a in group]}"
        if live_commands == commands:
            continue
        if len(group) > 1 or live_jobs != jobs:
            return "sdk", (
                f"at history length {length} the worker ran jobs {[a[2] for a in group]} as {len(group)} "
                f"activation(s), commands {[a[3] for a in group]}; a replay of the same history runs {jobs} "
                f"as one, commands {commands}"
            )
        if group[0][1] != now:
            return "sdk", (
                f"at history length {length} the same jobs {jobs} ran with workflow.now() {group[0][1]} live and "
                f"{now} on replay, so they gave {live_commands} live and {commands} on replay"
            )
        return "workflow", (
            f"at history length {length} the same jobs {jobs} at the same workflow.now() {now} gave "
            f"{live_commands} live and {commands} on replay"
        )
    return "unknown", "no difference found in the activations"


async def replay_check(client: Any, workflow_ids: list[str], keep_dir: Path, worker_log: Path) -> dict[str, ReplayFailure]:
    """Replay every history with the code of this checkout: {workflow id: failure} for those that do not replay
    (their histories are written to keep_dir, as `temporal workflow show -o json` would).

    A history that does not replay is a case a worker cannot take back after a restart or a cache
    eviction (its workflow task would fail for ever), even if it happened to complete. Each failure
    is compared with the worker's trace of what ran live (classify).
    """
    from workflow_runner import replayer as workflow_replayer

    histories = []
    for workflow_id in workflow_ids:
        try:
            histories.append(await asyncio.wait_for(client.get_workflow_handle(workflow_id).fetch_history(), 60))
        except Exception as error:
            say(f"replay check: cannot fetch {workflow_id}: {type(error).__name__}: {error}")
    replayed: dict[str, list[Activation]] = {}
    trace_activations(lambda run_id, replaying, length, now, jobs, commands:
                      replayed.setdefault(run_id, []).append((length, now, jobs, commands)))
    replayer = workflow_replayer(client.data_converter)
    failures: dict[str, ReplayFailure] = {}
    live = live_activations(worker_log)
    async with replayer.workflow_replay_iterator(_aiter(histories)) as results:
        async for result in results:
            if result.replay_failure is None:
                continue
            history = result.history
            failure = ReplayFailure(history.workflow_id, str(result.replay_failure)[:300])
            failure.cause, failure.evidence = classify(live.get(history.run_id, []), replayed.get(history.run_id, []))
            failures[history.workflow_id] = failure
            keep_dir.mkdir(parents=True, exist_ok=True)
            (keep_dir / (history.workflow_id.replace("/", "_") + ".json")).write_text(history.to_json())
    return failures


async def _aiter(items: list[Any]) -> Any:
    for item in items:
        yield item


# --- the checks -------------------------------------------------------------------------


@dataclass
class Check:
    cases: int = 0
    completed: int = 0
    resolved: int = 0
    closed_snapshots: int = 0
    events: int = 0
    timeline_events: int = 0
    escalations: int = 0
    notifications: int = 0
    promise_escalated_l1_l2: int = 0
    escalations_by_level: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    duplicates: int = 0
    lost: int = 0
    mismatched: int = 0
    snapshot_problems: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)


async def verify(
    runs: list[CaseRun], engine: ComplaintClient, pool: asyncpg.Pool, agents: Agents,
    replay_failures: dict[str, ReplayFailure],
) -> Check:
    """PostgreSQL (the system of record) checked on its own for every case, then against each timeline query."""
    check = Check(cases=len(runs))
    ids = [r.complaint_id for r in runs]
    rows = await pool.fetch(
        "SELECT complaint_id, seq, kind, actor, CASE WHEN kind = 'escalated' THEN data END AS data "
        "FROM case_events WHERE complaint_id = ANY($1::text[]) ORDER BY complaint_id, seq",
        ids)
    notes = await pool.fetch(
        "SELECT complaint_id, clock, level, occurrence, event_seq FROM notifications WHERE complaint_id = ANY($1::text[])", ids)
    snapshots = {r["complaint_id"]: r for r in await pool.fetch(
        "SELECT complaint_id, status, outcome, last_seq FROM cases WHERE complaint_id = ANY($1::text[])", ids)}
    stored: dict[str, list[asyncpg.Record]] = {cid: [] for cid in ids}
    for row in rows:
        stored[row["complaint_id"]].append(row)
    outbox: dict[str, list[asyncpg.Record]] = {cid: [] for cid in ids}
    for row in notes:
        outbox[row["complaint_id"]].append(row)
    check.events = len(rows)
    check.notifications = len(notes)
    levels: Counter[str] = Counter()

    async def timeline_of(run: CaseRun) -> list[TimelineEvent]:
        # The workflow's own `timeline` query (not ComplaintClient.timeline, which may fill in from PostgreSQL).
        if run.stuck:
            raise DrillError(f"no timeline: {run.stuck}")
        if workflow_id_for(run.complaint_id) in replay_failures:
            raise DrillError("no timeline: a query replays the history, which does not replay")
        handle = engine.handle(run.complaint_id)
        query = agents.persist(run, "timeline", lambda: handle.query("timeline", result_type=list[TimelineEvent]))
        return await asyncio.wait_for(query, 120)

    timelines = await asyncio.gather(*(timeline_of(r) for r in runs), return_exceptions=True)
    for run, timeline in zip(runs, timelines):
        cid = run.complaint_id
        if run.outcome is not None:
            check.completed += 1
            if run.outcome.outcome == "resolved":
                check.resolved += 1
            else:
                check.problem(f"{cid}: outcome {run.outcome.outcome}, expected resolved")
        else:
            check.problem(f"{cid}: did not complete ({run.error or 'no result'})")

        # case_events alone: seqs 1..N, each once.
        seqs = [r["seq"] for r in stored[cid]]
        check.duplicates += len(seqs) - len(set(seqs))  # the primary key forbids it; counted anyway
        last_stored = max(seqs, default=0)
        missing = sorted(set(range(1, last_stored + 1)) - set(seqs))
        check.gaps += len(missing)
        if missing:
            check.problem(f"{cid}: case_events lacks seqs {missing[:10]}")

        # Escalations in case_events against the outbox: each (clock, level, occurrence) fired once,
        # with exactly one notifications row pointing at its event, and no row without its event.
        escalated = [r for r in stored[cid] if r["kind"] == "escalated"]
        check.escalations += len(escalated)

        def key_of(data: dict[str, Any]) -> tuple[Any, Any, Any]:
            return (data.get("clock"), data.get("level"), data.get("occurrence", 1))

        fired = Counter(key_of(r["data"]) for r in escalated)
        for key, count in fired.items():
            if count > 1:
                check.duplicates += count - 1
                check.problem(f"{cid}: escalation {key} fired {count} times")
        rows_by_key = Counter((r["clock"], r["level"], r["occurrence"]) for r in outbox[cid])
        for key, count in rows_by_key.items():
            if count > 1:
                check.duplicates += count - 1
                check.problem(f"{cid}: escalation {key} has {count} notifications rows")
        seq_of = {key_of(r["data"]): r["seq"] for r in escalated}
        for key, seq in seq_of.items():
            if key not in rows_by_key:
                check.lost += 1
                check.problem(f"{cid}: escalation {key} (seq {seq}) has no notifications row")
        for row in outbox[cid]:
            key = (row["clock"], row["level"], row["occurrence"])
            if seq_of.get(key) != row["event_seq"]:
                check.mismatched += 1
                check.problem(f"{cid}: notifications row {key} (event_seq {row['event_seq']}) has no such escalated event")
        for r in escalated:
            clock = str(r["data"].get("clock"))
            levels[f"{'promise' if clock.startswith('promise:') else clock} L{r['data'].get('level')}"] += 1
        # The drill's promise escalated at levels 1 and 2 before it was kept.
        kept_at = next((r["seq"] for r in stored[cid] if r["kind"] == "promise_kept"), None)
        promise_levels = {r["data"].get("level") for r in escalated
                          if r["data"].get("clock") == f"promise:{run.promise_id}" and kept_at is not None and r["seq"] < kept_at}
        if {1, 2} <= promise_levels:
            check.promise_escalated_l1_l2 += 1
        else:
            check.problem(f"{cid}: promise {run.promise_id} escalated at levels {sorted(promise_levels)} before being kept")

        # The workflow's timeline against case_events: lost = in the timeline, not stored.
        last = last_stored
        if isinstance(timeline, BaseException):
            check.problem(f"{cid}: timeline query failed: {timeline}")
        else:
            by_seq = {r["seq"]: r for r in stored[cid]}
            timeline_seqs = [e.seq for e in timeline]
            # A case that continued as new holds the carried tail only (first seq > 1); the rest is in case_events.
            first = timeline_seqs[0] if timeline_seqs else 1
            last = first + len(timeline) - 1
            check.timeline_events += last if timeline else 0
            if timeline_seqs != list(range(first, last + 1)):
                check.problem(f"{cid}: the timeline's seqs are not {first}..{last}")
                check.duplicates += len(timeline_seqs) - len(set(timeline_seqs))
            for event in timeline:
                row = by_seq.get(event.seq)
                if row is None:
                    check.lost += 1
                    check.problem(f"{cid}: event {event.seq} ({event.kind}) is in the timeline but not in case_events")
                elif (row["kind"], row["actor"]) != (event.kind, event.actor):
                    check.mismatched += 1
                    check.problem(f"{cid}: seq {event.seq} stored as {row['kind']}/{row['actor']}, "
                                  f"the timeline says {event.kind}/{event.actor}")
            extra = sorted(seq for seq in set(by_seq) - set(timeline_seqs) if seq >= first)
            if extra:
                check.mismatched += len(extra)
                check.problem(f"{cid}: case_events has seqs {extra[:10]} the timeline lacks")

        # The snapshot: closed, with the final outcome, and not behind the events.
        snap = snapshots.get(cid)
        expected_outcome = run.outcome.outcome if run.outcome else "resolved"
        if snap is None or snap["status"] != "closed" or snap["outcome"] != expected_outcome or snap["last_seq"] != last:
            check.snapshot_problems += 1
            what = "missing" if snap is None else f"status {snap['status']}, outcome {snap['outcome']}, last_seq {snap['last_seq']}"
            check.problem(f"{cid}: cases row {what}; expected closed, {expected_outcome}, last_seq {last}")
        else:
            check.closed_snapshots += 1
    check.escalations_by_level = dict(sorted(levels.items()))
    return check


# --- the run ----------------------------------------------------------------------------


@dataclass
class Options:
    cases: int
    seed: int
    kills: int
    outage: float
    server_restart: bool
    server_stop: str
    promise_min: float
    promise_max: float
    timeout: float
    pool_size: int
    work_dir: Path | None
    keep: bool
    json_path: Path | None


def table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {value}" for name, value in rows)


async def drill(opts: Options) -> int:
    began = time.monotonic()
    run_id = datetime.now(timezone.utc).strftime("%H%M%S") + "-" + secrets.token_hex(2)
    owned_dir = opts.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="crash-drill-")) if owned_dir else opts.work_dir.resolve()  # type: ignore[union-attr]
    work_dir.mkdir(parents=True, exist_ok=True)
    # Everything the settings put in a data dir (the embedded stack's encryption keys) goes to the work
    # dir, never ./data: this process and the worker subprocesses (which inherit it) share it.
    os.environ["COMPLAINTS_DATA_DIR"] = str(work_dir)
    data_converter_for(load_settings())  # creates the key file, if the settings want one, before any worker
    rng = random.Random(opts.seed)
    plan = make_plan(rng, opts.kills, opts.server_restart, opts.outage)
    say(f"crash drill {run_id}: {opts.cases} cases, seed {opts.seed}; work dir {work_dir}")
    say(f"plan (s after the cases open): kills at {', '.join(f'{k:.1f}' for k in plan.kills) or 'none'}; "
        f"server restart at {plan.server_restart and round(plan.server_restart, 1)}; "
        f"PostgreSQL cut at {plan.outage_start and round(plan.outage_start, 1)} for {plan.outage_seconds:g}s")
    passed = False
    status = 1
    summary: dict[str, Any] = {"run_id": run_id, "seed": opts.seed, "cases": opts.cases, "plan": asdict(plan)}
    worker: WorkerProcess | None = None
    try:
        async with AsyncExitStack() as cleanup:
            servers = Servers(work_dir, run_id)
            await servers.start(cleanup)
            assert servers.proxy is not None and servers.pool is not None
            pg_version = await servers.postgres_version()
            say(f"Temporal dev server {servers.address} (db {servers.temporal_dir / 'temporal.db'}); "
                f"{servers.database_kind} (PostgreSQL {pg_version}); worker reaches it through the proxy on port {servers.proxy.port}")
            task_queue = f"crash-drill-{run_id}"
            worker = WorkerProcess(servers.address, task_queue, servers.proxy.url_for(servers.database_url),
                                   work_dir / "worker.log", opts.pool_size)
            cleanup.push_async_callback(_stop_worker, worker)
            await worker.start()
            client = await connect_client(servers.address)
            engine = ComplaintClient(client, task_queue)

            runs = [
                CaseRun(i, f"DRILL-{run_id}-{i:03d}", f"CU-DRILL-{run_id}-{i:03d}", "door" if i % 2 == 0 else "direct")
                for i in range(1, opts.cases + 1)
            ]
            loop = asyncio.get_running_loop()
            agents = Agents(engine, loop.time() + opts.timeout, (opts.promise_min, opts.promise_max), opts.seed)
            t0 = time.monotonic()
            say(f"[   0.0s] opening {opts.cases} cases on the {POLICY} policy")
            working = [asyncio.create_task(agents.work(r), name=r.complaint_id) for r in runs]
            watchdog = asyncio.create_task(watch_for_stuck_cases(runs, {t.get_name(): t for t in working}, client))
            chaos = Chaos(plan, servers, worker, runs, t0, opts.server_stop, client)
            chaos_task = asyncio.create_task(chaos.run(), name="chaos")
            progress = asyncio.create_task(_progress(runs, t0))
            try:
                done, _ = await asyncio.wait({chaos_task, *working}, timeout=opts.timeout + 60,
                                             return_when=asyncio.FIRST_EXCEPTION)
                if chaos_task.done() and chaos_task.exception() is not None:
                    raise chaos_task.exception()  # type: ignore[misc]
                await asyncio.wait(working, timeout=max(1.0, opts.timeout + 60 - (time.monotonic() - t0)))
            finally:
                progress.cancel()
                watchdog.cancel()
                if not chaos_task.done():
                    chaos_task.cancel()
                    await asyncio.gather(chaos_task, return_exceptions=True)
                for task in working:
                    task.cancel()
                await asyncio.gather(*working, return_exceptions=True)
            cases_seconds = time.monotonic() - t0
            say(f"[{cases_seconds:6.1f}s] every agent is done; checking PostgreSQL against the timelines")
            if not worker.alive():
                await worker.start()  # the timeline queries of completed cases need a worker
            agents.deadline = asyncio.get_running_loop().time() + 180  # the checks' own time, however long the cases took
            say("replaying every case's and door's history with this checkout's code")
            doors = sorted({r.door_workflow_id for r in runs if r.door_workflow_id})
            replay_failures = await replay_check(
                client, [workflow_id_for(r.complaint_id) for r in runs] + doors,
                work_dir / "histories-that-do-not-replay", worker.log_path,
            )
            check = await verify(runs, engine, servers.pool, agents, replay_failures)
            worker_alive_at_end = worker.alive()
            stop_status = await worker.stop()

        agent_errors = [r for r in runs if r.error]
        stuck = [r for r in runs if r.stuck]
        failures = (
            len(replay_failures) +
            check.cases - check.completed + check.gaps + check.duplicates + check.lost + check.mismatched
            + check.snapshot_problems + (check.cases - check.promise_escalated_l1_l2) + len(agent_errors)
            + len(worker.unexpected_exits)
            + (0 if plan.outage_start is None or chaos.outage.worker_alive_after else 1)
            + (0 if worker_alive_at_end and stop_status == 0 else 1)
        )
        passed = failures == 0
        # Histories Temporal cannot replay because the SDK composed a workflow task's activations
        # differently live and on replay (classify; README, "Crash drills"): every problem of those
        # cases follows from it (stuck, no timeline). Every other problem is the engine's.
        # A case stuck on a nondeterminism error although its recorded history replays with this code:
        # the code is deterministic on that history, so what differed is what the SDK gave the worker.
        failed_live = sorted(
            r.complaint_id for r in stuck
            if "TMPRL1100" in (r.stuck or "") and workflow_id_for(r.complaint_id) not in replay_failures
        )
        nondeterministic = sorted(
            {w.removeprefix("complaint-") for w, f in replay_failures.items() if f.cause == "sdk"} | set(failed_live)
        )
        follows = ("did not complete", "timeline query failed", "stuck", "escalated at levels", "cases row")
        engine_problems = [
            text for text in check.problems
            + [f"{r.complaint_id}: {r.error}" for r in agent_errors] + worker.unexpected_exits
            + [f"{w} does not replay: {f.describe()}" for w, f in replay_failures.items() if f.cause != "sdk"]
            if not any(text.startswith(f"{cid}: ") and text.split(": ", 1)[1].startswith(follows) for cid in nondeterministic)
        ]
        engine_failures = (
            len(engine_problems)
            + (0 if plan.outage_start is None or chaos.outage.worker_alive_after else 1)
            + (0 if worker_alive_at_end and stop_status == 0 else 1)
        )
        status = 0 if passed else (EXIT_NONDETERMINISM_ONLY if engine_failures == 0 and nondeterministic else 1)
        runtime = time.monotonic() - began
        outage = chaos.outage
        deferred = deferred_queries(worker.log_path)
        rows: list[tuple[str, Any]] = [
            ("cases", check.cases),
            ("completed (workflow result)", check.completed),
            ("closed, resolved (cases row)", check.closed_snapshots),
            ("worker kills (kill -9)", worker.kills),
            ("worker restarts", chaos.worker_restarts),
            ("worker exits not caused by the drill", len(worker.unexpected_exits)),
            ("dev server restarts", chaos.server_restarts),
            ("DB outage (s)", outage.seconds),
            ("worker up through the outage", "yes" if outage.worker_alive_after else ("n/a" if plan.outage_start is None else "NO")),
            ("activities retrying in the outage", f"{outage.retrying_activities} in {outage.retrying_cases} cases, "
                                                  f"attempts up to {outage.max_attempt}, backoff {_backoffs(outage.backoff_seconds)}"),
            ("failed attempts in the worker's log", f"{outage.failed_attempts} by {outage.failing_activities} (case, activity), "
                                                    f"{_gaps(outage.retry_gaps_seconds)} apart"),
            ("first write after the outage (s)", outage.first_write_after_seconds),
            ("events (case_events)", check.events),
            ("events (timeline queries)", check.timeline_events),
            ("escalations (escalated events)", check.escalations),
            ("notifications (outbox rows)", check.notifications),
            ("promises escalated L1+L2 before kept", f"{check.promise_escalated_l1_l2}/{check.cases}"),
            ("client calls retried", sum(r.retries for r in runs)),
            ("queries deferred by the worker's guard", deferred),
            ("duplicates", check.duplicates),
            ("lost", check.lost),
            ("gaps", check.gaps),
            ("mismatched", check.mismatched),
            ("snapshot problems", check.snapshot_problems),
            ("stuck cases (workflow task failing)", len(stuck)),
            ("histories that do not replay", f"{len(replay_failures)} of {len(runs) + len(doors)}"),
            ("stuck although the history replays", len(failed_live)),
            ("agent errors", len(agent_errors)),
            ("runtime (s)", f"{runtime:.0f} (cases {cases_seconds:.0f})"),
        ]
        print(f"\nCrash drill {run_id} (seed {opts.seed}): {opts.cases} cases on the {POLICY} policy; "
              f"PostgreSQL {pg_version} ({'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded'})\n")
        print("Chaos:")
        for incident in chaos.incidents:
            print(f"  {incident.at:6.1f}s  {incident.what} [{incident.in_flight} in flight]")
        print("\nCounts:")
        print(table(rows))
        print("\nEscalations by clock and level: "
              + ", ".join(f"{k} {v}" for k, v in check.escalations_by_level.items()))
        opened = Counter(f"{r.via}:{r.opened_as}" for r in runs)
        print("Cases: " + ", ".join(f"{k} {v}" for k, v in sorted(opened.items()))
              + f"; asked for info {sum(r.asked_for_info for r in runs)}; "
              + f"first resolution rejected {sum(r.rejected_first_resolution for r in runs)}; "
              + f"feedback {Counter(r.feedback.split()[0] for r in runs if r.feedback)}")
        if agents.retry_kinds:
            print("Client calls retried, by error: " + ", ".join(f"{k} {v}" for k, v in agents.retry_kinds.most_common()))
        if check.problems or agent_errors or worker.unexpected_exits or replay_failures:
            print("\nProblems:")
            for text in check.problems[:40]:
                print(f"  - {text}")
            if len(check.problems) > 40:
                print(f"  ... and {len(check.problems) - 40} more")
            for run in agent_errors[:20]:
                print(f"  - {run.complaint_id}: {run.error}")
            for text in worker.unexpected_exits:
                print(f"  - worker {text}")
            for workflow_id, failure in sorted(replay_failures.items()):
                print(f"  - {workflow_id} does not replay: {failure.describe()}")
        if nondeterministic:
            print(f"\nTemporal SDK: {len(nondeterministic)} cases hit nondeterminism errors that are not the workflow "
                  "code's (their histories do not replay because the worker got a workflow task's jobs in other "
                  "activations, or at another workflow.now(), than a replay does; or the worker failed on a history "
                  f"that replays): {', '.join(nondeterministic)}. "
                  + ("nothing else went wrong. " if engine_failures == 0 else "")
                  + "See README, 'Crash drills'. Histories: " + str(work_dir / "histories-that-do-not-replay"))
        print(f"\nRESULT: {'PASS' if passed else 'FAIL'}"
              + ("" if passed else f" (logs kept in {work_dir})"))
        summary.update({
            "passed": passed,
            "exit_status": status,
            "nondeterministic_cases": nondeterministic,
            "engine_problems": engine_problems,
            "runtime_seconds": round(runtime, 1),
            "incidents": [asdict(i) for i in chaos.incidents],
            "counts": {
                "cases": check.cases, "completed": check.completed, "closed_snapshots": check.closed_snapshots,
                "kills": worker.kills, "worker_restarts": chaos.worker_restarts,
                "unexpected_worker_exits": len(worker.unexpected_exits), "server_restarts": chaos.server_restarts,
                "db_outage_seconds": outage.seconds, "events": check.events, "timeline_events": check.timeline_events,
                "escalations": check.escalations, "notifications": check.notifications,
                "promise_escalated_l1_l2": check.promise_escalated_l1_l2,
                "duplicates": check.duplicates, "lost": check.lost, "gaps": check.gaps,
                "mismatched": check.mismatched, "snapshot_problems": check.snapshot_problems,
                "agent_errors": len(agent_errors), "client_retries": sum(r.retries for r in runs),
                "deferred_queries": deferred,
                "stuck": len(stuck), "replay_failures": len(replay_failures), "stuck_although_replays": len(failed_live),
            },
            "outage": asdict(outage),
            "escalations_by_level": check.escalations_by_level,
            "problems": check.problems + [f"{r.complaint_id}: {r.error}" for r in agent_errors] + worker.unexpected_exits
            + [f"{w} does not replay: {f.describe()}" for w, f in sorted(replay_failures.items())],
        })
    except BaseException as error:
        summary.update({"passed": False, "error": f"{type(error).__name__}: {error}"})
        if not isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
            say(f"crash drill failed: {type(error).__name__}: {error}")
            if worker is not None:
                say(f"worker log ({worker.log_path}) ends:\n{_tail(worker.log_path)}")
        raise
    finally:
        if opts.json_path is not None:
            opts.json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if owned_dir and passed and not opts.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif not passed:
            say(f"work dir kept: {work_dir}")
    return status


async def _interruptible(work: Awaitable[int]) -> int:
    """Run `work`; SIGINT or SIGTERM cancels it, so every `finally` stops what it started."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    return await task


async def _stop_worker(worker: WorkerProcess) -> None:
    if worker.alive():
        await worker.stop()


async def _progress(runs: list[CaseRun], t0: float) -> None:
    while True:
        await asyncio.sleep(10)
        done = sum(r.outcome is not None for r in runs)
        closed = sum(r.closed_status == "closed" for r in runs)
        failed = sum(r.error is not None for r in runs)
        say(f"[{time.monotonic() - t0:6.1f}s] progress: {closed} closed, {done} completed, {failed} failed, "
            f"{sum(not r.done for r in runs)} in flight")


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m drills.crash", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--cases", type=int, default=50, help="cases in flight (default 50)")
    parser.add_argument("--seed", type=int, help="seed of the schedule and the agents' choices (default: random, printed)")
    parser.add_argument("--kills", type=int, default=4, help="kill -9 of the worker, each followed by a restart (default 4)")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds PostgreSQL is unreachable (default 30; 0: no outage)")
    parser.add_argument("--server-restart", action=argparse.BooleanOptionalAction, default=True,
                        help="restart the dev server once mid-flight (default: yes)")
    parser.add_argument("--server-stop", choices=("term", "kill"), default="term",
                        help="how the dev server is stopped for its restart (default term: SIGTERM)")
    parser.add_argument("--promise-min", type=float, default=25.0, help="earliest promise due time, s after making it (default 25)")
    parser.add_argument("--promise-max", type=float, default=55.0, help="latest promise due time (default 55)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for every case to complete (default 600)")
    parser.add_argument("--pool-size", type=int, default=10, help="the worker's database pool = its concurrent activities (default 10)")
    parser.add_argument("--work-dir", type=Path, help="where servers keep their files and the worker its log (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory after a passing run")
    parser.add_argument("--json", dest="json_path", type=Path, help="also write the counts as JSON here")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.kills < 0 or args.outage < 0 or args.pool_size < 1:
        parser.error("--cases and --pool-size must be at least 1, --kills and --outage at least 0")
    if not 8 <= args.promise_min <= args.promise_max:
        parser.error("need 8 <= --promise-min <= --promise-max (the demo policy warns 5 s before a promise is due)")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    return Options(
        cases=args.cases, seed=seed, kills=args.kills, outage=args.outage, server_restart=args.server_restart,
        server_stop=args.server_stop, promise_min=args.promise_min, promise_max=args.promise_max,
        timeout=args.timeout, pool_size=args.pool_size, work_dir=args.work_dir, keep=args.keep, json_path=args.json_path,
    )


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    configure_logging(load_settings().log_format, level="ERROR")
    # A client call abandoned by its attempt timeout (then retried) leaves temporalio futures whose
    # errors nobody reads: asyncio would log each one.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    status = 1

    try:
        status = asyncio.run(_interruptible(drill(opts)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        status = 130
    except Exception:
        status = 1
    finally:
        exit_for_real(status)


if __name__ == "__main__":
    main()
