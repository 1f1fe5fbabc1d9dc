"""The HTTP API on a real port, over a real worker, with an OIDC issuer whose JWKS the test serves over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterator

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from api.app import create_app
from api.auth import Authenticator
from api.serve import served
from complaint_client import ComplaintClient
from identity.interceptors import SigningInterceptor
from identity.keys import new_signing_key
from identity.modes import WorkerIdentity
from schemas import Roster
from tools.harness.jwks import serving_jwks
from tracing import instrumented, temporal_interceptors
from worker import build_worker

ISSUER_URL = "https://idp.test"
AUDIENCE = "complaints-api"


class OidcIssuer:
    """An OIDC issuer for tests: an ES256 key whose JWKS it serves over HTTP, and the tokens it signs."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private_key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "test-1", "alg": "ES256", "use": "sig"}]}

    def token(self, *, expires_in: int = 300, audience: str = AUDIENCE, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER_URL, "aud": audience, "iat": now, "exp": now + expires_in, "sub": str(uuid.uuid4()), **claims}
        return jwt.encode(body, self.private_key, algorithm="ES256", headers={"kid": "test-1"})

    def staff(self, agent_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(preferred_username=agent_id)}"}

    def customer(self, customer_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(customer_id=customer_id)}"}

    def system(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(client_id=name)}"}

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        with serving_jwks(self.jwks) as url:
            yield url


ISSUER = OidcIssuer()


@asynccontextmanager
async def api_on(
    env: Any, pool: Any, issuer: OidcIssuer, tracer_provider: Any = None
) -> AsyncIterator[tuple[httpx.AsyncClient, ComplaintClient]]:
    """A signed-mode worker, the API signing for it, served by uvicorn on a free port; an HTTP client at it.

    tracer_provider: trace the API and Temporal into it (tracing.py), as OTEL_EXPORTER_OTLP_ENDPOINT would.
    """
    signing_key = new_signing_key("complaints-api", "api-1")
    plain = env.client
    interceptors = [SigningInterceptor(signing_key), *temporal_interceptors(tracer_provider)]
    client = type(plain)(**{**plain.config(), "interceptors": interceptors})
    task_queue = f"api-{uuid.uuid4().hex[:8]}"
    async with issuer.serving() as jwks_url, build_worker(
        client, pool, task_queue, identity=WorkerIdentity("signed", signing_key.trusted_keys())
    ):
        engine = ComplaintClient(client, task_queue, read_your_writes=True)
        app = create_app(engine, pool, Authenticator(issuer=ISSUER_URL, audience=AUDIENCE, jwks_url=jwks_url))
        app = instrumented(app, tracer_provider) if tracer_provider is not None else app
        started: list[str] = []

        async def remember_started(response: httpx.Response) -> None:
            """The cases and doors a test opened, to end them: a case left open on a stopped worker's task
            queue would make a later test's read of it wait for a worker that never comes."""
            if response.request.method == "POST" and response.request.url.path == "/cases" and response.status_code in (200, 201):
                await response.aread()
                answer = response.json()
                started.extend(w for w in (answer.get("workflow_id"), answer.get("door_workflow_id")) if w)

        try:
            async with served(app) as base_url, httpx.AsyncClient(
                base_url=base_url, timeout=30, event_hooks={"response": [remember_started]}
            ) as http:
                yield http, engine
        finally:
            for workflow_id in started:
                try:
                    await client.get_workflow_handle(workflow_id).terminate("test finished")
                except Exception:
                    pass  # already closed

API_ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "api-max", "name": "Max Manager", "role": "manager", "team": "ops", "authority_limit": 5000},
            {"id": "api-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "care", "supervisor_id": "api-max"},
            {"id": "api-ana", "name": "Ana Agent", "role": "agent", "team": "care", "supervisor_id": "api-sam"},
            {"id": "api-bob", "name": "Bob Agent", "role": "agent", "team": "care", "supervisor_id": "api-sam"},
            {"id": "api-oli", "name": "Oli Other", "role": "agent", "team": "elsewhere"},
            # The fuzzer's own team: it sees only the cases it opens, whose worker is alive.
            {"id": "api-fuz", "name": "Fu Zer", "role": "agent", "team": "fuzz"},
        ],
        "systems": [
            {"name": "api-crm", "actions": ["new_contact", "read_cases"]},
            {"name": "api-chat", "actions": ["new_contact"]},
        ],
    }
)
OWNER = "api-ana"




def intake(**overrides: Any) -> dict[str, Any]:
    complaint_id = f"API-{uuid.uuid4().hex[:10]}"
    return {
        "complaint_id": complaint_id,
        "customer": {"customer_id": f"cu-{complaint_id}", "name": "Priya Natarajan"},
        "channel": "email", "category": "billing", "severity": "medium",
        "summary": "Charged twice", "received_by": OWNER, **overrides,
    }  # fmt: skip


async def opened(http, **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = intake(**overrides)
    response = await http.post("/cases", json=body, headers=ISSUER.staff(OWNER))
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "opened" and response.json()["owner"] == OWNER
    return body



def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.json()


def iter_pages(pages: list[dict[str, Any]]) -> Iterator[str]:
    for page in pages:
        yield from (item["complaint_id"] for item in page["items"])
