"""A worker subprocess driven by a drill or a benchmark: in a process of its own so that it can be
killed with -9 and started again, and so that its memory and CPU are its own.

The child (tools/harness/worker_entry.py) prints one line `ready` once it polls; its
stderr goes to a log file, whose tail is shown when it fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from tools.harness.progress import say

REPO = Path(__file__).resolve().parents[2]
# SIGTERM is a clean stop; a worker still running this long after it is killed.
STOP_GRACE = 30.0


class WorkerStartError(RuntimeError):
    """The worker did not print `ready` in time."""


class WorkerProcess:
    """`python -m <module> <args>`, started (again) at will; an exit the parent did not cause is recorded."""

    def __init__(self, module: str, args: Sequence[str], *, log_path: Path, env: Mapping[str, str],
                 name: str = "worker", ready_timeout: float = 60.0, tied_to_parent: bool = False) -> None:
        self.module = module
        self.args = list(args)
        self.log_path = log_path
        self.env = dict(env)
        self.name = name
        self.ready_timeout = ready_timeout
        # A session of its own (a Ctrl-C meant for the parent does not reach it) and SIGKILL when the parent dies.
        self.tied_to_parent = tied_to_parent
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0
        self.ready_rss_kib: int | None = None
        self.unexpected_exits: list[str] = []
        self._expecting_exit = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def status_kib(self, key: str) -> int | None:
        """A memory figure of /proc/<pid>/status in KiB: VmRSS (now), VmHWM (peak)."""
        return status_kib(self.pid, key)

    async def start(self) -> float:
        """Start it and wait for `ready`; return the seconds that took."""
        began = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        on_linux = sys.platform.startswith("linux")
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {self.name} start {self.starts + 1} at {datetime.now(timezone.utc).isoformat()}\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, *self.args,
                cwd=REPO, env={**os.environ, **self.env}, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=log,
                start_new_session=self.tied_to_parent,
                preexec_fn=_die_with_parent if self.tied_to_parent and on_linux else None,
            )  # fmt: skip
        self.starts += 1
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=self.ready_timeout)
        except asyncio.TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self._end(signal.SIGKILL)
            raise WorkerStartError(f"the {self.name} did not start; its log ({self.log_path}) ends:\n{tail(self.log_path)}")
        self.ready_rss_kib = self.status_kib("VmRSS")
        self._expecting_exit = False
        self._watch = asyncio.create_task(self._watch_exit(self.proc))
        return time.monotonic() - began

    async def kill(self) -> int:
        """kill -9; return the pid killed."""
        assert self.proc is not None
        pid = self.proc.pid
        await self._end(signal.SIGKILL)
        self.kills += 1
        return pid

    async def stop(self) -> int | None:
        """SIGTERM (a clean stop), SIGKILL after STOP_GRACE; the exit status."""
        return await self._end(signal.SIGTERM)

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        status = await proc.wait()
        if not self._expecting_exit:
            what = f"pid {proc.pid} exited by itself with status {status}"
            self.unexpected_exits.append(what)
            say(f"!! {self.name} {what}; its log: {self.log_path}")

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
                await asyncio.wait_for(proc.wait(), timeout=STOP_GRACE)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        return proc.returncode


def _die_with_parent() -> None:
    """In the child, before exec: if the parent dies (even by kill -9), the worker gets SIGKILL too."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def status_kib(pid: int | None, key: str) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
