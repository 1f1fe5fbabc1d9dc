"""The HTTP API against ComplaintClient: one action through each, in one run (`make bench-api`).

Its own dev server and embedded PostgreSQL in a temporary directory, a worker in signed mode, the API
in this process on a free port. Each round opens CASES cases, then adds NOTES notes to each, first
through ComplaintClient.act and then through POST /cases/{id}/actions/add_note (the order swapped each
round), AGENTS at a time; the latencies (ms) and actions per second of both, their ratios, and what
signing and checking one actor assertion costs. Prints a table and writes bench/results-api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import jwt
import uvicorn

from activities import create_pool
from api.app import create_app
from api.auth import Authenticator
from bench.common import latency_summary, ratio
from complaint_client import ComplaintClient
from identity.assertion import sign, verify
from identity.interceptors import SigningInterceptor
from identity.keys import new_signing_key
from identity.modes import WorkerIdentity
from stack.client import connect_client
from tools.harness.ports import free_port
from tools.harness.stack import OwnTemporal, prepare_database, start_postgres, stop_postgres
from worker import build_worker

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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    temporal, pg = OwnTemporal(work), await start_postgres(work)
    await temporal.start()
    pool = await create_pool(pg.url, min_size=2, max_size=20)
    try:
        await prepare_database(pool)
        key = new_signing_key("complaints-api", "api-1")
        plain = await connect_client(temporal.address)
        client = type(plain)(**{**plain.config(), "interceptors": [SigningInterceptor(key)]})
        task_queue = f"bench-api-{uuid.uuid4().hex[:6]}"
        async with build_worker(client, pool, task_queue, identity=WorkerIdentity("signed", key.trusted_keys())):
            engine = ComplaintClient(client, task_queue)
            auth = Authenticator(issuer=key.issuer, audience=AUDIENCE, key=key.private_key.public_key())
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(create_app(engine, pool, auth), host="127.0.0.1", port=port, log_config=None, access_log=False))
            server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.02)
            now = int(time.time())
            token = jwt.encode({"iss": key.issuer, "aud": AUDIENCE, "iat": now, "exp": now + 3600, "preferred_username": AGENT},
                               key.private_key, algorithm="EdDSA", headers={"kid": key.key_id})  # fmt: skip
            headers = {"Authorization": f"Bearer {token}"}
            rounds = []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=httpx.Limits(max_connections=args.agents)) as http:
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
            server.should_exit = True
            await serving
    finally:
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
    }  # fmt: skip


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
    result = asyncio.run(run(args))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    r = result["ratio"]
    print(f"api/client: p50 {r['p50']}x (goal <= 1.2), p99 {r['p99']}x, throughput {r['throughput']}x (goal >= 0.9); "
          f"an assertion: sign {result['assertion']['sign_us']} us, verify {result['assertion']['verify_us']} us")  # fmt: skip


if __name__ == "__main__":
    main()
