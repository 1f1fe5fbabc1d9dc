"""A TCP proxy in front of PostgreSQL that the crash drill can cut: the worker's only way to its database.

    proxy = PgProxy(upstream_for(database_url))
    await proxy.start()                 # listens on 127.0.0.1:<free port>
    worker_url = proxy.url_for(database_url)
    await proxy.cut()                   # outage: existing connections reset, new ones reset at once
    proxy.restore()                     # connections are forwarded again
    await proxy.close()

The real server is never touched: the drill and its checks talk to it directly.
The upstream may be a TCP host:port or a unix socket (the embedded PostgreSQL
listens on a socket only); the worker always reaches the proxy over TCP.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Bytes copied per read.
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Upstream:
    """Where the proxy connects: a unix socket path, or a TCP host and port."""

    unix_path: str | None = None
    host: str | None = None
    port: int | None = None

    def describe(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"{self.host}:{self.port}"


def upstream_for(database_url: str) -> Upstream:
    """The server a libpq/asyncpg URL names (host and port from the netloc or the query string)."""
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "localhost"
    port = int(query.get("port") or parts.port or 5432)
    if host.startswith("/"):
        return Upstream(unix_path=str(Path(host) / f".s.PGSQL.{port}"))
    return Upstream(host=host, port=port)


@dataclass
class ProxyStats:
    forwarded: int = 0  # connections opened to the upstream
    refused: int = 0  # connections reset at once during an outage
    cut: int = 0  # open connections reset when an outage began
    upstream_failures: int = 0  # the upstream did not answer (not our outage)
    outages: list[float] = field(default_factory=list)  # seconds each outage lasted


class PgProxy:
    def __init__(self, upstream: Upstream, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port: int | None = None
        self.down = False
        self.stats = ProxyStats()
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._down_since: float | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url_for(self, database_url: str) -> str:
        """database_url with its host and port replaced by the proxy's (user, password, database kept)."""
        if self.port is None:
            raise RuntimeError("the proxy is not started")
        parts = urlsplit(database_url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")]
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        netloc = f"{userinfo}{self.host}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))

    async def cut(self) -> int:
        """Begin an outage: reset every open connection; new ones are reset as soon as they arrive."""
        self.down = True
        self._down_since = asyncio.get_running_loop().time()
        open_now = list(self._open)
        for writer in open_now:
            _reset(writer)
        self.stats.cut += len(open_now) // 2  # two writers (client side, server side) per connection
        await asyncio.sleep(0)
        return len(open_now) // 2

    def restore(self) -> None:
        """End the outage: connections are forwarded again."""
        if self.down and self._down_since is not None:
            self.stats.outages.append(asyncio.get_running_loop().time() - self._down_since)
        self.down = False
        self._down_since = None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            _reset(writer)
        for task in list(self._pipes):
            task.cancel()
        if self._pipes:
            await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except asyncio.TimeoutError:
                pass

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.down:
            self.stats.refused += 1
            _reset(client_writer)
            return
        try:
            if self.upstream.unix_path:
                server_reader, server_writer = await asyncio.open_unix_connection(self.upstream.unix_path)
            else:
                server_reader, server_writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)
        except OSError:
            self.stats.upstream_failures += 1
            _reset(client_writer)
            return
        if self.down:  # the outage began while we connected
            self.stats.refused += 1
            _reset(client_writer)
            _reset(server_writer)
            return
        self.stats.forwarded += 1
        self._open.update((client_writer, server_writer))
        here = asyncio.current_task()
        if here is not None:
            self._pipes.add(here)
        try:
            await asyncio.gather(
                _pipe(client_reader, server_writer),
                _pipe(server_reader, client_writer),
                return_exceptions=True,
            )
        finally:
            self._open.discard(client_writer)
            self._open.discard(server_writer)
            for writer in (client_writer, server_writer):
                if not writer.is_closing():
                    writer.close()
            if here is not None:
                self._pipes.discard(here)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # One side ended: end the other, so neither waits on a half-open connection.
        if not writer.is_closing():
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, RuntimeError):
                pass
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN (SO_LINGER 0) where the socket is TCP: the peer sees a reset."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
