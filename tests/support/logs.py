"""Logging for tests that read what the worker or the CLI prints."""

from __future__ import annotations

import io
import logging
import sys
from contextlib import contextmanager
from typing import Iterator

import structlog

import logs


@contextmanager
def warnings_only() -> Iterator[None]:
    """structlog below WARNING is dropped meanwhile: a worker in this process keeps its info lines out of captured output."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**saved)


@contextmanager
def json_logs() -> Iterator[tuple[str, io.StringIO]]:
    """configure_logging("json") into a buffer, as the worker runs it; yields (the format it chose, the buffer); restores logging."""
    from temporalio import activity
    from temporalio import workflow as wf

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, wf.logger.workflow_info_on_message, activity.logger.activity_info_on_message)
    buffer = io.StringIO()
    real_stderr, sys.stderr = sys.stderr, buffer
    try:
        chosen = logs.configure_logging("json", forward_core_logs=False)
    finally:
        sys.stderr = real_stderr
    try:
        yield chosen, buffer
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        wf.logger.workflow_info_on_message, activity.logger.activity_info_on_message = saved[2], saved[3]
