"""The drill's servers: a Temporal dev server it can restart, its PostgreSQL, and the proxy the worker
reaches PostgreSQL through, so the database can be cut without touching the real server."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from activities import create_pool
from drills.proxy import PgProxy, upstream_for
from stack import redact_url
from tools.harness.progress import say
from tools.harness.stack import OwnTemporal, prepare_database, start_postgres, stop_postgres


class Servers:
    def __init__(self, work_dir: Path, run_id: str) -> None:
        self.work_dir = work_dir
        self.run_id = run_id
        self.temporal_dir = work_dir / "temporal"
        self.temporal = OwnTemporal(self.temporal_dir)
        self.database_url = ""
        self.database_kind = ""
        self.pool: asyncpg.Pool | None = None
        self.proxy: PgProxy | None = None
        self._embedded: Any = None
        self._scratch: tuple[str, str] | None = None  # (admin url, database) created by the drill

    @property
    def address(self) -> str:
        return self.temporal.address

    async def start(self, cleanup: AsyncExitStack) -> None:
        cleanup.push_async_callback(self.close)
        await self._start_postgres()
        self.pool = await create_pool(self.database_url, min_size=1, max_size=4)
        await prepare_database(self.pool)
        self.proxy = PgProxy(upstream_for(self.database_url))
        await self.proxy.start()
        await self.temporal.start()

    async def _start_postgres(self) -> None:
        given = os.environ.get("DATABASE_URL")
        if given:
            database = f"crash_drill_{self.run_id.replace('-', '_').lower()}"
            conn = await asyncpg.connect(given, timeout=30)
            try:
                await conn.execute(f'CREATE DATABASE "{database}"')
            finally:
                await conn.close()
            self._scratch = (given, database)
            self.database_url = urlunsplit(urlsplit(given)._replace(path="/" + database))
            self.database_kind = f"scratch database {database} on DATABASE_URL ({redact_url(given)})"
            return
        self._embedded = await start_postgres(self.work_dir)
        self.database_url = self._embedded.url
        self.database_kind = f"embedded PostgreSQL in {self._embedded.pgdata}"

    async def postgres_version(self) -> str:
        assert self.pool is not None
        return str(await self.pool.fetchval("SHOW server_version"))

    async def close(self) -> None:
        errors: list[str] = []
        try:
            await self.temporal.aclose()
        except Exception as error:
            errors.append(f"dev server: {error}")
        if self.proxy is not None:
            await self.proxy.close()
        if self.pool is not None:
            await self.pool.close()
        if self._scratch is not None:
            admin, database = self._scratch
            try:
                conn = await asyncpg.connect(admin, timeout=30)
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                finally:
                    await conn.close()
            except Exception as error:
                errors.append(f"dropping {database}: {error}")
        if self._embedded is not None:
            await stop_postgres(self._embedded)
        if errors:
            say("cleanup: " + "; ".join(errors))
