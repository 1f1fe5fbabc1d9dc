"""How our processes run and end."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any, NoReturn


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets, so the running loop can stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def run_worker_until(worker: Any, stop: asyncio.Event) -> None:
    """Run a temporalio Worker until `stop` is set, for a subprocess its parent drives.

    Prints one line `ready` on stdout once the worker polls (a start error raises
    first). A worker that fails on its own re-raises here; on `stop` it shuts down
    gracefully.
    """
    running = asyncio.create_task(worker.run(), name="worker")
    await asyncio.sleep(0.2)  # let it register its pollers (a start error surfaces here)
    if running.done():
        await running
    print("ready", flush=True)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not running.done():
        await worker.shutdown()
    await running


def exit_for_real(status: int) -> NoReturn:
    """Flush logs and stdio, then exit with `status` without the interpreter's own shutdown.

    temporalio's Rust threads can crash a normal CPython exit ("Fatal Python
    error: PyGILState_Release", sdk-python issue 300), which would replace the
    true status with 134. Call this only after workers and servers are stopped.
    """
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)
