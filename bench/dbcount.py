"""Counting what a worker sends to PostgreSQL: an asyncpg connection class for the benchmark's worker.

    pool = await create_pool(url, connection_class=CountingConnection)
    ...
    COUNTS.snapshot()   # {"round_trips": ..., "statements": ..., "by_statement": {...}}

A round trip is one request the client waits for: execute, fetch, fetchrow,
fetchval (one each; BEGIN and COMMIT of a transaction go through execute),
and executemany (one pipelined batch, however many rows: it counts as one
round trip and as len(rows) statements). The statement cache's own prepare
round trips are not counted (they happen once per connection and statement).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import asyncpg

_SPACE = re.compile(r"\s+")


def label(query: str) -> str:
    """A short name for a statement: its text with whitespace collapsed, cut at 70 characters."""
    text = _SPACE.sub(" ", query).strip()
    return text if len(text) <= 70 else text[:67] + "..."


class Counts:
    def __init__(self) -> None:
        self.round_trips = 0
        self.statements = 0
        self.by_statement: Counter[str] = Counter()

    def add(self, query: str, statements: int = 1) -> None:
        self.round_trips += 1
        self.statements += statements
        self.by_statement[label(query)] += statements

    def snapshot(self) -> dict[str, Any]:
        return {
            "round_trips": self.round_trips,
            "statements": self.statements,
            "by_statement": dict(self.by_statement.most_common()),
        }


COUNTS = Counts()


class CountingConnection(asyncpg.Connection):  # type: ignore[misc]
    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        COUNTS.add(query)
        return await super().execute(query, *args, **kwargs)

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> Any:
        rows = list(args)
        COUNTS.add(command, statements=len(rows))
        return await super().executemany(command, rows, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        COUNTS.add(query)
        return await super().fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        COUNTS.add(query)
        return await super().fetchrow(query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        COUNTS.add(query)
        return await super().fetchval(query, *args, **kwargs)
