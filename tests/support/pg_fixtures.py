"""PostgreSQL fixtures (a pytest plugin: `pytest_plugins = ["tests.support.pg_fixtures"]`).

Every test using them runs twice, once per server, unless marked ``ON_ONE_SERVER``:

- ``embedded``: stack/postgres.py in a temporary dir, started once per session;
- ``local``: the server at TEST_LOCAL_DATABASE_URL (default
  postgresql://postgres@127.0.0.1:5432/test, trust auth); skipped, with the
  reason, when nothing answers there.

Fixtures:

- ``pg_server`` (session): the server under test; ``.kind``, ``.admin_url``,
  ``await .create_database(template=None)`` -> url, ``await .drop_database(url)``.
- ``database_url`` (session): a fresh database of its own, dropped at the end.
- ``pool`` (session): a migrated pool on ``database_url`` (shared by every test of the session).
- ``fresh_pool`` (function): a migrated pool on a new empty database for this test alone,
  dropped afterwards: use it when a test needs an empty roster or exact counts.

``ON_ONE_SERVER`` (a mark for a test or a module's ``pytestmark``) runs a test on the embedded server
only: for tests of how workflows behave (retries, crashes, races, time) whose every statement a test on
both servers already runs (docs/testing.md, "What runs where").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import shutil
from dataclasses import dataclass
from typing import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from activities.db import apply_migrations, create_pool

ON_ONE_SERVER = pytest.mark.parametrize("pg_server", ["embedded"], indirect=True)

LOCAL_DATABASE_URL = os.environ.get("TEST_LOCAL_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def _run(coro):
    """Run a coroutine to completion from sync code without touching the test event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coro).result()


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class PgServer:
    kind: str
    admin_url: str  # a database to connect to for CREATE/DROP DATABASE

    async def create_database(self, template: str | None = None, prefix: str = "complaints_test") -> str:
        name = f"{prefix}_{secrets.token_hex(5)}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            sql = f"CREATE DATABASE {_quote_ident(name)}"
            if template:
                sql += f" TEMPLATE {_quote_ident(template)}"
            await conn.execute(sql)
        finally:
            await conn.close()
        return with_database(self.admin_url, name)

    async def drop_database(self, url: str) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(database_of(url))} WITH (FORCE)")
        finally:
            await conn.close()


async def _probe(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=3)
    await conn.close()


@pytest.fixture(scope="session", params=["embedded", "local"])
def pg_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    if request.param == "local":
        try:
            _run(_probe(LOCAL_DATABASE_URL))
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as err:
            pytest.skip(
                f"no PostgreSQL answers at {LOCAL_DATABASE_URL} ({type(err).__name__}: {err}); "
                "set TEST_LOCAL_DATABASE_URL to a server with trust auth to run these tests against it"
            )
        yield PgServer("local", LOCAL_DATABASE_URL)
        return

    from stack.postgres import start_embedded_postgres

    data_dir = tmp_path_factory.mktemp("embedded-pg")
    pg = start_embedded_postgres(data_dir)
    try:
        yield PgServer("embedded", with_database(pg.url, "postgres"))
    finally:
        pg.stop()
        if not (pg.pgdata / "postmaster.pid").exists():
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh database on the server under test, dropped at the end of the session."""
    url = _run(pg_server.create_database())
    try:
        yield url
    finally:
        _run(pg_server.drop_database(url))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=5)
    try:
        await apply_migrations(pool)
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _migrated_template(pg_server: PgServer) -> AsyncIterator[str]:
    """A migrated database nobody connects to, copied by each fresh_pool."""
    url = await pg_server.create_database(prefix="complaints_template")
    try:
        template_pool = await create_pool(url, min_size=1, max_size=1)
        try:
            await apply_migrations(template_pool)
        finally:
            await template_pool.close()
        yield database_of(url)
    finally:
        await pg_server.drop_database(url)


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_pool(pg_server: PgServer, _migrated_template: str) -> AsyncIterator[asyncpg.Pool]:
    url = await pg_server.create_database(template=_migrated_template)
    try:
        pool = await create_pool(url, min_size=1, max_size=5)
        try:
            yield pool
        finally:
            await pool.close()
    finally:
        await pg_server.drop_database(url)
