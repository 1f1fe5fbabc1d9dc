"""Free TCP ports on the loopback: servers of a run's own never meet the demo's or another run's."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
