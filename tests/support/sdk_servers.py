"""The SDK's own test servers, started on ports the SDK picks, and started again when a start fails.

The SDK picks a free port and then launches the server, which binds it a moment later; the dev
server also picks its HTTP and metrics ports at random. In that moment another test process can
bind the same port (CI saw it), and the server exits with "address already in use". The SDK then
reports "Failed starting ...". A fresh start picks fresh ports: stack/ports.py starts it again, as
it does the embedded dev server and the SMTP sink.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio.testing import WorkflowEnvironment

from stack.ports import start_on_free_ports

START_FAILED = "Failed starting"  # how the SDK's RuntimeError begins when its server did not come up


async def start_with_retries(start: Callable[[], Awaitable[WorkflowEnvironment]]) -> WorkflowEnvironment:
    """`await start()`, again while the SDK reports that its server did not start (stack/ports.py)."""
    return await start_on_free_ports(start, _did_not_start, "test server")


def _did_not_start(error: Exception) -> bool:
    return isinstance(error, RuntimeError) and str(error).startswith(START_FAILED)
