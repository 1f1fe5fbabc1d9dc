"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis), over real HTTP.

Generated requests, authorized as the owner of a real case (in a team of its own, so every case it
can read has a live worker), against every route: no answer is a 500, and
every status is one the document declares. The examples are drawn from a fixed seed (--seed), so the
verdict does not depend on chance; `make fuzz-api` explores with fresh seeds and more examples.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from activities.roster_store import load_roster
from tests.support.api import API_ROSTER, ISSUER, api_on, intake

FUZZER = "api-fuz"

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
# The suite's fixed draw; `make fuzz-api` sets a fresh seed and more examples (API_FUZZ_SEED, API_FUZZ_EXAMPLES).
SEED = int(os.environ.get("API_FUZZ_SEED") or 20261207)
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES") or 12)


async def test_no_generated_request_gets_a_500_or_an_undocumented_status(dev_env, pool, tmp_path: Path):
    await load_roster(pool, API_ROSTER)
    async with api_on(dev_env, pool, ISSUER) as (http, _):
        response = await http.post("/cases", json=intake(received_by=FUZZER), headers=ISSUER.staff(FUZZER))
        assert response.status_code == 201, response.text
        process = await asyncio.create_subprocess_exec(
            SCHEMATHESIS, "run", f"{str(http.base_url).rstrip('/')}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
            "--header", f"Authorization: Bearer {ISSUER.token(preferred_username=FUZZER, expires_in=900)}",
            "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--phases", "examples,fuzzing",
            "--report-dir", str(tmp_path), "--no-color",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 300)
    report = out.decode()
    assert process.returncode == 0, f"seed {SEED}:\n" + report[-6000:]
