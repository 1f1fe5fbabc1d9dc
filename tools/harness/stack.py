"""Servers of a run's own: a Temporal dev server on free ports (which a drill may stop and start again
on the same port and file) and the embedded PostgreSQL, so that a run never touches the demo's
./data or port 7233; and the database made ready for the demo roster's cases."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from activities import apply_migrations
from activities.roster_store import load_roster
from schemas import Roster
from tools.harness.worker import REPO

DEMO_ROSTER = REPO / "roster" / "demo.json"


def demo_roster() -> Roster:
    return Roster.model_validate(json.loads(DEMO_ROSTER.read_text()))


async def prepare_database(pool: Any, roster: Roster | None = None) -> None:
    await apply_migrations(pool)
    await load_roster(pool, roster or demo_roster())


class OwnTemporal:
    """A dev server with its SQLite file in data_dir, on ports found at the first start and kept
    across restarts (workers reconnect to the same address)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0  # any free port, until the first start
        self.ui_port = 0
        self.server: Any = None  # stack.temporal.DevServer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        process = self.server.process if self.server is not None else None
        return process.pid if process is not None else None

    async def start(self) -> None:
        from stack.temporal import start_dev_server

        self.server = await start_dev_server(self.data_dir, port=self.port, ui_port=self.ui_port)
        if self.server.reused:
            raise RuntimeError(f"port {self.port} was taken by another Temporal server; the run needs its own")
        self.port = int(self.server.address.rsplit(":", 1)[1])
        self.ui_port = int(self.server.ui_url.rsplit(":", 1)[1])

    async def stop(self, how: str = "term") -> float:
        """SIGTERM (or SIGKILL for how='kill'); return how long stopping took."""
        began = time.monotonic()
        if how == "kill":
            self.server.process.kill()
            await asyncio.to_thread(self.server.process.wait)
        else:
            await self.server.aclose()
        return time.monotonic() - began

    async def aclose(self) -> None:
        if self.server is not None:
            await self.server.aclose()


async def start_postgres(data_dir: Path) -> Any:
    """The embedded PostgreSQL in data_dir/postgres (stack.postgres.EmbeddedPostgres)."""
    from stack.postgres import start_embedded_postgres

    return await asyncio.to_thread(start_embedded_postgres, data_dir)


async def stop_postgres(pg: Any) -> None:
    await asyncio.to_thread(pg.stop)
