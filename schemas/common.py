"""Types shared by every message: identifiers, channels, text limits, actors.

Input messages forbid unknown fields so a typo ("serverity") is an error, not a
silently ignored value. Output messages (state, timeline, outcome) ignore
unknown fields so older clients can read newer engines.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

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


def _matching(pattern: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} (got {value!r})")
        return value

    return AfterValidator(check)


ComplaintId = Annotated[
    str,
    _matching(_ID, "must be 1 to 64 characters of letters, digits, '_' or '-', with no spaces"),
]
Identifier = ComplaintId
AgentId = Annotated[
    str,
    _matching(_AGENT_ID, "must be 1 to 64 characters of letters, digits, '.', '_' or '-'"),
]
FactName = Annotated[
    str,
    _matching(_FACT_NAME, "a fact name is lower_snake_case: a letter, then letters, digits or '_' (64 at most)"),
]
Category = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True),
    _matching(_CATEGORY, "a category is one lowercase word such as billing, delivery, product or service"),
]


def text(max_length: int):
    """Non-blank text of at most max_length characters, surrounding blanks stripped."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)]


Summary = text(SUMMARY_MAX)
Text = text(TEXT_MAX)
FactValue = Union[
    Annotated[str, StringConstraints(max_length=FACT_VALUE_MAX)], int, float, bool
]

RequestId = Annotated[
    str,
    _matching(re.compile(r"[A-Za-z0-9_.:-]{1,128}"), "a request_id is 1 to 128 characters of letters, digits, '.', ':', '_' or '-'"),
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
        f"an actor is a roster agent id, 'customer:<customer_id>' or 'system:<name>' (got {value!r})"
    )


ActorId = Annotated[str, AfterValidator(_actor)]


class InputMessage(BaseModel):
    """A message from outside: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OutputMessage(BaseModel):
    """A message the engine produces: tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore")
