"""Deadline policies and business calendars, as loaded from policies/policies.toml.

A case copies its ResolvedPolicy when it opens, so editing the file never
changes a running case. Durations are written for people ("4 business hours",
"8 weeks", "close of business day 3") and parsed into a Span here.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from schemas.common import Identifier, InputMessage, OutputMessage, Severity

SpanUnit = Literal[
    "seconds",
    "minutes",
    "hours",
    "days",
    "weeks",
    "business_hours",
    "business_days",
    # The close of the n-th business day after the day of the start (FCA DISP 1.5).
    "business_days_close",
]
BUSINESS_UNITS: frozenset[str] = frozenset({"business_hours", "business_days", "business_days_close"})

_UNIT_WORDS: dict[str, SpanUnit] = {
    "s": "seconds",
    "second": "seconds",
    "seconds": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "week": "weeks",
    "weeks": "weeks",
    "business hour": "business_hours",
    "business hours": "business_hours",
    "business day": "business_days",
    "business days": "business_days",
}
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z ]+?)\s*$")
_CLOSE_OF = re.compile(r"^\s*close of business day\s+(\d+)\s*$")
SPAN_HELP = (
    "write a duration as '<number> <unit>' with unit seconds, minutes, hours, days, weeks, "
    "business hours or business days (e.g. '4 business hours', '8 weeks', '20s'), "
    "or as 'close of business day <n>'"
)


class Span(OutputMessage):
    """A duration on a calendar: elapsed time, or working time for business units."""

    amount: float = Field(gt=0)
    unit: SpanUnit

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        return parse_span(value) if isinstance(value, str) else value

    @property
    def business(self) -> bool:
        return self.unit in BUSINESS_UNITS

    def __str__(self) -> str:
        if self.unit == "business_days_close":
            return f"close of business day {self.amount:g}"
        return f"{self.amount:g} {self.unit.replace('_', ' ')}"


def parse_span(text: str) -> dict[str, object]:
    lowered = text.lower()
    close = _CLOSE_OF.match(lowered)
    if close:
        return {"amount": float(close.group(1)), "unit": "business_days_close"}
    match = _SPAN.match(lowered)
    unit = _UNIT_WORDS.get(match.group(2)) if match else None
    if match is None or unit is None:
        raise ValueError(f"{text!r} is not a duration: {SPAN_HELP}")
    return {"amount": float(match.group(1)), "unit": unit}


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class WorkingHours(OutputMessage):
    """One day's opening, in minutes after local midnight (closes may be 1440, i.e. 24:00)."""

    opens: int = Field(ge=0, lt=1440)
    closes: int = Field(gt=0, le=1440)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        match = _HOURS.match(value.strip())
        if not match:
            raise ValueError(f"working hours are written 'HH:MM-HH:MM', e.g. '09:00-17:00' (got {value!r})")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return {"opens": h1 * 60 + m1, "closes": h2 * 60 + m2}

    @model_validator(mode="after")
    def _opens_before_closing(self) -> "WorkingHours":
        if self.closes <= self.opens:
            raise ValueError("working hours must close after they open")
        return self

    def __str__(self) -> str:
        return f"{self.opens // 60:02d}:{self.opens % 60:02d}-{self.closes // 60:02d}:{self.closes % 60:02d}"


class Calendar(OutputMessage):
    """When the business works: an IANA time zone, hours per weekday, holiday dates."""

    name: Identifier
    time_zone: str
    working_hours: dict[Weekday, WorkingHours]
    holidays: list[date] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{zone!r} is not an IANA time zone (e.g. Europe/London, America/New_York)")
        return zone

    @field_validator("working_hours")
    @classmethod
    def _some_working_day(cls, hours: dict) -> dict:
        if not hours:
            raise ValueError("a calendar needs at least one working day")
        return hours

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def always_open(self) -> bool:
        return len(self.working_hours) == 7 and not self.holidays and all(
            h.opens == 0 and h.closes == 1440 for h in self.working_hours.values()
        )


ClockName = Literal["acknowledge", "first_response", "customer_update", "resolution"]
CLOCK_NAMES: tuple[ClockName, ...] = ("acknowledge", "first_response", "customer_update", "resolution")


class ClockSpec(OutputMessage):
    """One clock of a policy: its deadline and when each escalation level fires.

    levels are measured from the clock's start; by default level 1 at 75% of
    `due`, level 2 at `due`, level 3 at 150% (the contract's ladder).
    """

    due: Span
    levels: list[Span] | None = Field(default=None, min_length=3, max_length=3)
    # Whether the clock stops while the case waits on the customer.
    pauses: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        return {"due": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_measure(self) -> "ClockSpec":
        spans = [self.due, *(self.levels or [])]
        if len({span.business for span in spans}) > 1:
            raise ValueError("a clock's due and levels must all be business or all calendar durations")
        return self


def default_transfer_acceptance() -> ClockSpec:
    return ClockSpec(due=Span(amount=4, unit="business_hours"))


def default_goodwill_approval() -> ClockSpec:
    return ClockSpec(due=Span(amount=4, unit="business_hours"))


def default_feedback_window() -> Span:
    return Span(amount=14, unit="days")


class PromiseTerms(OutputMessage):
    """How a promise's own clock escalates: level 1 before it is due, level 3 after."""

    warn_before: Span = Field(default_factory=lambda: Span(amount=1, unit="hours"))
    level3_after: Span = Field(default_factory=lambda: Span(amount=24, unit="hours"))
    pauses: bool = True

    @field_validator("warn_before", "level3_after")
    @classmethod
    def _elapsed_time(cls, span: Span) -> Span:
        if span.business:
            raise ValueError("promise terms are elapsed time (seconds, minutes, hours, days), not business time")
        return span


# When a letter sent by the owner is drafted for them: the timeline event that prompts it
# (update_due: the customer_update clock's first warning, level 1).
LetterTrigger = Literal["resolution_proposed", "resolution_confirmed", "update_due"]
_AFTER = re.compile(r"^\s*after\s+(.+?)\s*$")
SEND_HELP = (
    "send is 'on receipt' (the engine sends it when the case opens), 'after <duration>' (the engine sends it "
    "that long after receipt, if the case is still open) or 'by the owner' (drafted for the owner, who sends "
    "it with contact_customer letter=<name>)"
)


def parse_send(text: str) -> tuple[str, Span | None]:
    """A letter's `send`: ('on receipt' | 'by the owner' | 'after', the span after receipt for 'after')."""
    words = " ".join(text.lower().split())
    if words in ("on receipt", "by the owner"):
        return words, None
    after = _AFTER.match(words)
    if after is None:
        raise ValueError(f"{text!r} is not when a letter is sent: {SEND_HELP}")
    try:
        span = Span.model_validate(after.group(1))
    except ValueError:
        raise ValueError(f"{text!r}: after what? {SPAN_HELP}") from None
    if span.unit == "business_days_close":
        raise ValueError(f"{text!r}: a letter is sent after a duration, not at a close of business ({SPAN_HELP})")
    return "after", span


class LetterTerms(OutputMessage):
    """One letter a policy sends (docs/lifecycle.md, "Letters"): its template, and who sends it when.

    template: delivery/templates/letters/<template>.txt.j2 and .html.j2.
    send: 'on receipt', 'after <duration>' (from receipt, while the case is open) or 'by the owner'.
    drafted_on: for a letter the owner sends, the event that drafts it for them.
    within: for a letter the owner sends, only for a complaint the customer accepted within this long of
      receipt (the FCA's summary resolution communication, DISP 1.5).
    unless_sent: for a letter sent after a duration, the letters that make it unneeded once sent.
    """

    template: Identifier
    send: str
    drafted_on: LetterTrigger | None = None
    within: Span | None = None
    unless_sent: list[Identifier] = Field(default_factory=list)

    @field_validator("send")
    @classmethod
    def _known_send(cls, value: str) -> str:
        kind, span = parse_send(value)
        return f"after {span}" if span is not None else kind

    @model_validator(mode="after")
    def _fits_who_sends(self) -> "LetterTerms":
        if not self.by_owner and (self.drafted_on is not None or self.within is not None):
            raise ValueError("drafted_on and within are for a letter sent 'by the owner'")
        if self.after is None and self.unless_sent:
            raise ValueError("unless_sent is for a letter sent 'after <duration>'")
        return self

    @property
    def by_owner(self) -> bool:
        return self.send == "by the owner"

    @property
    def on_receipt(self) -> bool:
        return self.send == "on receipt"

    @property
    def after(self) -> Span | None:
        return parse_send(self.send)[1]


class PolicyTerms(InputMessage):
    """A policy as written in the file: clocks for all severities, overridden per severity."""

    description: str
    calendar: Identifier
    clocks: dict[ClockName, ClockSpec] = Field(default_factory=dict)
    severities: dict[Severity, dict[ClockName, ClockSpec]] = Field(default_factory=dict)
    confirmation_window: ClockSpec
    promise: PromiseTerms = Field(default_factory=PromiseTerms)
    transfer_to_supervisor_at_level3: bool = False
    # FCA DISP 1.5: resolved to the customer's satisfaction by then, it may close
    # with a summary resolution communication.
    summary_resolution_by: Span | None = None
    # How long a pending owner has to accept a transfer, and a supervisor to decide on goodwill above the owner's limit.
    transfer_acceptance: ClockSpec = Field(default_factory=default_transfer_acceptance)
    goodwill_approval: ClockSpec = Field(default_factory=default_goodwill_approval)
    # After closing, the customer may rate the handling, and a new contact reopens the case, for this long.
    feedback_window: Span = Field(default_factory=default_feedback_window)
    # The letters the policy sends the customer, by name (docs/lifecycle.md, "Letters").
    letters: dict[Identifier, LetterTerms] = Field(default_factory=dict)
    # A case closes (except withdrawn) only once one of these letters was sent (the FCA's final
    # response or summary resolution communication, DISP 1.5.4R and 1.6.2R).
    closing_letters: list[Identifier] = Field(default_factory=list)
    # How long a notification of the policy's cases is retried before its delivery gives up
    # (docs/delivery.md); None: the worker's DELIVERY_GIVE_UP_SECONDS (default 24 hours).
    delivery_give_up: Span | None = None
    references: list[str] = Field(default_factory=list)


class ResolvedPolicy(OutputMessage):
    """Everything a case needs of its policy, copied into the case when it opens."""

    name: str
    description: str
    severity: Severity
    calendar: Calendar
    clocks: dict[ClockName, ClockSpec]
    confirmation_window: ClockSpec
    promise: PromiseTerms
    transfer_to_supervisor_at_level3: bool = False
    summary_resolution_by: Span | None = None
    transfer_acceptance: ClockSpec = Field(default_factory=default_transfer_acceptance)
    goodwill_approval: ClockSpec = Field(default_factory=default_goodwill_approval)
    feedback_window: Span = Field(default_factory=default_feedback_window)
    letters: dict[str, LetterTerms] = Field(default_factory=dict)
    closing_letters: list[str] = Field(default_factory=list)


class ResolvePolicyInput(InputMessage):
    complaint_id: str
    policy: str | None = None
    severity: Severity
    received_at: datetime
