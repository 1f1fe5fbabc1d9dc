"""What a process needs running: Temporal and PostgreSQL, embedded unless the environment names them.

    async with running_stack(load_settings()) as stack:
        client = await connect_client(stack.temporal_address, settings.namespace)
        pool = await create_pool(stack.database_url)

TEMPORAL_ADDRESS unset: a `temporal server start-dev` on 127.0.0.1:7233 (UI on
8233) with its state in <data_dir>/temporal.db, or the one already running
there (shared by a worker and the demo), and, unless COMPLAINTS_ENCRYPTION_KEYS
is set, the payload encryption key file <data_dir>/encryption-keys (created
once; every client sharing the data dir reads it, see codec/keys.py).
DATABASE_URL unset: the embedded PostgreSQL in <data_dir>/postgres. Whatever this started is stopped on exit,
in reverse order; what the environment names is never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import structlog

from config import EMBEDDED_TEMPORAL_PORT, EMBEDDED_TEMPORAL_UI_PORT, Settings

log = structlog.get_logger("stack")


@dataclass(frozen=True)
class Stack:
    temporal_address: str
    database_url: str
    # Set when the embedded dev server was started by this process.
    temporal_ui_url: str | None = None


def redact_url(url: str) -> str:
    """A DSN without its password, for logs: postgresql://user:***@host/db."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@asynccontextmanager
async def running_stack(settings: Settings) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as started:
        temporal_address = settings.temporal_address
        ui_url: str | None = None
        if temporal_address is None:
            from codec.keys import keyring_for
            from stack.temporal import start_dev_server

            keyring_for(settings, create=True)  # the embedded stack's key: made here, read by every client
            server = await start_dev_server(
                settings.data_dir,
                port=EMBEDDED_TEMPORAL_PORT,
                ui_port=EMBEDDED_TEMPORAL_UI_PORT,
                namespace=settings.namespace,
            )
            started.push_async_callback(_stopping, "temporal dev server", server.aclose)
            temporal_address, ui_url = server.address, server.ui_url
            log.info(
                "using embedded temporal",
                address=temporal_address,
                ui_url=ui_url or "(started by another process)",
                data_dir=str(settings.data_dir),
                reused=server.reused,
            )
        else:
            log.info("using the configured temporal server", address=temporal_address)

        database_url = settings.database_url
        if database_url is None:
            from stack.postgres import start_embedded_postgres

            pg = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
            started.push_async_callback(_stopping, "embedded postgres", asyncio.to_thread, pg.stop)
            database_url = pg.url
            log.info(
                "using embedded postgres",
                url=redact_url(database_url),
                data_dir=str(getattr(pg, "pgdata", settings.data_dir / "postgres")),
            )
        else:
            log.info("using postgres from DATABASE_URL", url=redact_url(database_url))

        yield Stack(temporal_address=temporal_address, database_url=database_url, temporal_ui_url=ui_url)


async def _stopping(what: str, stop, *args) -> None:  # type: ignore[no-untyped-def]
    log.info("stopping " + what)
    await stop(*args)
