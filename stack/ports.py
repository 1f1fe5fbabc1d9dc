"""Free TCP ports on the loopback, for servers of a run's own (tests, benchmarks, the drill), and starting
such a server again when a port it picked free was taken before it could bind it.

A port is free when picked, but another process (the other test process, a server it starts, the
server's own random picks) can bind it in the moment before the server does. A start that fails so
starts again, on fresh picks, at most START_ATTEMPTS times in all.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

HOST = "127.0.0.1"
START_ATTEMPTS = 3

T = TypeVar("T")

log = structlog.get_logger("stack.ports")


def free_port() -> int:
    """A port nothing is bound to at this moment; whoever binds it next may not be the caller."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


async def start_on_free_ports(start: Callable[[], Awaitable[T]], port_taken: Callable[[Exception], bool], what: str) -> T:
    """`await start()` (which picks its ports afresh each time), again while it fails with an error that
    `port_taken` recognises; the last attempt's error is raised as it is."""
    for attempt in range(1, START_ATTEMPTS):
        try:
            return await start()
        except Exception as error:
            if not port_taken(error):
                raise
            log.warning(f"{what} found a port taken at start-up; starting it again", attempt=attempt,
                        error=str(error).splitlines()[0][:200])  # fmt: skip
    return await start()
