"""How our processes end."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


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
