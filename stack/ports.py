"""A free TCP port on the loopback, for servers of a run's own (tests, benchmarks, the drill)."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing is bound to at this moment; whoever binds it next may not be the caller."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
