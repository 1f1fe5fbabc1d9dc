"""Turn pydantic validation errors into one line a person can act on."""

from __future__ import annotations

from pydantic import ValidationError

_MAX_ERRORS_SHOWN = 5
# A location part (a field name or a dict key) longer than this, or not printable, is quoted and cut.
_MAX_LOCATION_PART = 40


def describe_validation_error(error: ValidationError, what: str = "") -> str:
    """One line such as: `severity: Input should be 'low', ... (got 'urgent'); summary: ...`.

    The line stays short and printable whatever the input was (huge values, huge or
    unprintable field names, NUL characters): it is stored in the timeline as it is.
    """
    parts = []
    for detail in error.errors()[:_MAX_ERRORS_SHOWN]:
        where = ".".join(_location(part) for part in detail["loc"]) or "payload"
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown field (not part of this message; check the spelling)"
        elif detail["type"] == "missing":
            message = "required field is missing"
        elif "(got " not in message and detail["type"] not in ("model_type", "dict_type"):
            message += f" (got {_short(detail.get('input'))})"
        parts.append(f"{where}: {message}")
    hidden = error.error_count() - len(parts)
    if hidden > 0:
        parts.append(f"and {hidden} more")
    prefix = f"invalid {what}: " if what else ""
    return (prefix + "; ".join(parts)).replace("\x00", "\\x00")


def _location(part: object) -> str:
    text = str(part)
    if len(text) <= _MAX_LOCATION_PART and text.isprintable():
        return text
    return _short(text, _MAX_LOCATION_PART)


def _short(value: object, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# A query's failure message when the worker deferred it to keep the case replayable (workflow_runner.py);
# complaint_client retries such queries.
QUERY_DEFERRED_MESSAGE = (
    "query deferred: this case has events that no workflow task has delivered yet (its worker was restarted); "
    "ask again in a few seconds"
)
