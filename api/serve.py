"""`python -m api` (make api): the embedded stack (or the configured servers), the worker, and the API on
API_HOST:API_PORT (127.0.0.1:8000), until Ctrl-C. API_WITH_WORKER=false serves the API alone, beside
workers that run elsewhere (docker-compose.yml).

Tokens: OIDC_ISSUER, OIDC_AUDIENCE and OIDC_JWKS_URL name the issuer whose JWTs the API accepts
(OIDC_ACTOR_CLAIM, default preferred_username, is the roster id). Unset, on the embedded stack, the
development issuer's key (data/identity-signing-key.json) signs and checks them: `starter.py api-token
--as a.patel` prints one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import structlog
import uvicorn

from api.app import create_app
from api.auth import Authenticator, key_authenticator
from complaint_client import ComplaintClient
from config import SettingsError, load_settings
from identity.setup import signing_key_for
from logs import configure_logging
from tracing import configure_tracing, instrumented

log = structlog.get_logger("api")


def authenticator_for(settings) -> Authenticator:  # type: ignore[no-untyped-def]
    issuer, audience, jwks = (os.environ.get(name) or None for name in ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL"))
    claim = os.environ.get("OIDC_ACTOR_CLAIM") or "preferred_username"
    if issuer or audience or jwks:
        if not (issuer and audience and jwks):
            raise SettingsError("OIDC_ISSUER, OIDC_AUDIENCE and OIDC_JWKS_URL go together: set all three")
        return Authenticator(issuer=issuer, audience=audience, jwks_url=jwks, actor_claim=claim)
    key = signing_key_for(settings, create=True)
    if key is None:
        raise SettingsError("the API needs OIDC_ISSUER, OIDC_AUDIENCE and OIDC_JWKS_URL (or the embedded stack)")
    return key_authenticator(key, actor_claim=claim)


async def serve_api(host: str, port: int, *, with_worker: bool = True) -> None:
    """The API until Ctrl-C; with_worker: also the worker, and the embedded stack unless servers are named."""
    from worker import serve as serve_worker

    settings = load_settings()
    auth = authenticator_for(settings)
    configure_tracing("complaints-api")

    async def api(client, pool) -> None:  # type: ignore[no-untyped-def]
        app = instrumented(create_app(ComplaintClient(client, settings.task_queue), pool, auth))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # httptools: the API's own share of the CPU is what an action through it costs over the client (decision 0007).
        async with served(app, host, port, http="httptools") as url:
            print(f"API on {url} (OpenAPI at /docs, /openapi.json); Ctrl-C stops it", flush=True)
            await stop.wait()

    if with_worker:
        await serve_worker(settings, asyncio.Event(), beside=api)
        return
    if settings.embedded_temporal or settings.embedded_postgres:
        raise SettingsError("API_WITH_WORKER=false serves beside workers elsewhere: set TEMPORAL_ADDRESS and DATABASE_URL")
    from activities import create_pool
    from stack.client import connect_client

    pool = await create_pool(settings.database_url)
    try:
        await api(await connect_client(settings.client_address, settings.namespace, settings=settings), pool)
    finally:
        await pool.close()


@asynccontextmanager
async def served(app: Any, host: str = "127.0.0.1", port: int = 0, *, http: str = "auto") -> AsyncIterator[str]:
    """The app on uvicorn in this event loop (a free port when port is 0), its base URL, until the block ends."""
    if port == 0:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, http=http))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign] - the caller's loop owns Ctrl-C
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # the server could not start: say why
        await asyncio.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await serving


def main() -> int:
    configure_logging(load_settings().log_format)
    host, port = os.environ.get("API_HOST") or "127.0.0.1", int(os.environ.get("API_PORT") or 8000)
    with_worker = (os.environ.get("API_WITH_WORKER") or "true").lower() not in ("false", "0", "no")
    try:
        asyncio.run(serve_api(host, port, with_worker=with_worker))
    except SettingsError as error:
        print(f"error: {error}")
        return 2
    return 0
