"""The workflow modules' bytecode, written at start-up for the sandbox to read.

The sandbox imports a workflow's module afresh for every case it loads, so where
PYTHONDONTWRITEBYTECODE is set, every load compiled the source again: a tenth of the
engine worker's CPU in the lifecycle benchmark (docs/performance.md).
"""

from __future__ import annotations

import importlib.util
import inspect
import py_compile
import sys
from collections.abc import Sequence

import structlog

log = structlog.get_logger("worker.bytecode")


def compile_for_the_sandbox(workflow_classes: Sequence[type]) -> list[str]:
    """Write the bytecode of the workflow classes' modules where the import system looks for it.

    The sandbox imports a workflow's module afresh for every case it loads (a new case, or one
    replayed after a cache eviction). Without bytecode on disk each of those imports compiles the
    module's source again: a tenth of the engine worker's CPU in the lifecycle benchmark, on a
    machine with PYTHONDONTWRITEBYTECODE=1 (Python then reads bytecode but never writes it).
    Returns the modules compiled; one whose directory cannot be written is left as it was.
    """
    compiled = []
    for module in dict.fromkeys(cls.__module__ for cls in workflow_classes):
        source = inspect.getsourcefile(sys.modules[module])
        if source is None:
            continue
        try:
            py_compile.compile(source, cfile=importlib.util.cache_from_source(source), doraise=True)
        except (OSError, py_compile.PyCompileError) as error:
            log.info("workflow module left uncompiled", module=module, reason=str(error))
            continue
        compiled.append(module)
    return compiled
