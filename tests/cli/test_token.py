"""`starter.py token` with the real `temporal` CLI: a script acts in signed mode with a printed assertion.

A signed-mode worker on the session dev server trusts one issuer, whose signing key file is
COMPLAINTS_SIGNING_KEY for `starter.py token`; the `temporal` CLI sends the token with
`--headers actor-assertion=<JSON string>` (docs/security.md, "Signed actors").
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from identity.keys import new_signing_key, signing_key_json
from identity.modes import WorkerIdentity
from schemas import Roster
from tests.conftest import BIN_DIR
from tests.support.engine import Engine, end_cases, signing_as
from worker import build_worker

KEY = new_signing_key("scripts", "scripts-1")
TEMPORAL = str(BIN_DIR / "temporal")
OWNER = "tok-ana"
ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "tok-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "billing"},
            {"id": OWNER, "name": "Ana Agent", "role": "agent", "team": "billing", "supervisor_id": "tok-sam"},
        ]
    }
)


async def run(*command: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_a_printed_token_lets_the_temporal_cli_act_and_its_absence_is_refused(dev_env, pool, tmp_path: Path):
    from activities.roster_store import load_roster

    await load_roster(pool, ROSTER)
    key_file = tmp_path / "signing-key.json"
    key_file.write_text(signing_key_json(KEY))
    task_queue = f"token-{uuid.uuid4().hex[:8]}"
    plain = dev_env.client
    signing = signing_as(plain, KEY)
    async with build_worker(signing, pool, task_queue, identity=WorkerIdentity("signed", KEY.trusted_keys())):
        engine = Engine(signing, task_queue, read_your_writes=True, owner=OWNER, prefix="TOK", customer_prefix="cu-", policy="standard")
        complaint_id, _ = await engine.open()
        payload = tmp_path / "note.json"
        payload.write_text(json.dumps({"actor": OWNER, "text": "Called from a script"}, indent=2))
        env = {**os.environ, "COMPLAINTS_SIGNING_KEY": str(key_file)}
        status, token, err = await run(
            sys.executable, "starter.py", "token", "--as", OWNER, "--action", "add_note",
            "--case", complaint_id, "--payload", str(payload), env=env,
        )  # fmt: skip
        assert status == 0, err
        target = ("--address", plain.service_client.config.target_host, "--namespace", plain.namespace)
        update = (
            TEMPORAL, "workflow", "update", "execute", "--workflow-id", f"complaint-{complaint_id}", "--name", "add_note",
            "--input-file", str(payload), *target, "--disable-config-file", "--disable-config-env",
        )  # fmt: skip
        status, out, err = await run(*update)
        assert status != 0 and "no assertion" in out + err, out + err
        status, out, err = await run(*update, "--headers", f"actor-assertion={json.dumps(token.strip())}")
        assert status == 0, out + err
        [note] = [e for e in await engine.timeline(complaint_id) if e.kind == "note_added"]
        assert note.data["verified_by"] == {"iss": "scripts", "kid": "scripts-1"}
        await end_cases(engine, [complaint_id])
