"""How a drill, a benchmark or one of their worker subprocesses runs to its exit status."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Awaitable, Callable, NoReturn

from stack.process import exit_for_real

INTERRUPTED = 130


def run_to_exit(work: Callable[[], Awaitable[int]], *, failed: str | None = None, cancel_on_signals: bool = True) -> NoReturn:
    """asyncio.run(work()) and exit with its status: 130 on Ctrl-C (or SIGTERM), 1 on an error, said as
    `failed: ...` when `failed` is given. With cancel_on_signals, SIGINT and SIGTERM cancel the work, so
    every `finally` stops what it started (a worker subprocess handles the signals itself instead)."""
    status = 1
    try:
        status = asyncio.run(_cancelled_by_signals(work()) if cancel_on_signals else work())  # type: ignore[arg-type]
    except (KeyboardInterrupt, asyncio.CancelledError):
        status = INTERRUPTED
    except Exception as error:
        if failed:
            print(f"{failed}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    finally:
        exit_for_real(status)


async def _cancelled_by_signals(work: Awaitable[int]) -> int:
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    return await task
