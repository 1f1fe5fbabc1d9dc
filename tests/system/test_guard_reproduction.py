"""The guarded runner's reproduction (docs/decisions/0002-guarded-runner-reproduction.py), run as a reader would.

Without the guard, the SDK this project is pinned to still splits one workflow task's jobs after a
legacy query's catch-up, and the history does not replay: if an SDK upgrade changes that, this
test says so, and the guard's reason to exist is to be checked again. With the guard, it replays.
Each run starts its own dev server and takes about 15 s; the steps follow server timeouts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "decisions" / "0002-guarded-runner-reproduction.py"
NONDETERMINISM = "[TMPRL1100] Nondeterminism error: Timer fired event did not have expected timer id 1, it was 2!"


def reproduce(*flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.mark.parametrize(
    ("flags", "status", "says"),
    [((), 1, NONDETERMINISM), (("--guarded",), 0, "query deferred")],
    ids=["sdk-runner", "guarded-runner"],
)
def test_the_reproduction(flags, status, says):
    run = reproduce(*flags)
    output = run.stdout + run.stderr
    assert run.returncode == status, output[-3000:]
    assert says in output, output[-3000:]
