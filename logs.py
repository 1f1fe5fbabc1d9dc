"""Structured logging for every process (worker, demo, CLI): structlog in front, stdlib behind.

    configure_logging()            # console on a terminal, JSON lines otherwise
    configure_logging("json")      # force JSON lines (log shippers)
    configure_logging("console")   # force the readable renderer

structlog loggers and stdlib loggers (temporalio's workflow.logger and
activity.logger, asyncpg, ...) all end in one handler on the root logger whose
structlog ProcessorFormatter renders every line the same way. Temporal's
context (the ``temporal_workflow`` / ``temporal_activity`` extras) is flattened
into top-level keys: workflow_id, run_id, workflow_type, activity_id,
activity_type, attempt, update_id, update_name. Any other ``extra`` (such as
complaint_id or actor) becomes a top-level key as it is. Values of keys named
email or phone (or ending in _email / _phone), at any depth, are masked; then
every rendered line (message, values, tracebacks) is scrubbed of anything
that looks like an email address or a phone number, since a rejection reason
or an error may quote one (a fact the customer gave, say): j***@example.com, ***23.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

FORMATS = ("auto", "json", "console")

# Keys whose values are customer contact data and never appear in a log line.
MASKED_KEYS = frozenset({"email", "phone"})


def flatten_temporal_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Lift temporalio's workflow/activity/update details into top-level keys."""
    # Core (Rust) records forwarded by the SDK carry an object; its fields are already in the message.
    event_dict.pop("temporal_log", None)
    workflow = event_dict.pop("temporal_workflow", None)
    if isinstance(workflow, Mapping):
        for key in ("workflow_id", "run_id", "workflow_type", "attempt", "update_id", "update_name"):
            if key in workflow:
                event_dict.setdefault(key, workflow[key])
    activity = event_dict.pop("temporal_activity", None)
    if isinstance(activity, Mapping):
        renamed = {"workflow_run_id": "run_id"}
        for key in ("activity_id", "activity_type", "attempt", "workflow_id", "workflow_run_id", "workflow_type"):
            if key in activity:
                event_dict.setdefault(renamed.get(key, key), activity[key])
    return event_dict


def _is_masked(key: object) -> bool:
    if not isinstance(key, str):
        return False
    k = key.lower()
    return k in MASKED_KEYS or any(k.endswith("_" + m) for m in MASKED_KEYS)


def _mask_value(key: str, value: Any) -> Any:
    if value is None or value == "":
        return value
    text = str(value)
    if "email" in key.lower() and "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = [c for c in text if c.isdigit()]
    return "***" + "".join(digits[-2:]) if len(digits) >= 6 else "***"


def _masked(value: Any, depth: int = 0) -> Any:
    if depth > 5:
        return value
    if isinstance(value, Mapping):
        return {
            k: _mask_value(k, v) if _is_masked(k) else _masked(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(v, depth + 1) for v in value)
    return value


# Free text that looks like contact data, wherever it appears in a rendered line.
_EMAIL_TEXT = re.compile(r"(?<![\w.%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_PHONE_TEXT = re.compile(
    r"(?<![\w\-+(])(?:"
    r"\+\d[\d ().-]{5,}\d"  # international: +44 7700 900123, +1 (555) 123-4567
    r"|0\d[\d ().-]{5,}\d"  # national with a trunk 0: 07700 900123, 020 7946 0018, 01 23 45 67 89
    r"|\(\d{2,5}\) ?\d[\d .-]{4,}\d"  # (555) 123-4567
    r"|\d{3}[-. ]\d{3}[-. ]\d{4}"  # 555-123-4567
    r")(?![\w-])"
)
# A phone number has 7 to 15 digits (E.164); longer runs are ids or timestamps, left alone.
_PHONE_DIGITS = range(7, 16)


def _masked_phone_text(match: re.Match[str]) -> str:
    digits = [c for c in match.group(0) if c.isdigit()]
    if len(digits) not in _PHONE_DIGITS:
        return match.group(0)
    return "***" + "".join(digits[-2:])


def scrub_contact_text(text: str) -> str:
    """Mask email addresses and phone numbers in free text: jane.doe@example.com -> j***@example.com."""
    text = _EMAIL_TEXT.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE_TEXT.sub(_masked_phone_text, text)


def scrub_rendered_line(_: WrappedLogger, __: str, line: Any) -> Any:
    """The last step: the rendered line, tracebacks included, without contact data in free text."""
    return scrub_contact_text(line) if isinstance(line, str) else line


def mask_contact_data(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask customer emails and phone numbers: j***@example.com, ***67."""
    for key, value in list(event_dict.items()):
        if _is_masked(key):
            event_dict[key] = _mask_value(key, value)
        elif isinstance(value, (Mapping, list, tuple)):
            event_dict[key] = _masked(value)
    return event_dict


def _pick_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {format!r}")
    if format == "auto":
        return "console" if sys.stderr.isatty() else "json"
    return format


class UnlockedStreamHandler(logging.StreamHandler):
    """A stream handler that takes no lock of its own: each record is one write, under the stream's lock.

    temporalio interrupts a workflow thread whose activation runs past 2 s (its deadlock
    detection) with an asynchronous exception. One that lands between a handler's acquire()
    and the try that releases it leaks the handler's lock, and the next record from any thread
    then blocks for ever: the scale benchmark's worker hung so, on the SDK's own "Failed
    handling activation" line, with 6,244 cases waiting. With no lock there is nothing to
    leak; a record is a single write (message and newline), which the stream's buffered
    writer makes whole under its own lock, taken and released in C.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def flush(self) -> None:
        stream = getattr(self, "stream", None)
        if stream is not None and hasattr(stream, "flush"):
            stream.flush()


def configure_logging(
    format: str = "auto", level: int | str = logging.INFO, *, forward_core_logs: bool = True
) -> str:
    """Route structlog and stdlib logging to stderr as one stream; returns the format chosen.

    With forward_core_logs, the SDK's Rust core logs (WARN and up) go through the
    "temporalio.core" stdlib logger too instead of printing raw text; that only
    takes effect if called before the first Temporal client is made.
    """
    chosen = _pick_format(format)

    # Both kinds of records go through these, so both get the same keys.
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        flatten_temporal_context,
        mask_contact_data,
    ]
    if chosen == "json":
        renderer: Processor = structlog.processors.JSONRenderer()
        # Tracebacks as data, without local variables (they may hold customer data).
        tracebacks = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        final: list[Processor] = [tracebacks, renderer]
    else:
        final = [structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.StackInfoRenderer(),
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from plain stdlib loggers: turn their `extra` into keys first.
        foreign_pre_chain=[
            structlog.stdlib.ExtraAdder(),
            *shared,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final, scrub_rendered_line],
    )
    handler = UnlockedStreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    # The workflow/activity details already become keys; don't repeat them in every message.
    from temporalio import activity, workflow

    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    if forward_core_logs:
        _forward_core_logs()
    return chosen


def _forward_core_logs() -> None:
    from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            )
        )
    )
    try:
        Runtime.set_default(runtime, error_if_already_set=True)
    except RuntimeError:
        pass  # a client already exists on the default runtime: its core keeps logging as it did
