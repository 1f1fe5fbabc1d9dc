"""A crash drill for a test: a process with servers of its own (`python -m drills.crash`), its output in files.

Not started at collection, to run beside the suite: the load it adds (two cores busy) makes the Java
time-skipping server refuse, now and then, a workflow task that cancels a timer which has just fired
("invalid history builder state for action"), and that case never moves again (docs/testing.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tests.support.paths import REPO

CASES = 50
# The cases' own limit inside the drill: they take about 2-3 minutes.
CASE_TIMEOUT = 300


@dataclass
class DrillRun:
    seed: int
    work_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def summary_path(self) -> Path:
        return self.work_dir / "summary.json"

    @property
    def command(self) -> str:
        return f"python -m drills.crash --cases {CASES} --seed {self.seed}"

    def wait(self, timeout: float) -> tuple[str, str]:
        """Its stdout and stderr once it exits; on timeout it is stopped (SIGTERM: it stops its worker and
        servers, then kill) and subprocess.TimeoutExpired is raised."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return self.output()

    def output(self) -> tuple[str, str]:
        """What it printed so far (files, not pipes: nobody reads a pipe while the suite runs, and a full one
        would stop the drill)."""
        return tuple((self.work_dir / name).read_text(errors="replace") for name in ("stdout.txt", "stderr.txt"))  # type: ignore[return-value]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def running_drill(seed: int, work_dir: Path) -> Iterator[DrillRun]:
    """The drill of this seed, started in `work_dir`; stopped on the way out if it still runs."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS", "COMPLAINTS_DATA_DIR")}
    if os.environ.get("CRASH_DRILL_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["CRASH_DRILL_DATABASE_URL"]  # a scratch database on that server
    cmd = [
        sys.executable, "-m", "drills.crash", "--cases", str(CASES), "--seed", str(seed), "--timeout", str(CASE_TIMEOUT),
        "--work-dir", str(work_dir / "work"), "--json", str(work_dir / "summary.json"),
    ]  # fmt: skip
    with open(work_dir / "stdout.txt", "w") as out, open(work_dir / "stderr.txt", "w") as err:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err)
    run = DrillRun(seed, work_dir, process)
    try:
        yield run
    finally:
        run.stop()
