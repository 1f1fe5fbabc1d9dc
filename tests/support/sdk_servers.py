"""The SDK's own test servers, started on ports the SDK picks, and started again when a start fails.

The SDK picks a free port and then launches the server, which binds it a moment later; the dev
server also picks its HTTP and metrics ports at random. In that moment another test process can
bind the same port (CI saw it), and the server exits with "address already in use". The SDK then
reports "Failed starting ...". A fresh start picks fresh ports. stack/temporal.py does the same for
the embedded dev server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from temporalio.testing import WorkflowEnvironment

START_ATTEMPTS = 3
START_FAILED = "Failed starting"  # how the SDK's RuntimeError begins when its server did not come up

log = structlog.get_logger("tests.sdk_servers")


async def start_with_retries(start: Callable[[], Awaitable[WorkflowEnvironment]]) -> WorkflowEnvironment:
    """`await start()`, up to START_ATTEMPTS times while the SDK reports that its server did not start."""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return await start()
        except RuntimeError as error:
            if attempt == START_ATTEMPTS or not str(error).startswith(START_FAILED):
                raise
            log.warning("test server did not start; starting it again", attempt=attempt, error=str(error)[:200])
    raise AssertionError("unreachable")  # the loop returns or raises
