"""The crash drills the session will assert on, started as soon as the tests are collected (a pytest plugin).

A drill is a process with servers of its own (`python -m drills.crash`), and it spends most of its
three minutes waiting on its cases' clocks and its own outages. Started at collection, it runs beside
the rest of the suite instead of after half of it; tests/system/test_crash_drills.py waits for its result.
Only the seeds of selected tests start, and any drill still running when the session ends is stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.paths import REPO

CASES = 50
# The cases' own limit inside the drill: they take about 2-3 minutes beside the suite.
CASE_TIMEOUT = 300
DRILL_TEST = "test_crash_drills"


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


def start_drill(seed: int) -> DrillRun:
    work_dir = Path(tempfile.mkdtemp(prefix=f"crash-drill-{seed}-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS", "COMPLAINTS_DATA_DIR")}
    if os.environ.get("CRASH_DRILL_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["CRASH_DRILL_DATABASE_URL"]  # a scratch database on that server
    cmd = [
        sys.executable, "-m", "drills.crash", "--cases", str(CASES), "--seed", str(seed), "--timeout", str(CASE_TIMEOUT),
        "--work-dir", str(work_dir / "work"), "--json", str(work_dir / "summary.json"),
    ]  # fmt: skip
    with open(work_dir / "stdout.txt", "w") as out, open(work_dir / "stderr.txt", "w") as err:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err)
    return DrillRun(seed, work_dir, process)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    seeds = sorted({item.callspec.params["seed"] for item in session.items
                    if item.originalname == DRILL_TEST and hasattr(item, "callspec")})  # fmt: skip
    session.config._crash_drills = {seed: start_drill(seed) for seed in seeds}  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def crash_drills(request: pytest.FixtureRequest) -> dict[int, DrillRun]:
    """The drills started at collection, by seed."""
    return getattr(request.config, "_crash_drills", {})


def pytest_sessionfinish(session: pytest.Session) -> None:
    for run in getattr(session.config, "_crash_drills", {}).values():
        run.stop()
        shutil.rmtree(run.work_dir, ignore_errors=True)
