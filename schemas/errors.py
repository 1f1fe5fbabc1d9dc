"""Turn pydantic validation errors into one line a person can act on."""

from __future__ import annotations

from pydantic import ValidationError

_MAX_ERRORS_SHOWN = 5


def describe_validation_error(error: ValidationError, what: str = "") -> str:
    """One line such as: `severity: Input should be 'low', ... (got 'urgent'); summary: ...`."""
    parts = []
    for detail in error.errors()[:_MAX_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in detail["loc"]) or "payload"
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
    return prefix + "; ".join(parts)


def _short(value: object, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
