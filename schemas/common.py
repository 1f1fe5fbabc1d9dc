"""Types shared by every message: identifiers, channels, text limits, actors.

Input messages forbid unknown fields so a typo ("serverity") is an error, not a
silently ignored value. Output messages (state, timeline, outcome) ignore
unknown fields so older clients can read newer engines.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    FiniteFloat,
    StringConstraints,
    ValidationError,
    WrapValidator,
    field_validator,
)

# Size limits, documented in the README. They keep one case's history small
# enough for Temporal (2 MB per payload, 50 MB per history).
SUMMARY_MAX = 200
TEXT_MAX = 10_000
DETAILS_MAX = 20_000
FACT_VALUE_MAX = 2_000
FACTS_MAX = 50

Channel = Literal["email", "phone", "chat", "web", "social", "in_person", "letter"]
Severity = Literal["low", "medium", "high", "critical"]
Status = Literal[
    "assigned",
    "in_progress",
    "waiting_on_customer",
    "resolution_proposed",
    "follow_through",
    "closed",
]
Outcome = Literal["resolved", "resolved_unconfirmed", "goodwill", "withdrawn"]

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AGENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FACT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut short (a message must stay small)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def matching(pattern: re.Pattern[str], what: str):
    """An after-validator: the whole value matches pattern, or the error says `what` and quotes the value."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} (got {shown(value)})")
        return value

    return AfterValidator(check)


ComplaintId = Annotated[
    str,
    matching(_ID, "must be 1 to 64 characters of letters, digits, '_' or '-', with no spaces"),
]
Identifier = ComplaintId
AgentId = Annotated[
    str,
    matching(_AGENT_ID, "must be 1 to 64 characters of letters, digits, '.', '_' or '-'"),
]
FactName = Annotated[
    str,
    matching(_FACT_NAME, "a fact name is lower_snake_case: a letter, then letters, digits or '_' (64 at most)"),
]
Category = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True),
    matching(_CATEGORY, "a category is one lowercase word such as billing, delivery, product or service"),
]


def text(max_length: int):
    """Non-blank text of at most max_length characters, surrounding blanks stripped."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)]


Summary = text(SUMMARY_MAX)
Text = text(TEXT_MAX)


def _one_fact_value_error(value: Any, handler):
    """One clear error for a bad fact value, instead of one per type it might have been."""
    try:
        return handler(value)
    except ValidationError:
        if isinstance(value, str):
            raise ValueError(f"a fact value is at most {FACT_VALUE_MAX:,} characters (got {len(value):,} characters)") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"a fact value that is a number must be finite (got {value})") from None
        raise ValueError(
            f"a fact value is text (at most {FACT_VALUE_MAX:,} characters), a number or true/false "
            f"(got {shown(value)})"
        ) from None


# NaN and infinity are refused: they are not JSON, and PostgreSQL's jsonb refuses them.
FactValue = Annotated[
    Union[Annotated[str, StringConstraints(max_length=FACT_VALUE_MAX)], int, FiniteFloat, bool],
    WrapValidator(_one_fact_value_error),
]

# Instants given in messages: with an offset, and within years 1970..2999 (UTC), so that
# deadline arithmetic on them never leaves the range Python's datetime can represent.
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_MOMENT = datetime(3000, 1, 1, tzinfo=timezone.utc)


def _sensible_moment(value: datetime) -> datetime:
    try:
        in_range = EARLIEST_MOMENT <= value.astimezone(timezone.utc) < LATEST_MOMENT
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError(f"must be between the years 1970 and 2999 (got {value.isoformat()})")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_sensible_moment)]

RequestId = Annotated[
    str,
    matching(re.compile(r"[A-Za-z0-9_.:-]{1,128}"), "a request_id is 1 to 128 characters of letters, digits, '.', ':', '_' or '-'"),
]


def _actor(value: str) -> str:
    kind, sep, rest = value.partition(":")
    if not sep:
        if _AGENT_ID.fullmatch(value):
            return value
    elif kind == "customer" and _ID.fullmatch(rest):
        return value
    elif kind == "system" and _AGENT_ID.fullmatch(rest):
        return value
    raise ValueError(
        f"an actor is a roster agent id, 'customer:<customer_id>' or 'system:<name>' (got {shown(value)})"
    )


ActorId = Annotated[str, AfterValidator(_actor)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_nul(item) for item in value)
    return False


class InputMessage(BaseModel):
    """A message from outside: unknown fields are errors, and no text holds a NUL character."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL stores no NUL in text or jsonb: a case holding one could never be written.
        if _has_nul(value):
            raise ValueError("text may not contain the NUL character (\\u0000)")
        return value


class OutputMessage(BaseModel):
    """A message the engine produces: tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore")
