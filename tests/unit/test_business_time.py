"""workflows/business_time.py: deadlines on business calendars, by example and by property."""

from __future__ import annotations

import time as perf
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas.policy import Calendar, Span
from workflows.business_time import (
    add_working_seconds,
    deadline,
    is_working_time,
    next_working_moment,
    working_seconds_between,
)

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_ONLY = ("mon", "tue", "wed", "thu", "fri")
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
US_ = timedelta(microseconds=1)

# England & Wales bank holidays 2026-2028.
UK_HOLIDAYS = [
    date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 4), date(2026, 5, 25),
    date(2026, 8, 31), date(2026, 12, 25), date(2026, 12, 28),
    date(2027, 1, 1), date(2027, 3, 26), date(2027, 3, 29), date(2027, 5, 3), date(2027, 5, 31),
    date(2027, 8, 30), date(2027, 12, 27), date(2027, 12, 28),
    date(2028, 1, 3), date(2028, 4, 14), date(2028, 4, 17), date(2028, 5, 1), date(2028, 5, 29),
    date(2028, 8, 28), date(2028, 12, 25), date(2028, 12, 26),
]
# US federal holidays 2026-2028 (observed dates).
US_HOLIDAYS = [
    date(2026, 1, 1), date(2026, 1, 19), date(2026, 5, 25), date(2026, 7, 3), date(2026, 9, 7),
    date(2026, 11, 26), date(2026, 12, 25),
    date(2027, 1, 1), date(2027, 1, 18), date(2027, 5, 31), date(2027, 7, 5), date(2027, 9, 6),
    date(2027, 11, 25), date(2027, 12, 24), date(2027, 12, 31),
    date(2028, 1, 17), date(2028, 5, 29), date(2028, 7, 4), date(2028, 9, 4), date(2028, 11, 23),
    date(2028, 12, 25),
]

uk = Calendar(
    name="uk",
    time_zone="Europe/London",
    working_hours={day: "09:00-17:00" for day in WEEKDAYS_ONLY},
    holidays=UK_HOLIDAYS,
)
us = Calendar(
    name="us",
    time_zone="America/New_York",
    working_hours={day: "09:00-17:00" for day in WEEKDAYS_ONLY},
    holidays=US_HOLIDAYS,
)
always = Calendar(
    name="always",
    time_zone="Europe/London",
    working_hours={day: "00:00-24:00" for day in WEEKDAY_NAMES},
)
shop = Calendar(
    name="shop",
    time_zone="Europe/London",
    working_hours={**{day: "09:00-17:00" for day in WEEKDAYS_ONLY}, "sat": "09:00-13:00"},
    holidays=UK_HOLIDAYS,
)
# A night desk whose hours span the New York clock changes (02:00 local).
night = Calendar(
    name="night",
    time_zone="America/New_York",
    working_hours={day: "00:00-06:00" for day in WEEKDAY_NAMES},
)
CALENDARS = [uk, us, always, shop, night]
# Calendars whose working hours contain no clock change (wall-clock time of day is monotonic there).
DST_FREE_HOURS = [uk, us, shop]


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def new_york(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK, fold=fold)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def span(amount: float, unit: str) -> Span:
    return Span(amount=amount, unit=unit)


def due(start: datetime, amount: float, unit: str, calendar: Calendar = uk) -> datetime:
    result = deadline(start, span(amount, unit), calendar)
    assert result.tzinfo is UTC
    return result


def is_closing_instant(moment: datetime, calendar: Calendar) -> bool:
    moment = moment.astimezone(UTC)
    return not is_working_time(moment, calendar) and is_working_time(moment - US_, calendar)


# ---------------------------------------------------------------------------
# Elapsed and calendar time.


def test_elapsed_units_ignore_the_calendar():
    start = london(2027, 5, 29, 12, 0)  # a Saturday
    assert due(start, 90, "seconds") == utc(2027, 5, 29, 11, 1, 30)
    assert due(start, 1.5, "minutes") == utc(2027, 5, 29, 11, 1, 30)
    assert due(start, 36, "hours") == utc(2027, 5, 30, 23, 0)
    assert due(start, 1.1, "hours") == utc(2027, 5, 29, 12, 6)
    assert due(start, 0.000001, "seconds") == utc(2027, 5, 29, 11, 0, 0, 1)


def test_results_are_utc_whatever_the_input_zone():
    start = new_york(2027, 6, 1, 10, 0)
    for unit in ("hours", "days", "business_hours", "business_days", "business_days_close"):
        assert due(start, 1, unit, us).tzinfo is UTC
    assert next_working_moment(start, us).tzinfo is UTC
    assert add_working_seconds(start, 0, us) == start
    assert add_working_seconds(start, 0, us).tzinfo is UTC


def test_days_and_weeks_keep_local_wall_clock_time():
    assert due(london(2027, 6, 1, 10, 0), 3, "days") == utc(2027, 6, 4, 9, 0)
    # Two weeks across the spring change: 10:00 GMT -> 10:00 BST.
    assert due(london(2027, 3, 19, 10, 0), 2, "weeks") == utc(2027, 4, 2, 9, 0)
    # Eight weeks across the autumn change: 10:00 BST -> 10:00 GMT.
    assert due(london(2027, 10, 1, 10, 0), 8, "weeks") == utc(2027, 11, 26, 10, 0)
    # Days ignore weekends and holidays.
    assert due(london(2027, 5, 28, 18, 30), 1, "days") == utc(2027, 5, 29, 17, 30)


def test_days_across_spring_forward():
    # Europe/London 2027-03-28: 01:00 GMT -> 02:00 BST. Noon to noon is 23 hours.
    assert due(london(2027, 3, 27, 12, 0), 1, "days") == utc(2027, 3, 28, 11, 0)
    # 01:30 does not exist on the 28th: forward by the gap, to 02:30 BST.
    assert due(london(2027, 3, 27, 1, 30), 1, "days") == utc(2027, 3, 28, 1, 30)
    # Fraction after the whole days, as elapsed time: noon BST + 12h.
    assert due(london(2027, 3, 27, 12, 0), 1.5, "days") == utc(2027, 3, 28, 23, 0)
    # America/New_York 2027-03-14: 02:00 EST -> 03:00 EDT; 02:30 is moved to 03:30 EDT.
    assert due(new_york(2027, 3, 13, 2, 30), 1, "days", us) == utc(2027, 3, 14, 7, 30)
    assert due(new_york(2027, 3, 13, 12, 0), 1, "days", us) == utc(2027, 3, 14, 16, 0)


def test_days_across_fall_back():
    # Europe/London 2027-10-31: 02:00 BST -> 01:00 GMT. Noon to noon is 25 hours.
    assert due(london(2027, 10, 30, 12, 0), 1, "days") == utc(2027, 10, 31, 12, 0)
    # 01:30 happens twice on the 31st: the first (BST) one.
    assert due(london(2027, 10, 30, 1, 30), 1, "days") == utc(2027, 10, 31, 0, 30)
    # America/New_York 2027-11-07: 02:00 EDT -> 01:00 EST; 01:30 EDT is the first.
    assert due(new_york(2027, 11, 6, 1, 30), 1, "days", us) == utc(2027, 11, 7, 5, 30)
    # From the second 01:30 (EST) of the fall-back day, one day on is 01:30 EST on the 8th.
    assert due(new_york(2027, 11, 7, 1, 30, fold=1), 1, "days", us) == utc(2027, 11, 8, 6, 30)


# ---------------------------------------------------------------------------
# Working time.


def test_is_working_time_edges():
    assert is_working_time(london(2027, 6, 1, 9, 0), uk)
    assert is_working_time(london(2027, 6, 1, 16, 59, 59, 999999), uk)
    assert not is_working_time(london(2027, 6, 1, 17, 0), uk)
    assert not is_working_time(london(2027, 6, 1, 8, 59, 59, 999999), uk)
    assert not is_working_time(london(2027, 6, 5, 12, 0), uk)  # Saturday
    assert is_working_time(london(2027, 6, 5, 12, 0), shop)
    assert not is_working_time(london(2027, 6, 5, 13, 0), shop)
    assert not is_working_time(london(2027, 5, 31, 12, 0), uk)  # bank holiday
    # The calendar's zone decides, not the input's: 09:30 London is 04:30 in New York.
    assert is_working_time(new_york(2027, 6, 1, 4, 30), uk)
    assert not is_working_time(london(2027, 6, 1, 9, 30), us)
    assert is_working_time(utc(2027, 6, 1, 13, 0), us)  # 09:00 EDT


def test_next_working_moment():
    assert next_working_moment(london(2027, 6, 1, 10, 0), uk) == utc(2027, 6, 1, 9, 0)
    assert next_working_moment(london(2027, 6, 1, 7, 0), uk) == utc(2027, 6, 1, 8, 0)
    assert next_working_moment(london(2027, 6, 1, 17, 0), uk) == utc(2027, 6, 2, 8, 0)
    # Friday evening before the spring bank holiday -> Tuesday 09:00.
    assert next_working_moment(london(2027, 5, 28, 18, 30), uk) == utc(2027, 6, 1, 8, 0)
    # Christmas 2027: Sat 25, Sun 26, Mon 27 and Tue 28 closed.
    assert next_working_moment(london(2027, 12, 24, 17, 0), uk) == utc(2027, 12, 29, 9, 0)


def test_working_seconds_between():
    assert working_seconds_between(london(2027, 6, 1, 10, 0), london(2027, 6, 1, 11, 30), uk) == 5400
    assert working_seconds_between(london(2027, 6, 1, 18, 0), london(2027, 6, 2, 8, 0), uk) == 0
    assert working_seconds_between(london(2027, 6, 2, 8, 0), london(2027, 6, 1, 18, 0), uk) == 0
    # Friday 15:00 to Tuesday 10:00 over the bank holiday weekend: 2h + 1h.
    assert working_seconds_between(london(2027, 5, 28, 15, 0), london(2027, 6, 1, 10, 0), uk) == 3 * 3600
    # A whole year of 2027: 261 weekdays, 8 of them bank holidays, 8 hours each.
    assert working_seconds_between(london(2027, 1, 1), london(2028, 1, 1), uk) == 253 * 8 * 3600
    assert working_seconds_between(utc(2027, 6, 1, 13, 0, 0, 1), utc(2027, 6, 1, 13, 0, 0, 3), us) == 2e-6


def test_working_days_containing_a_clock_change_have_their_real_length():
    assert working_seconds_between(london(2027, 3, 28), london(2027, 3, 29), always) == 23 * 3600
    assert working_seconds_between(london(2027, 10, 31), london(2027, 11, 1), always) == 25 * 3600
    # Night desk 00:00-06:00 New York: 5 hours on 2027-03-14, 7 hours on 2027-11-07.
    assert working_seconds_between(new_york(2027, 3, 14), new_york(2027, 3, 15), night) == 5 * 3600
    assert working_seconds_between(new_york(2027, 11, 7), new_york(2027, 11, 8), night) == 7 * 3600
    assert next_working_moment(new_york(2027, 11, 7, 6, 0), night) == utc(2027, 11, 8, 5, 0)
    assert is_working_time(new_york(2027, 11, 7, 1, 30, fold=1), night)


def test_add_working_seconds():
    start = london(2027, 6, 1, 16, 0)
    assert add_working_seconds(start, 3600, uk) == utc(2027, 6, 1, 16, 0)  # closing, not next opening
    assert add_working_seconds(start, 3601, uk) == utc(2027, 6, 2, 8, 0, 1)
    assert add_working_seconds(start, 0.0000021, uk) == utc(2027, 6, 1, 15, 0, 0, 2)
    # Zero leaves start where it is, even outside working time.
    saturday = london(2027, 6, 5, 12, 0)
    assert add_working_seconds(saturday, 0, uk) == utc(2027, 6, 5, 11, 0)
    assert add_working_seconds(saturday, 1, uk) == utc(2027, 6, 7, 8, 0, 1)
    with pytest.raises(ValueError, match="seconds"):
        add_working_seconds(start, -1, uk)
    with pytest.raises(ValueError, match="finite"):
        add_working_seconds(start, float("nan"), uk)


# ---------------------------------------------------------------------------
# Business hours.


def test_business_hours_receipt_before_after_and_at_the_edges():
    assert due(london(2027, 6, 1, 7, 0), 2, "business_hours") == utc(2027, 6, 1, 10, 0)  # before opening
    assert due(london(2027, 6, 1, 18, 0), 2, "business_hours") == utc(2027, 6, 2, 10, 0)  # after closing
    assert due(london(2027, 6, 1, 9, 0), 8, "business_hours") == utc(2027, 6, 1, 16, 0)  # opening -> closing
    assert due(london(2027, 6, 1, 17, 0), 1, "business_hours") == utc(2027, 6, 2, 9, 0)  # at closing
    assert due(london(2027, 6, 1, 16, 0), 1, "business_hours") == utc(2027, 6, 1, 16, 0)  # lands on closing


def test_business_hours_skip_weekends_and_holidays():
    assert due(london(2027, 6, 4, 15, 0), 4, "business_hours") == utc(2027, 6, 7, 10, 0)
    # Thursday before Easter 2027 (Good Friday, Easter Monday, clocks forward on Sunday).
    assert due(london(2027, 3, 25, 15, 0), 4, "business_hours") == utc(2027, 3, 30, 10, 0)
    assert due(london(2027, 6, 4, 15, 0), 4, "business_hours", shop) == utc(2027, 6, 5, 10, 0)
    assert due(london(2027, 6, 4, 15, 0), 6.5, "business_hours", shop) == utc(2027, 6, 7, 8, 30)


def test_business_hours_across_clock_changes():
    # Friday 16:00 EST + 2 business hours -> Monday 10:00 EDT.
    assert due(new_york(2027, 3, 12, 16, 0), 2, "business_hours", us) == utc(2027, 3, 15, 14, 0)
    # Friday 16:00 EDT + 2 business hours -> Monday 10:00 EST.
    assert due(new_york(2027, 11, 5, 16, 0), 2, "business_hours", us) == utc(2027, 11, 8, 15, 0)
    # 24x7: business hours are plain hours, DST or not.
    assert due(london(2027, 3, 28), 24, "business_hours", always) == utc(2027, 3, 29, 0, 0)
    assert due(london(2027, 10, 31), 24, "business_hours", always) == utc(2027, 10, 31, 23, 0)
    # Night desk: 7 working hours on the New York fall-back day.
    assert due(new_york(2027, 11, 7), 7, "business_hours", night) == utc(2027, 11, 7, 11, 0)
    assert due(new_york(2027, 3, 14), 5, "business_hours", night) == utc(2027, 3, 14, 10, 0)
    assert due(new_york(2027, 3, 14), 6, "business_hours", night) == utc(2027, 3, 15, 5, 0)


# ---------------------------------------------------------------------------
# Business days.


def test_business_days_examples():
    assert due(london(2027, 6, 1, 10, 0), 1, "business_days") == utc(2027, 6, 2, 9, 0)
    # Friday 16:00 before the spring bank holiday -> Tuesday 16:00.
    assert due(london(2027, 5, 28, 16, 0), 1, "business_days") == utc(2027, 6, 1, 15, 0)
    # Saturday 12:00 -> rolled to Monday 09:00 -> Tuesday 09:00.
    assert due(london(2027, 6, 5, 12, 0), 1, "business_days") == utc(2027, 6, 8, 8, 0)
    # Before opening counts from the opening, after closing from the next opening.
    assert due(london(2027, 6, 1, 7, 0), 2, "business_days") == utc(2027, 6, 3, 8, 0)
    assert due(london(2027, 6, 1, 17, 0), 2, "business_days") == utc(2027, 6, 4, 8, 0)
    assert due(london(2027, 6, 1, 9, 0), 5, "business_days") == utc(2027, 6, 8, 8, 0)
    # Twenty business days over Christmas 2027 (27th, 28th and 2028-01-03 are holidays).
    assert due(london(2027, 12, 15, 11, 0), 20, "business_days") == utc(2028, 1, 17, 11, 0)


def test_business_days_clamp_into_short_days():
    # Friday 15:00 + 1 on a short Saturday (09:00-13:00) -> Saturday 13:00 (its closing).
    assert due(london(2027, 6, 4, 15, 0), 1, "business_days", shop) == utc(2027, 6, 5, 12, 0)
    # Saturday 10:00 + 1 -> Monday 10:00.
    assert due(london(2027, 6, 5, 10, 0), 1, "business_days", shop) == utc(2027, 6, 7, 9, 0)


def test_fractional_business_days():
    # 1.5 business days on equal days: the next day's same time + half a working day.
    assert due(london(2027, 6, 1, 10, 0), 1.5, "business_days") == utc(2027, 6, 2, 13, 0)
    assert due(london(2027, 6, 1, 10, 0), 0.25, "business_days") == utc(2027, 6, 1, 11, 0)
    # Unequal days: the fraction is of the working time between the n-th and (n+1)-th deadline.
    # Fri 15:00 -> Sat 13:00 is 6 working hours; half of them -> Sat 10:00.
    assert due(london(2027, 6, 4, 15, 0), 0.5, "business_days", shop) == utc(2027, 6, 5, 9, 0)
    # Sat 13:00 -> Mon 15:00 is 6 working hours; half of them -> Mon 12:00.
    assert due(london(2027, 6, 4, 15, 0), 1.5, "business_days", shop) == utc(2027, 6, 7, 11, 0)


def test_business_days_across_clock_changes():
    # Friday 16:00 EST + 1 -> Monday 16:00 EDT; Friday 16:00 EDT + 1 -> Monday 16:00 EST.
    assert due(new_york(2027, 3, 12, 16, 0), 1, "business_days", us) == utc(2027, 3, 15, 20, 0)
    assert due(new_york(2027, 11, 5, 16, 0), 1, "business_days", us) == utc(2027, 11, 8, 21, 0)
    # Thursday 10:00 GMT before Easter + 1 -> Tuesday 10:00 BST.
    assert due(london(2027, 3, 25, 10, 0), 1, "business_days") == utc(2027, 3, 30, 9, 0)
    # 24x7 London: 01:30 GMT + 1 business day -> 01:30 on the 28th, which is in the gap: 02:30 BST.
    assert due(london(2027, 3, 27, 1, 30), 1, "business_days", always) == utc(2027, 3, 28, 1, 30)
    # Noon + 1 business day on the fall-back day -> noon GMT (25 hours later).
    assert due(london(2027, 10, 30, 12, 0), 1, "business_days", always) == utc(2027, 10, 31, 12, 0)
    # Night desk: 05:00 + 1 business day on the spring-forward day -> 05:00 EDT.
    assert due(new_york(2027, 3, 13, 5, 0), 1, "business_days", night) == utc(2027, 3, 14, 9, 0)


def test_same_time_of_day_through_a_skipped_or_repeated_working_hour():
    # Pinned, not ideal: where working hours contain a clock change, "the same local time of
    # day" is not monotonic in the start. 01:59 on the 28th falls in the gap and moves
    # forward an hour; 02:00 exists. So a later start can get an earlier deadline.
    assert due(london(2027, 3, 27, 1, 59), 1, "business_days", always) == utc(2027, 3, 28, 1, 59)
    assert due(london(2027, 3, 27, 2, 0), 1, "business_days", always) == utc(2027, 3, 28, 1, 0)
    # The second 01:15 (EST) of the New York fall-back day is later than the first 01:45 (EDT).
    assert due(new_york(2027, 11, 7, 1, 45), 1, "business_days", night) == utc(2027, 11, 8, 6, 45)
    assert due(new_york(2027, 11, 7, 1, 15, fold=1), 1, "business_days", night) == utc(2027, 11, 8, 6, 15)


def test_close_of_business_day_fca_example():
    # Received Friday 18:30, Monday a bank holiday: close of business day 3 is Thursday 17:00.
    received = london(2027, 5, 28, 18, 30)
    assert due(received, 3, "business_days_close") == utc(2027, 6, 3, 16, 0)
    assert deadline(received, Span.model_validate("close of business day 3"), uk) == utc(2027, 6, 3, 16, 0)
    # Same in August and over Easter.
    assert due(london(2027, 8, 27, 18, 30), 3, "business_days_close") == utc(2027, 9, 2, 16, 0)
    assert due(london(2027, 3, 25, 18, 30), 3, "business_days_close") == utc(2027, 4, 1, 16, 0)


def test_close_of_business_day_never_counts_the_start_date():
    assert due(london(2027, 6, 1, 8, 0), 1, "business_days_close") == utc(2027, 6, 2, 16, 0)
    assert due(london(2027, 6, 1, 10, 0), 1, "business_days_close") == utc(2027, 6, 2, 16, 0)
    assert due(london(2027, 6, 5, 10, 0), 1, "business_days_close") == utc(2027, 6, 7, 16, 0)
    assert due(london(2027, 6, 5, 10, 0), 1, "business_days_close", shop) == utc(2027, 6, 7, 16, 0)
    assert due(london(2027, 6, 4, 10, 0), 1, "business_days_close", shop) == utc(2027, 6, 5, 12, 0)
    # The start's local date is the calendar's: 23:30 New York on Monday is Tuesday in London.
    assert due(new_york(2027, 5, 31, 23, 30), 1, "business_days_close") == utc(2027, 6, 2, 16, 0)
    # Close of the fall-back day on the night desk: 06:00 EST.
    assert due(new_york(2027, 11, 6, 3, 0), 1, "business_days_close", night) == utc(2027, 11, 7, 11, 0)


def test_close_of_business_day_needs_a_whole_number():
    with pytest.raises(ValueError, match="whole number"):
        due(london(2027, 6, 1, 10, 0), 1.5, "business_days_close")
    with pytest.raises(ValueError, match="whole number"):
        due(london(2027, 6, 1, 10, 0), 0.5, "business_days_close")


# ---------------------------------------------------------------------------
# Guards.


def test_naive_datetimes_are_rejected_naming_the_argument():
    naive = datetime(2027, 6, 1, 10, 0)
    aware = london(2027, 6, 1, 10, 0)
    with pytest.raises(ValueError, match="start"):
        deadline(naive, span(1, "hours"), uk)
    with pytest.raises(ValueError, match="start"):
        working_seconds_between(naive, aware, uk)
    with pytest.raises(ValueError, match="end"):
        working_seconds_between(aware, naive, uk)
    with pytest.raises(ValueError, match="start"):
        add_working_seconds(naive, 60, uk)
    with pytest.raises(ValueError, match="moment"):
        is_working_time(naive, uk)
    with pytest.raises(ValueError, match="moment"):
        next_working_moment(naive, uk)


def test_a_calendar_without_working_time_is_an_error_not_a_hang():
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(540)]
    closed = Calendar(name="closed", time_zone="UTC", working_hours={"mon": "09:00-17:00"}, holidays=mondays)
    start = utc(2026, 1, 1)
    assert not is_working_time(utc(2026, 1, 5, 10, 0), closed)
    assert working_seconds_between(start, utc(2027, 1, 1), closed) == 0
    for call in (
        lambda: next_working_moment(start, closed),
        lambda: add_working_seconds(start, 1, closed),
        lambda: deadline(start, span(1, "business_hours"), closed),
        lambda: deadline(start, span(1, "business_days"), closed),
        lambda: deadline(start, span(1, "business_days_close"), closed),
    ):
        with pytest.raises(ValueError, match="no working time in the 3,660 days"):
            call()
    # Built without validation, with no working day at all.
    empty = Calendar.model_construct(name="empty", time_zone="UTC", working_hours={}, holidays=[])
    with pytest.raises(ValueError, match="no working time"):
        deadline(start, span(1, "business_days"), empty)
    # Working time after a long but shorter gap is found.
    sparse = Calendar(name="sparse", time_zone="UTC", working_hours={"mon": "09:00-17:00"}, holidays=mondays[:500])
    assert next_working_moment(start, sparse) == utc(2026, 1, 5, 9) + timedelta(weeks=500)


def test_long_spans_walk_days_not_minutes():
    start = london(2027, 5, 28, 18, 30)
    spans = [span(60, "business_days"), span(8, "weeks"), span(480, "business_hours"), span(60, "business_days_close")]
    began = perf.perf_counter()
    for _ in range(50):
        for each in spans:
            deadline(start, each, uk)
    assert (perf.perf_counter() - began) / 50 < 0.02
    # Counting from Tuesday 1 June 09:00: the 60th working day after it is Tuesday 24 August.
    assert due(start, 60, "business_days") == utc(2027, 8, 24, 8, 0)
    assert due(start, 480, "business_hours") == utc(2027, 8, 23, 16, 0)


# ---------------------------------------------------------------------------
# Properties.

ZONES = [UTC, LONDON, NEW_YORK]
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def on_the_quarter_hour(draw) -> datetime:
    day = draw(st.dates(date(2026, 1, 1), date(2028, 12, 31)))
    moment = datetime(day.year, day.month, day.day, draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45])))
    return moment.replace(tzinfo=draw(st.sampled_from(ZONES)), fold=draw(st.integers(0, 1)))


# The clock changes of 2026-2028, in UTC: Europe/London at 01:00, America/New_York at 06:00/07:00.
CLOCK_CHANGES = [
    utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2027, 3, 28, 1), utc(2027, 10, 31, 1),
    utc(2028, 3, 26, 1), utc(2028, 10, 29, 1),
    utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2027, 3, 14, 7), utc(2027, 11, 7, 6),
    utc(2028, 3, 12, 7), utc(2028, 11, 5, 6),
]


@st.composite
def near_a_clock_change(draw) -> datetime:
    change = draw(st.sampled_from(CLOCK_CHANGES))
    minutes = draw(st.one_of(st.integers(-36 * 4, 36 * 4).map(lambda q: q * 15), st.integers(-36 * 60, 36 * 60)))
    return (change + timedelta(minutes=minutes)).astimezone(draw(st.sampled_from(ZONES)))


instants = st.one_of(
    near_a_clock_change(),
    st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2028, 12, 31, 23, 59, 59),
        timezones=st.sampled_from(ZONES),
        allow_imaginary=False,
    ),
    on_the_quarter_hour(),
)
calendars = st.sampled_from(CALENDARS)
business_spans = st.one_of(
    st.builds(span, st.floats(0.01, 400, allow_nan=False), st.just("business_hours")),
    st.builds(span, st.integers(1, 60).map(float), st.just("business_days")),
    st.builds(span, st.floats(0.01, 60, allow_nan=False), st.just("business_days")),
    st.builds(span, st.integers(1, 60).map(float), st.just("business_days_close")),
)
working_seconds = st.one_of(st.floats(0, 4e6, allow_nan=False), st.integers(0, 4_000_000).map(float))


@PROPERTY
@given(instants, business_spans, calendars)
def test_a_business_deadline_is_never_in_non_working_time(start, each, calendar):
    result = deadline(start, each, calendar)
    assert result.tzinfo is UTC
    assert result >= start
    assert is_working_time(result, calendar) or is_closing_instant(result, calendar)
    if each.unit == "business_days_close":
        # The end of a working day: working just before, at that day's local closing time.
        assert is_working_time(result - US_, calendar)
        before = (result - US_).astimezone(calendar.zone)
        local = result.astimezone(calendar.zone)
        closes = calendar.working_hours[WEEKDAY_NAMES[before.weekday()]].closes
        assert (local.hour * 60 + local.minute, local.second, local.microsecond) == (closes % 1440, 0, 0)


@PROPERTY
@given(instants, instants, business_spans, calendars)
def test_business_deadlines_are_monotonic_in_start(a, b, each, calendar):
    # Same time of day is not monotonic through a repeated or skipped hour of working time.
    assume(each.unit != "business_days" or calendar in DST_FREE_HOURS)
    first, second = sorted([a, b])
    assert deadline(first, each, calendar) <= deadline(second, each, calendar)


@PROPERTY
@given(instants, st.timedeltas(timedelta(0), timedelta(hours=3)), business_spans, calendars)
def test_business_deadlines_are_monotonic_in_start_nearby(start, step, each, calendar):
    assume(each.unit != "business_days" or calendar in DST_FREE_HOURS)
    later = start.astimezone(UTC) + step  # elapsed time, not wall-clock arithmetic
    assert deadline(start, each, calendar) <= deadline(later, each, calendar)


@PROPERTY
@given(
    instants,
    st.sampled_from(["hours", "business_hours", "business_days", "business_days_close"]),
    st.floats(0.01, 60, allow_nan=False),
    st.floats(0.01, 60, allow_nan=False),
    calendars,
)
def test_deadlines_are_monotonic_in_amount(start, unit, x, y, calendar):
    small, large = sorted([x, y])
    if unit == "business_days_close":
        small, large = float(max(1, round(small))), float(max(1, round(large)))
    assert deadline(start, span(small, unit), calendar) <= deadline(start, span(large, unit), calendar)


@PROPERTY
@given(instants, st.integers(0, 40), st.floats(0, 1, allow_nan=False), calendars)
def test_fractional_business_days_lie_between_whole_ones(start, whole, fraction, calendar):
    lower = deadline(start, span(whole, "business_days"), calendar) if whole else next_working_moment(start, calendar)
    upper = deadline(start, span(whole + 1, "business_days"), calendar)
    assume(whole + fraction > 0)
    assert lower <= deadline(start, span(whole + fraction, "business_days"), calendar) <= upper


@PROPERTY
@given(instants, working_seconds, calendars)
def test_add_working_seconds_inverts_working_seconds_between(start, seconds, calendar):
    end = add_working_seconds(start, seconds, calendar)
    assert end.tzinfo is UTC
    assert working_seconds_between(start, end, calendar) == pytest.approx(seconds, abs=1e-6)
    if seconds >= 1e-6:
        # The earliest such instant: working time, or exactly a closing instant.
        assert is_working_time(end, calendar) or is_closing_instant(end, calendar)
        assert working_seconds_between(start, end - US_, calendar) < seconds


@PROPERTY
@given(
    instants,
    st.timedeltas(timedelta(0), timedelta(days=40)),
    st.timedeltas(timedelta(0), timedelta(days=40)),
    calendars,
)
def test_working_seconds_between_is_additive(a, ab, bc, calendar):
    a = a.astimezone(UTC)  # elapsed-time arithmetic below
    b, c = a + ab, a + ab + bc
    whole = working_seconds_between(a, c, calendar)
    assert whole == pytest.approx(
        working_seconds_between(a, b, calendar) + working_seconds_between(b, c, calendar), abs=1e-6
    )
    assert 0 <= whole <= (c - a).total_seconds()
    assert working_seconds_between(c, a, calendar) == 0


@PROPERTY
@given(instants, calendars)
def test_next_working_moment_is_working_time_and_nothing_before_it_is(moment, calendar):
    result = next_working_moment(moment, calendar)
    assert result.tzinfo is UTC
    assert result >= moment
    assert is_working_time(result, calendar)
    assert working_seconds_between(moment, result, calendar) == 0
    # (In UTC: Python never finds an ambiguous local time equal to an instant in another zone.)
    assert (result == moment.astimezone(UTC)) == is_working_time(moment, calendar)


@PROPERTY
@given(instants, st.floats(0.000001, 2000, allow_nan=False))
def test_24x7_business_hours_are_hours(start, hours):
    assert always.always_open
    assert deadline(start, span(hours, "business_hours"), always) == deadline(start, span(hours, "hours"), always)
    assert add_working_seconds(start, hours * 3600, always) == deadline(start, span(hours, "hours"), always)


@PROPERTY
@given(instants, st.sampled_from(DST_FREE_HOURS))
def test_is_working_time_follows_the_local_wall_clock(moment, calendar):
    local = moment.astimezone(calendar.zone)
    hours = calendar.working_hours.get(WEEKDAY_NAMES[local.weekday()])
    minute = local.hour * 60 + local.minute
    expected = (
        hours is not None and local.date() not in calendar.holidays and hours.opens <= minute < hours.closes
    )
    assert is_working_time(moment, calendar) == expected


@settings(max_examples=60, deadline=None)
@given(on_the_quarter_hour(), st.integers(0, 4 * 24 * 8), calendars)
def test_working_seconds_between_counts_working_quarter_hours(start, quarters, calendar):
    # Every calendar here opens and closes on the quarter hour, and clocks change on the hour.
    start = start.astimezone(UTC)
    end = start + timedelta(minutes=15 * quarters)
    steps = (start + timedelta(minutes=15 * n) for n in range(quarters))
    expected = sum(15 * 60 for step in steps if is_working_time(step, calendar))
    assert working_seconds_between(start, end, calendar) == expected
