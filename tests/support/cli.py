"""starter.py (the command line) run in-process, and the CLI tests' roster and engine.

starter.main() runs its own event loop, so each call runs in a thread
(asyncio.to_thread) while the worker keeps running in the test's loop.
Import `quiet_info_logs` (autouse) and `engine` into a test module to use them.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterator

import pytest

import starter
from complaint_client import ComplaintClient
from schemas import Roster
from tests.conftest import running_worker
from tests.support.intake import intake_for
from tests.support.logs import warnings_only

ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "cli-mia", "name": "Mia Manager", "role": "manager", "team": "ops", "authority_limit": 5000},
            {"id": "cli-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "billing", "supervisor_id": "cli-mia", "skills": ["billing"]},
            {"id": "cli-ana", "name": "Ana Agent", "role": "agent", "team": "billing", "supervisor_id": "cli-sam", "skills": ["billing"]},
            {"id": "cli-bob", "name": "Bob Agent", "role": "agent", "team": "billing", "supervisor_id": "cli-sam", "skills": ["billing"]},
        ]
    }
)
OWNER = "cli-ana"


def new_intake(**overrides) -> dict:
    """An intake of the CLI tests' roster, received by OWNER."""
    return intake_for(OWNER, "CLI", **overrides)


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `starter.py argv...` in-process; returns (exit status, stdout, stderr)."""
    capsys.readouterr()
    status = await asyncio.to_thread(starter.main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error(err: str, *expected: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got: {err!r}"
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture(autouse=True)
def quiet_info_logs() -> Iterator[None]:
    """The worker runs in this process: keep its info logs out of the CLI's captured output."""
    with warnings_only():
        yield


@pytest.fixture
async def engine(dev_env, pool, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ComplaintClient]:
    """A worker on a fresh task queue, and the CLI's environment pointed at it."""
    from activities.roster_store import load_roster

    await load_roster(pool, ROSTER)
    async with running_worker(dev_env.client, pool) as client:
        monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
        monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_env.client.namespace)
        monkeypatch.setenv("COMPLAINTS_TASK_QUEUE", client.task_queue)
        yield client
