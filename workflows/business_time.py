"""Deadline arithmetic on business calendars: pure, deterministic, no I/O, no clock.

It runs inside Temporal's workflow sandbox, so it never reads the current time;
every instant comes in as an argument. Only zoneinfo, datetime and the models of
schemas/policy.py are used.

Conventions
-----------
* Every datetime argument must be timezone-aware (ValueError naming the argument
  otherwise). Every result is aware and in UTC. Arithmetic is done in whole
  microseconds; amounts are rounded to the nearest microsecond once.
* Local wall-clock times are turned into instants by one rule: a time that does
  not exist (spring-forward gap) moves forward by the length of the gap; an
  ambiguous time (autumn fold) is its first occurrence (fold=0).
* Working time on a local date is the interval [opening, closing) of instants
  between that date's opening and closing wall-clock times (closing 24:00 is the
  next local midnight). A weekday missing from working_hours, or a date listed in
  holidays, has none. A working day containing a DST change has its real length
  (00:00-24:00 on the spring-forward day in Europe/London is 23 hours).
* Searches walk days, never minutes. If a calendar has no working time for 3,660
  consecutive days, ValueError says so instead of looping forever.

Span units (deadline)
---------------------
* seconds, minutes, hours: elapsed time, start + amount.
* days, weeks: the same local wall-clock time n days later in the calendar's
  zone (working hours and holidays ignored); a fractional day is then added as
  elapsed time (fraction * 24h), so 0.99 days can end after 1 day across a
  spring-forward change.
* business_hours: the instant at which `amount` hours of working time have
  elapsed, counting from the next opening if start is outside working time. It
  lands exactly on a closing time rather than the next opening. On an
  always-open calendar it equals `hours`.
* business_days: start moves to the next working moment; the deadline is the
  same local time of day on the n-th following working day, clamped into that
  day's working hours (before opening -> opening, after closing -> closing).
  A fractional part f lies between the n-th and (n+1)-th such deadline: f of the
  working time between them is added to the n-th. When both days have equal
  hours this is f * the working day's length (Mon 10:00 + 1.5 = Tue 14:00 on
  09:00-17:00), and it keeps deadlines monotonic in the amount when days differ.
  Where working hours contain a clock change (24x7, night shifts), "the same
  time of day" is not monotonic in start through the skipped or repeated hour.
* business_days_close: the closing of the n-th working day after the local date
  of start (start's own date never counts); n must be a whole number >= 1.

Other functions
---------------
* working_seconds_between(start, end): working seconds in [start, end); 0 if
  end <= start.
* add_working_seconds(start, s): start itself for s == 0; otherwise the earliest
  instant t with working_seconds_between(start, t) == s, so never inside
  non-working time except exactly on a closing instant. s must be >= 0.
* is_working_time(m): m lies in its day's working interval.
* next_working_moment(m): m if it is working time, else the next opening.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from schemas.policy import WEEKDAYS, Calendar, Span

__all__ = [
    "add_working_seconds",
    "deadline",
    "is_working_time",
    "next_working_moment",
    "working_seconds_between",
]

MAX_IDLE_DAYS = 3660

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_US_PER_SECOND = 1_000_000
_ELAPSED_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}
_DAY_US = 86_400_000_000


# ---------------------------------------------------------------------------
# Instants as integer microseconds since the epoch (exact arithmetic).


def _aware(value: datetime, name: str) -> int:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a timezone-aware datetime (got {type(value).__name__})")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (got naive {value.isoformat()})")
    return (value - _EPOCH) // _US


def _utc(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _round_us(seconds: float, what: str) -> int:
    if not math.isfinite(seconds):
        raise ValueError(f"{what} must be a finite number (got {seconds!r})")
    return round(seconds * _US_PER_SECOND)


class _Days:
    """A calendar prepared for walking: weekday hours, holidays, zone conversions."""

    def __init__(self, calendar: Calendar) -> None:
        self.name = calendar.name
        self.zone: ZoneInfo = calendar.zone
        self.holidays = frozenset(calendar.holidays)
        self.hours: list[tuple[int, int] | None] = [None] * 7
        for index, day in enumerate(WEEKDAYS):
            hours = calendar.working_hours.get(day)
            if hours is not None:
                self.hours[index] = (hours.opens, hours.closes)
        self._midnights: dict[date, int] = {}

    def local_us(self, day: date, at: time) -> int:
        """The instant of a local wall-clock time: gaps move forward, folds take the first."""
        return (datetime.combine(day, at).replace(tzinfo=self.zone, fold=0) - _EPOCH) // _US

    def minute_us(self, day: date, minute: int) -> int:
        """The instant of a local time given in minutes after midnight (1440 = next midnight)."""
        if minute == 0:
            return self.midnight(day)
        if minute == 1440:
            return self.midnight(day + timedelta(days=1))
        moment = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.zone)
        return (moment - _EPOCH) // _US

    def midnight(self, day: date) -> int:
        us = self._midnights.get(day)
        if us is None:
            us = self._midnights[day] = (datetime(day.year, day.month, day.day, tzinfo=self.zone) - _EPOCH) // _US
        return us

    def local_date(self, us: int) -> date:
        return _utc(us).astimezone(self.zone).date()

    def interval(self, day: date) -> tuple[int, int] | None:
        """The working interval of a local date, or None if it has no working time.

        Clipped to [local midnight, next local midnight) so that days never
        overlap, even in zones that change their clocks around midnight.
        """
        if day in self.holidays:
            return None
        hours = self.hours[day.weekday()]
        if hours is None:
            return None
        opens = max(self.minute_us(day, hours[0]), self.midnight(day))
        closes = min(self.minute_us(day, hours[1]), self.midnight(day + timedelta(days=1)))
        return (opens, closes) if opens < closes else None

    def day_of(self, us: int) -> date:
        """The date whose [midnight, next midnight) holds the instant (its local date, except
        in a clock change at midnight)."""
        day = self.local_date(us)
        if us < self.midnight(day):
            return day - timedelta(days=1)
        if us >= self.midnight(day + timedelta(days=1)):
            return day + timedelta(days=1)
        return day

    def working_days(self, after: date) -> Iterator[tuple[date, int, int]]:
        """Working days strictly after a date, in order; ValueError after 3,660 idle days."""
        day, idle = after, 0
        while True:
            day += timedelta(days=1)
            interval = self.interval(day)
            if interval is None:
                idle += 1
                if idle >= MAX_IDLE_DAYS:
                    raise ValueError(
                        f"calendar {self.name!r} has no working time in the {MAX_IDLE_DAYS:,} days "
                        f"after {after.isoformat()}"
                    )
                continue
            idle = 0
            yield day, interval[0], interval[1]

    def intervals_from(self, us: int) -> Iterator[tuple[date, int, int]]:
        """Working intervals that end after an instant, in order."""
        for day, opens, closes in self.working_days(self.day_of(us) - timedelta(days=1)):
            if closes > us:
                yield day, opens, closes

    def next_working(self, us: int) -> tuple[date, int, int, int]:
        """(day, opening, closing, moment): the first working moment at or after us."""
        day, opens, closes = next(self.intervals_from(us))
        return day, opens, closes, max(us, opens)

    def add(self, start: int, amount: int) -> int:
        if amount == 0:
            return start
        remaining = amount
        for _, opens, closes in self.intervals_from(start):
            begin = max(start, opens)
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
        raise AssertionError("unreachable: working_days never ends")  # pragma: no cover

    def between(self, start: int, end: int) -> int:
        if end <= start:
            return 0
        total = 0
        day, last = self.day_of(start), self.day_of(end)
        while day <= last:
            interval = self.interval(day)
            if interval is not None:
                total += max(0, min(end, interval[1]) - max(start, interval[0]))
            day += timedelta(days=1)
        return total

    def is_working(self, us: int) -> bool:
        interval = self.interval(self.day_of(us))
        return interval is not None and interval[0] <= us < interval[1]


# ---------------------------------------------------------------------------
# Public API.


def is_working_time(moment: datetime, calendar: Calendar) -> bool:
    """Whether the instant lies within working hours of a non-holiday local date."""
    return _Days(calendar).is_working(_aware(moment, "moment"))


def next_working_moment(moment: datetime, calendar: Calendar) -> datetime:
    """The moment itself if it is working time, else the next opening (in UTC)."""
    return _utc(_Days(calendar).next_working(_aware(moment, "moment"))[3])


def working_seconds_between(start: datetime, end: datetime, calendar: Calendar) -> float:
    """Working seconds in [start, end); 0 if end <= start."""
    start_us, end_us = _aware(start, "start"), _aware(end, "end")
    return _Days(calendar).between(start_us, end_us) / _US_PER_SECOND


def add_working_seconds(start: datetime, seconds: float, calendar: Calendar) -> datetime:
    """The earliest instant at which `seconds` of working time have elapsed since start."""
    start_us = _aware(start, "start")
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0 (got {seconds!r})")
    return _utc(_Days(calendar).add(start_us, _round_us(seconds, "seconds")))


def deadline(start: datetime, span: Span, calendar: Calendar) -> datetime:
    """The instant `span` after `start` on `calendar` (see the module docstring)."""
    start_us = _aware(start, "start")
    amount, unit = span.amount, span.unit
    if not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"a span's amount must be a positive number (got {amount!r})")
    if unit in _ELAPSED_SECONDS or (unit == "business_hours" and calendar.always_open):
        per = _ELAPSED_SECONDS["hours" if unit == "business_hours" else unit]
        return _utc(start_us + _round_us(amount * per, "amount"))
    if unit in ("days", "weeks"):
        return _utc(_calendar_days(start_us, amount * 7 if unit == "weeks" else amount, calendar.zone))
    days = _Days(calendar)
    if unit == "business_hours":
        return _utc(days.add(start_us, _round_us(amount * 3600, "amount")))
    if unit == "business_days":
        return _utc(_business_days(days, start_us, amount))
    if unit == "business_days_close":
        return _utc(_close_of_business_day(days, start_us, amount))
    raise ValueError(f"unknown span unit {unit!r}")  # pragma: no cover


def _calendar_days(start_us: int, amount: float, zone: ZoneInfo) -> int:
    whole = math.floor(amount)
    wall = _utc(start_us).astimezone(zone).replace(tzinfo=None, fold=0) + timedelta(days=whole)
    landed = (wall.replace(tzinfo=zone, fold=0) - _EPOCH) // _US
    return landed + round((amount - whole) * _DAY_US)


def _business_days(days: _Days, start_us: int, amount: float) -> int:
    whole = math.floor(amount)
    fraction = amount - whole
    first_day, _, _, moment = days.next_working(start_us)
    wall = _utc(moment).astimezone(days.zone).time().replace(tzinfo=None, fold=0)

    def landing(day: date, opens: int, closes: int) -> int:
        return min(max(days.local_us(day, wall), opens), closes)

    following = days.working_days(first_day)
    landed = moment
    if whole:
        for _ in range(whole - 1):
            next(following)
        landed = landing(*next(following))
    if fraction == 0:
        return landed
    after = landing(*next(following))
    return days.add(landed, round(fraction * days.between(landed, after)))


def _close_of_business_day(days: _Days, start_us: int, amount: float) -> int:
    if amount != math.floor(amount) or amount < 1:
        raise ValueError(f"close of business day n needs a whole number n >= 1 (got {amount:g})")
    following = days.working_days(days.local_date(start_us))
    for _ in range(int(amount)):
        _, _, closes = next(following)
    return closes
