"""The HTTP API against ComplaintClient: one action through each, in one run (`make bench-api`).

Its own dev server and embedded PostgreSQL in a temporary directory; the worker (signed mode) and the API
(`python -m api`, API_WITH_WORKER=false, tokens from an issuer whose JWKS this process serves) each in a
process of its own, as deployed; this process only sends the load. Each round opens CASES cases, then
adds NOTES notes to each, first through ComplaintClient.act and then through POST
/cases/{id}/actions/add_note (the order swapped each round), AGENTS at a time; the latencies (ms) and
actions per second of both, their ratios, and what signing and checking one actor assertion costs.
Prints a table and writes bench/results-api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx

from activities import create_pool
from api.auth import bearer_token
from bench.common import latency_summary, ratio
from complaint_client import ComplaintClient
from identity.assertion import sign, verify
from identity.interceptors import SigningInterceptor
from identity.keys import new_signing_key, signing_key_json
from logs import configure_logging
from stack.client import connect_client
from tools.harness.jwks import serving_jwks
from stack.ports import free_port
from tools.harness.stack import OwnTemporal, prepare_database, start_postgres, stop_postgres
from tools.harness.worker import REPO

RESULTS = Path(__file__).resolve().with_name("results-api.json")
AGENT = "c.nguyen"
AUDIENCE = "complaints-api"


def assertion_costs(n: int = 2000) -> dict[str, float]:
    """Microseconds to sign, and to verify, one actor assertion (EdDSA, PyJWT), in this process."""
    key = new_signing_key("bench", "b1")
    payload = {"actor": AGENT, "text": "Called the bank about the double charge"}
    now = datetime.now(timezone.utc)
    began = time.perf_counter()
    tokens = [sign(key.private_key, issuer="bench", key_id="b1", sub=AGENT, workflow_id="complaint-B1",
                   action="add_note", payload=payload, now=now) for _ in range(n)]  # fmt: skip
    signed = time.perf_counter()
    for token in tokens:
        verify(token, key.trusted_keys(), workflow_id="complaint-B1", action="add_note", payload=payload, now=now, actor=AGENT)
    verified = time.perf_counter()
    return {"sign_us": round((signed - began) / n * 1e6, 1), "verify_us": round((verified - signed) / n * 1e6, 1)}


async def timed_actions(cases: list[str], notes: int, agents: int, act: Callable[[str, int], Awaitable[Any]]) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for number in range(notes):
        for case in cases:
            queue.put_nowait((case, number))
    samples: list[float] = []

    async def agent() -> None:
        while not queue.empty():
            case, number = queue.get_nowait()
            began = time.perf_counter()
            await act(case, number)
            samples.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(agent() for _ in range(agents)))
    seconds = time.perf_counter() - began
    return {**latency_summary(samples), "actions_per_second": round(len(samples) / seconds, 1)}


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    temporal, pg = OwnTemporal(work), await start_postgres(work)
    await temporal.start()
    pool = await create_pool(pg.url, min_size=1, max_size=4)
    processes: list[subprocess.Popen] = []
    try:
        await prepare_database(pool)
        key = new_signing_key("complaints-api", "api-1")
        key_file = work / "signing-key.json"
        key_file.write_text(signing_key_json(key))
        task_queue = f"bench-api-{uuid.uuid4().hex[:6]}"
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "COMPLAINTS_", "OIDC_", "API_"))},
            "TEMPORAL_ADDRESS": temporal.address, "DATABASE_URL": pg.url, "COMPLAINTS_TASK_QUEUE": task_queue,
            "COMPLAINTS_DATA_DIR": str(work), "COMPLAINTS_ENCRYPTION_KEYS": "off", "COMPLAINTS_IDENTITY": "signed",
            "COMPLAINTS_SIGNING_KEY": str(key_file), "LOG_FORMAT": "json",
        }  # fmt: skip
        with serving_jwks(key.public_jwks()) as jwks_url:
            processes.append(start_process(["worker.py"], env, work / "worker.log"))
            api_env = {**env, "API_WITH_WORKER": "false", "API_HOST": "127.0.0.1", "API_PORT": str(port),
                       "OIDC_ISSUER": key.issuer, "OIDC_AUDIENCE": AUDIENCE, "OIDC_JWKS_URL": jwks_url}  # fmt: skip
            processes.append(start_process(["-m", "api"], api_env, work / "api.log"))
            plain = await connect_client(temporal.address)
            client = type(plain)(**{**plain.config(), "interceptors": [SigningInterceptor(key)]})
            engine = ComplaintClient(client, task_queue)
            headers = {"Authorization": f"Bearer {bearer_token(key, AGENT, audience=AUDIENCE)}"}
            rounds = []
            limits = httpx.Limits(max_connections=args.agents)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as http:
                await wait_ready(http, processes)
                for number in range(args.rounds):
                    cases = await open_cases(engine, args.cases, f"R{number}")

                    async def by_client(case: str, note: int) -> None:
                        await engine.act(case, "add_note", {"actor": AGENT, "text": f"client note {note}"})

                    async def by_api(case: str, note: int) -> None:
                        response = await http.post(f"/cases/{case}/actions/add_note", json={"text": f"api note {note}"}, headers=headers)
                        response.raise_for_status()

                    order = [("client", by_client), ("api", by_api)]
                    if number % 2:
                        order.reverse()
                    sides = {name: await timed_actions(cases, args.notes, args.agents, fn) for name, fn in order}
                    rounds.append({"order": [name for name, _ in order], **sides})
                    print(f"round {number + 1}: client p50 {sides['client']['p50']} ms, {sides['client']['actions_per_second']}/s;"
                          f" api p50 {sides['api']['p50']} ms, {sides['api']['actions_per_second']}/s", flush=True)  # fmt: skip
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        await pool.close()
        await temporal.aclose()
        await stop_postgres(pg)
    middle = sorted(rounds, key=lambda r: r["api"]["p50"] / r["client"]["p50"])[len(rounds) // 2]
    return {
        "cases": args.cases, "notes_per_case": args.notes, "agents": args.agents, "rounds": rounds, "median_round": middle,
        "ratio": {"p50": ratio(middle["api"]["p50"], middle["client"]["p50"]),
                  "p99": ratio(middle["api"]["p99"], middle["client"]["p99"]),
                  "throughput": ratio(middle["api"]["actions_per_second"], middle["client"]["actions_per_second"])},
        "assertion": assertion_costs(),
        "goal": {"p50": "<= 1.2", "throughput": ">= 0.9"},
        "machine": f"{os.cpu_count()} cores; the worker, the API and this load generator in three processes",
    }  # fmt: skip


async def wait_ready(http: httpx.AsyncClient, processes: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args} exited with {process.returncode} (see its log in the work dir)")
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not become ready")
        await asyncio.sleep(0.5)


async def open_cases(engine: ComplaintClient, count: int, label: str) -> list[str]:
    cases = []
    for number in range(count):
        complaint_id = f"BAPI-{label}-{uuid.uuid4().hex[:6]}-{number}"
        await engine.start_case({
            "complaint_id": complaint_id, "customer": {"customer_id": f"cu-{complaint_id}", "name": "Bench Customer"},
            "channel": "email", "category": "billing", "severity": "medium", "summary": "Benchmark case", "received_by": AGENT,
        })  # fmt: skip
        await engine.act(complaint_id, "accept_ownership", {"actor": AGENT})
        cases.append(complaint_id)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--notes", type=int, default=10, help="notes per case and side (default 10)")
    parser.add_argument("--agents", type=int, default=10, help="actions in flight at a time (default 10)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_logging("json", "WARNING")  # as in production, and quiet: both sides log alike
    result = asyncio.run(run(args))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    r = result["ratio"]
    print(f"api/client: p50 {r['p50']}x (goal <= 1.2), p99 {r['p99']}x, throughput {r['throughput']}x (goal >= 0.9); "
          f"an assertion: sign {result['assertion']['sign_us']} us, verify {result['assertion']['verify_us']} us")  # fmt: skip


if __name__ == "__main__":
    main()
