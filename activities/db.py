"""The application database: connection pool and versioned migrations.

Migrations are the files ``activities/migrations/NNNN_name.sql``, applied in
order of NNNN when a worker starts, each in its own transaction, and recorded
in ``schema_migrations``. Applying is idempotent and safe when several
workers start at once: they queue on a PostgreSQL advisory lock.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg
import structlog

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_FILE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")

# pg_advisory_lock keys (any bigint; fixed so every process agrees).
MIGRATIONS_LOCK_KEY = 0x636F6D706C_01  # "compl" + 1

log = structlog.get_logger()


def _json_default(value: object) -> object:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_dumps(value: object) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("jsonb", "json"):
        await conn.set_type_codec(name, encoder=json_dumps, decoder=json.loads, schema="pg_catalog")


def _normalize_dsn(dsn: str) -> str:
    # Accept SQLAlchemy-style URLs people paste from elsewhere.
    for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://"):
        if dsn.startswith(prefix):
            return "postgresql://" + dsn[len(prefix):]
    return dsn


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: nothing beyond asyncpg's own rollback.

    asyncpg's default reset sends a fifth statement batch on every release (advisory
    unlock, CLOSE ALL, UNLISTEN, RESET ALL): a round trip for each activity. The
    engine keeps no session state (no SET, LISTEN, cursors; the one session-level
    advisory lock, the migrations', is released in a finally), so it is skipped.
    An open transaction is still rolled back by the pool before this is called.
    """


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs) -> asyncpg.Pool:
    """A pool whose json/jsonb columns take and give Python dicts and lists.

    Sized for one worker: activities run concurrently but each holds a
    connection for one short transaction.
    """
    kwargs.setdefault("command_timeout", 60)
    kwargs.setdefault("server_settings", {"application_name": "complaint-engine"})
    kwargs.setdefault("reset", _keep_session)
    return await asyncpg.create_pool(
        _normalize_dsn(dsn), min_size=min_size, max_size=max_size, init=_init_connection, **kwargs
    )


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise RuntimeError(
                f"migration file {path.name!r} is not named NNNN_name.sql (e.g. 0002_add_index.sql)"
            )
        migrations.append(Migration(match[1], match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise RuntimeError(f"several migration files share a version: {', '.join(duplicates)}")
    return sorted(migrations, key=lambda m: int(m.version))


_CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def apply_migrations(pool: asyncpg.Pool, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded; return the versions applied now (empty if none)."""
    migrations = discover_migrations(directory)
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATIONS_LOCK_KEY)
        try:
            await conn.execute(_CREATE_MIGRATIONS_TABLE)
            recorded = {
                row["version"]: row["checksum"]
                for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
            }
            for migration in migrations:
                if migration.version in recorded:
                    if recorded[migration.version] != migration.checksum:
                        log.warning(
                            "migration changed after it was applied; add a new migration instead",
                            version=migration.version,
                            migration=migration.name,
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied_now.append(migration.version)
                log.info("migration applied", version=migration.version, migration=migration.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATIONS_LOCK_KEY)
    return applied_now


# What the worker's own role (DATABASE_URL's user) may do when the schema has an owner of its own
# (DATABASE_OWNER_URL): the timeline is append-only for it, and nothing may be dropped or truncated.
_RUNTIME_GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT ON case_events, agent_changes TO {role};
GRANT SELECT, INSERT, UPDATE ON cases, promises, notifications, agents, systems, delivery_attempts, webhook_endpoints TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_subscriptions, subscription_cursors TO {role};
GRANT SELECT ON schema_migrations TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
"""


async def prepare_database(pool: asyncpg.Pool, owner_url: str | None = None) -> list[str]:
    """Migrate the schema the pool works on; returns the versions applied now.

    owner_url None: the pool's own role runs the migrations (the embedded database, development).
    With owner_url, the schema's owner runs them and grants the pool's role only what the worker
    needs (_RUNTIME_GRANTS): the pool's role cannot change or delete a stored timeline event.
    """
    if owner_url is None:
        return await apply_migrations(pool)
    runtime_role = await pool.fetchval("SELECT current_user")
    owner = await create_pool(owner_url, min_size=1, max_size=1)
    try:
        applied = await apply_migrations(owner)
        owner_role = await owner.fetchval("SELECT current_user")
        if owner_role != runtime_role:
            await owner.execute(_RUNTIME_GRANTS.format(role=_quote_ident(runtime_role)))
            log.info("runtime role granted", role=runtime_role, owner=owner_role)
    finally:
        await owner.close()
    return applied


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
