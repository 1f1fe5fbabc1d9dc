"""The benchmark command still runs: `python -m bench` with every section at a tiny size (N = 5), and its
delivery section on its own with 3 escalations.

Not a timed test: it asserts that the command exits 0, prints its table, and
writes the JSON with every section and the machine description. The figures
themselves are for people (README, "Performance").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.integration


def _bench(tmp_path: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "DATABASE_URL")}
    env["COMPLAINTS_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.mark.starts_first
def test_the_bench_command_runs_every_section_and_writes_its_results(tmp_path: Path):
    output = tmp_path / "results.json"
    done = _bench(
        tmp_path,
        "--cases", "5", "--sizes", "5", "--agents", "5",
        "--latency-agents", "3", "--latency-cases", "3", "--latency-cases-single", "2",
        "--scale-cases", "20", "--fleet-cases", "30", "--db-cases", "3",
        "--queries", "5", "--query-events", "30",
        "--only", "lifecycle,latency,queries,scale,database,growth",  # delivery: the next test
        "--output", str(output),
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["complete"] is True
    assert set(results["sections"]) == {"lifecycle", "latency", "queries", "scale", "database", "growth"}
    lifecycle = results["sections"]["lifecycle"]
    for side in ("engine", "bare"):
        assert lifecycle[side]["cases"] == 5 and lifecycle[side]["update_latency_ms"]["count"] == 50
    assert lifecycle["ratio"]["cases_per_second"] > 0
    # Three rounds by default, the order swapped each round; the figures are the median round's.
    rounds = lifecycle["rounds"]
    assert [r["order"] for r in rounds] == ["bare, engine", "engine, bare", "bare, engine"]
    assert lifecycle["ratio"]["cases_per_second"] == sorted(r["ratio"] for r in rounds)[1]
    assert "round 2 (engine, bare): cases/s" in done.stdout
    assert set(results["sections"]["latency"]) == {"1", "3"}
    assert results["sections"]["queries"]["engine_case"]["event_count"] >= 30
    assert results["sections"]["queries"]["fleet"]["engine"]["workflows"] >= 30
    assert results["sections"]["scale"]["engine"]["lifecycle_with_cases_open"]["cases"] == 5
    assert results["sections"]["database"]["pool"]["round_trips_per_action"] > 0
    assert [run["cases"] for run in results["sections"]["growth"]["runs"]] == [5]
    machine = results["machine"]
    assert machine["cores"] and machine["memory_mib"] and machine["python"] and machine["temporalio"]
    assert machine["temporal_server"] and machine["postgresql"]
    assert "engine/bare" in done.stdout and "lifecycle N=5" in done.stdout
    # The run's own servers and data are gone; nothing was started on the demo's data dir.
    assert not any((tmp_path / "data" / "bench-lifecycle").iterdir())


def test_the_delivery_section_times_each_escalation_by_email_and_by_webhook(tmp_path: Path):
    output = tmp_path / "results.json"
    done = _bench(tmp_path, "--only", "delivery", "--delivery-sizes", "3", "--delivery-defer", "0",
                  "--output", str(output), timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["complete"] is True and set(results["sections"]) == {"delivery"}
    [run] = results["sections"]["delivery"]["runs"]
    assert run["cases"] == 3 and run["escalation"]["seen"] == 3
    delivery = run["delivery"]
    assert delivery["notifications"] == 3 and delivery["escalation_lateness_ms"]["count"] == 3
    for channel in ("email", "webhook"):
        assert delivery[channel]["arrived"] == 3 and delivery[channel]["missing"] == 0
        for figure in ("arrival_after_due_ms", "delivery_share_ms"):
            assert set(delivery[channel][figure]) == {"count", "p50", "p99", "max"}
        assert run["delivery_attempts"]["by_channel"][channel]["delivered"] == 3
        assert set(run["delivery_attempts"]["by_channel"][channel]) == {"attempts", "delivered", "at_commit"}
    assert delivery["goal"]["all_written"] is True and delivery["goal"]["all_arrived"] is True and isinstance(delivery["goal"]["met"], bool)
    # Read once every email and webhook arrived: a workflow whose `deliver` has not run yet is counted apart.
    assert run["delivery_breakdown"]["sampled"] + run["delivery_breakdown"]["not_yet_sent"] == 3
    assert "delivery N=3: escalation lateness p50 (ms)" in done.stdout and "webhook arrival after due p99" in done.stdout
    assert "goal: delivery p99 within 2 s" in done.stdout and "delivered by the first try at commit: email" in done.stdout
    assert not any((tmp_path / "data" / "bench-lifecycle").iterdir())
