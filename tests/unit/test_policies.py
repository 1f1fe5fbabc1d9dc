"""policies/policies.toml and activities/policies.py: the shipped policies, resolution, errors, the activity."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.policies import PolicyBook, UnknownPolicy, load_policies
from activities.policy_file import PolicyFileError
from activities.policy_activities import PolicyActivities
from config import DEFAULT_POLICIES_PATH, load_settings
from schemas.policy import SPAN_HELP, ResolvedPolicy, ResolvePolicyInput, Span
from tests.support.paths import REPO

SHIPPED = REPO / "policies" / "policies.toml"
SEVERITIES = ("low", "medium", "high", "critical")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return load_policies(SHIPPED)


def span(text: str) -> Span:
    return Span.model_validate(text)


def clocks_of(resolved: ResolvedPolicy) -> dict[str, tuple[Span, list[Span] | None, bool]]:
    return {name: (spec.due, spec.levels, spec.pauses) for name, spec in resolved.clocks.items()}


# -- the shipped file ------------------------------------------------------------------


def test_the_shipped_file_is_where_config_looks_and_env_overrides_it(tmp_path):
    assert DEFAULT_POLICIES_PATH == SHIPPED and SHIPPED.is_file()
    assert load_settings({}).policies_path == SHIPPED
    other = tmp_path / "mine.toml"
    assert load_settings({"COMPLAINTS_POLICIES": str(other)}).policies_path == other
    assert load_policies(SHIPPED).names == ["cfpb", "demo", "fca", "standard"]


STANDARD = {
    # severity: acknowledge, first_response, customer_update, resolution
    "critical": ("1 hour", "2 hours", "8 hours", "2 days"),
    "high": ("4 hours", "8 hours", "1 day", "5 days"),
    "medium": ("1 business day", "2 business days", "3 days", "10 days"),
    "low": ("2 business days", "3 business days", "5 days", "20 days"),
}


@pytest.mark.parametrize("severity", SEVERITIES)
def test_standard_targets_by_severity(book, severity):
    resolved = book.resolve("standard", severity)
    acknowledge, first_response, customer_update, resolution = STANDARD[severity]
    assert clocks_of(resolved) == {
        "acknowledge": (span(acknowledge), None, True),
        "first_response": (span(first_response), None, True),
        "customer_update": (span(customer_update), None, True),
        "resolution": (span(resolution), None, True),
    }
    assert (resolved.name, resolved.severity, resolved.calendar.name) == ("standard", severity, "uk")
    assert resolved.confirmation_window.due == span("7 days")
    assert (resolved.promise.warn_before, resolved.promise.level3_after) == (span("1 hour"), span("24 hours"))
    assert resolved.transfer_to_supervisor_at_level3 is True
    assert resolved.summary_resolution_by is None


@pytest.mark.parametrize("severity", SEVERITIES)
def test_fca_disp_1_for_every_severity(book, severity):
    resolved = book.resolve("fca", severity)
    assert clocks_of(resolved) == {
        "acknowledge": (span("1 business day"), None, True),
        "first_response": (span("1 business day"), None, True),
        "customer_update": (span("10 business days"), None, True),
        # Eight weeks from receipt, warnings at weeks 6 and 7; they do not stop.
        "resolution": (span("8 weeks"), [span("6 weeks"), span("7 weeks"), span("8 weeks")], False),
    }
    assert resolved.summary_resolution_by == Span(amount=3, unit="business_days_close")
    assert resolved.calendar.name == "uk" and resolved.transfer_to_supervisor_at_level3 is True
    assert resolved.confirmation_window.due == span("7 days")


def test_fca_and_cfpb_letters_and_who_sends_them(book):
    fca = book.resolve("fca", "medium")
    sends = {name: terms.send for name, terms in fca.letters.items()}
    assert sends == {
        "acknowledgement": "on receipt",
        "progress_update": "by the owner",
        "summary_resolution": "by the owner",
        "final_response": "by the owner",
        "holding_response": "after 55 days",
    }
    assert fca.closing_letters == ["summary_resolution", "final_response"]
    assert fca.letters["summary_resolution"].within == fca.summary_resolution_by
    assert fca.letters["holding_response"].unless_sent == ["final_response", "summary_resolution"]
    cfpb = book.resolve("cfpb", "high")
    assert {name: terms.send for name, terms in cfpb.letters.items()} == {
        "initial_response": "after 14 days",
        "progress_update": "by the owner",
        "final_response": "by the owner",
    }
    assert cfpb.closing_letters == []
    assert book.resolve("standard", "high").letters == {} and book.resolve("demo", "low").letters == {}


@pytest.mark.parametrize("severity", SEVERITIES)
def test_cfpb_15_and_60_calendar_days(book, severity):
    resolved = book.resolve("cfpb", severity)
    assert clocks_of(resolved) == {
        "acknowledge": (span("1 business day"), None, True),
        "first_response": (span("15 days"), None, False),
        "customer_update": (span("15 days"), None, True),
        "resolution": (span("60 days"), None, False),
    }
    assert resolved.calendar.name == "us" and resolved.calendar.time_zone == "America/New_York"
    assert resolved.confirmation_window.due == span("7 days")
    assert resolved.transfer_to_supervisor_at_level3 is False


@pytest.mark.parametrize("severity", SEVERITIES)
def test_demo_runs_in_seconds_on_an_always_open_calendar(book, severity):
    resolved = book.resolve("demo", severity)
    assert clocks_of(resolved) == {
        "acknowledge": (Span(amount=20, unit="seconds"), None, True),
        "first_response": (Span(amount=30, unit="seconds"), None, True),
        "customer_update": (Span(amount=30, unit="seconds"), None, True),
        "resolution": (Span(amount=120, unit="seconds"), None, True),
    }
    assert resolved.confirmation_window.due == Span(amount=60, unit="seconds")
    assert resolved.promise.warn_before == Span(amount=5, unit="seconds")
    assert resolved.promise.level3_after == Span(amount=15, unit="seconds")
    assert resolved.transfer_to_supervisor_at_level3 is False
    assert resolved.calendar.name == "always" and resolved.calendar.always_open
    assert resolved.transfer_acceptance.due == resolved.goodwill_approval.due == Span(amount=15, unit="seconds")
    assert resolved.feedback_window == Span(amount=20, unit="seconds")


@pytest.mark.parametrize("name", ["standard", "fca", "cfpb"])
def test_transfers_and_goodwill_wait_4_business_hours_and_feedback_14_days(book, name):
    resolved = book.resolve(name, "high")
    assert resolved.transfer_acceptance.due == span("4 business hours")
    assert resolved.goodwill_approval.due == span("4 business hours")
    assert resolved.feedback_window == span("14 days")


def test_defaults_are_standard_for_every_severity(book):
    for severity in SEVERITIES:
        assert book.default_for(severity) == "standard"
        assert book.resolve(None, severity) == book.resolve("standard", severity)


def test_a_resolved_policy_survives_json_and_shares_nothing_with_the_book(book):
    resolved = book.resolve("fca", "high")
    assert ResolvedPolicy.model_validate_json(resolved.model_dump_json()) == resolved
    resolved.clocks["resolution"].due.amount = 1
    resolved.calendar.holidays.clear()
    again = book.resolve("fca", "high")
    assert again.clocks["resolution"].due == span("8 weeks") and len(again.calendar.holidays) == 24


def test_unknown_policy_lists_the_known_ones(book):
    with pytest.raises(UnknownPolicy) as err:
        book.resolve("gold", "high")
    assert str(err.value).startswith("unknown policy 'gold': the policies are cfpb, demo, fca, standard")
    with pytest.raises(ValueError, match="severity must be one of low, medium, high, critical"):
        book.resolve("standard", "urgent")


# -- calendars ---------------------------------------------------------------------------------

UK_BANK_HOLIDAYS = [
    "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25", "2026-12-28",
    "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-08-30", "2027-12-27", "2027-12-28",
    "2028-01-03", "2028-04-14", "2028-04-17", "2028-05-01", "2028-05-29", "2028-08-28", "2028-12-25", "2028-12-26",
]  # fmt: skip


def _weekday_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    return _weekday_on_or_after(date(year, month, 1), weekday) + timedelta(weeks=n - 1)


def _last_weekday(year: int, month: int, weekday: int) -> date:
    first_next = date(year + (month == 12), month % 12 + 1, 1)
    return _weekday_on_or_after(first_next - timedelta(days=7), weekday)


def _observed(day: date) -> date:
    """5 U.S.C. 6103(b): Saturday -> the Friday before, Sunday -> the Monday after."""
    return day + {5: timedelta(days=-1), 6: timedelta(days=1)}.get(day.weekday(), timedelta(0))


def us_federal_holidays(year: int) -> set[date]:
    mon, thu = 0, 3
    return {
        _observed(date(year, 1, 1)),
        _nth_weekday(year, 1, mon, 3),  # Martin Luther King, Jr.
        _nth_weekday(year, 2, mon, 3),  # Washington's Birthday
        _last_weekday(year, 5, mon),  # Memorial Day
        _observed(date(year, 6, 19)),
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, mon, 1),  # Labor Day
        _nth_weekday(year, 10, mon, 2),  # Columbus Day
        _observed(date(year, 11, 11)),
        _nth_weekday(year, 11, thu, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }


def test_uk_calendar_england_and_wales(book):
    uk = book.calendars["uk"]
    assert uk.time_zone == "Europe/London"
    assert sorted(uk.working_hours) == ["fri", "mon", "thu", "tue", "wed"]
    assert all(str(hours) == "09:00-17:00" for hours in uk.working_hours.values())
    assert [d.isoformat() for d in uk.holidays] == UK_BANK_HOLIDAYS
    assert all(d.weekday() < 5 for d in uk.holidays)


def test_us_calendar_federal_holidays_as_observed(book):
    us = book.calendars["us"]
    assert us.time_zone == "America/New_York"
    assert sorted(us.working_hours) == ["fri", "mon", "thu", "tue", "wed"]
    assert all(str(hours) == "09:00-17:00" for hours in us.working_hours.values())
    expected = set().union(*(us_federal_holidays(year) for year in (2026, 2027, 2028, 2029)))
    expected = {d for d in expected if date(2026, 1, 1) <= d <= date(2028, 12, 31)}
    assert sorted(us.holidays) == sorted(expected)
    assert len(us.holidays) == len(set(us.holidays)) == 33
    # New Year's Day 2028 is a Saturday: observed on Friday 31 December 2027.
    assert date(2027, 12, 31) in us.holidays and date(2028, 1, 1) not in us.holidays


def test_always_calendar_never_closes(book):
    always = book.calendars["always"]
    assert always.always_open and always.holidays == []
    assert {day: (h.opens, h.closes) for day, h in always.working_hours.items()} == {
        day: (0, 1440) for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }


# -- other files: overrides, defaults, errors ----------------------------------------------------

MINIMAL = """
[calendars.office]
time_zone = "Europe/Paris"
working_hours = { mon = "08:30-18:00", tue = "08:30-18:00" }
holidays = [2026-12-25]

[calendars.nonstop]
time_zone = "UTC"
working_hours = { sun = "00:00-24:00" }

[defaults]
low = "base"
medium = "base"
high = "base"
critical = "urgent"

[policies.base]
description = "Base"
calendar = "office"
confirmation_window = "7 days"

[policies.base.clocks]
acknowledge = "1 business day"
resolution = "10 days"

[policies.base.severities.high]
resolution = { due = "2 days", levels = ["1 day", "2 days", "4 days"] }
customer_update = "12 hours"

[policies.urgent]
description = "Urgent"
calendar = "nonstop"
confirmation_window = { due = "1 day", pauses = false }

[policies.urgent.severities.critical]
resolution = "4 hours"
[policies.urgent.severities.high]
resolution = "8 hours"
[policies.urgent.severities.medium]
resolution = "1 day"
[policies.urgent.severities.low]
resolution = "2 days"
"""


def write(tmp_path: Path, text: str, name: str = "policies.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_per_severity_overrides_replace_single_clocks(tmp_path):
    book = load_policies(write(tmp_path, MINIMAL))
    high = book.resolve("base", "high")
    assert clocks_of(high) == {
        "acknowledge": (span("1 business day"), None, True),
        "customer_update": (span("12 hours"), None, True),
        "resolution": (span("2 days"), [span("1 day"), span("2 days"), span("4 days")], True),
    }
    low = book.resolve("base", "low")
    assert clocks_of(low) == {
        "acknowledge": (span("1 business day"), None, True),
        "resolution": (span("10 days"), None, True),
    }
    assert high.calendar.name == "office" and high.calendar.holidays == [date(2026, 12, 25)]
    assert str(high.calendar.working_hours["mon"]) == "08:30-18:00"
    assert book.resolve("urgent", "low").confirmation_window.pauses is False


def test_defaults_follow_the_severity(tmp_path):
    book = load_policies(write(tmp_path, MINIMAL))
    assert [book.resolve(None, s).name for s in SEVERITIES] == ["base", "base", "base", "urgent"]
    assert book.resolve(None, "critical").clocks["resolution"].due == span("4 hours")


def replaced(old: str, new: str) -> str:
    assert MINIMAL.count(old) == 1, old
    return MINIMAL.replace(old, new)


BROKEN = {
    "not-a-duration": (
        replaced('customer_update = "12 hours"', 'customer_update = "five days"'),
        f"policies.base.severities.high.customer_update: 'five days' is not a duration: {SPAN_HELP}",
    ),
    "missing-calendar": (
        replaced('calendar = "nonstop"', 'calendar = "nonstp"'),
        "policies.urgent.calendar: no calendar 'nonstp': the calendars are nonstop, office",
    ),
    "default-names-no-policy": (
        replaced('critical = "urgent"', 'critical = "urgnet"'),
        "defaults.critical: no policy 'urgnet': the policies are base, urgent",
    ),
    "default-missing": (
        replaced('low = "base"\n', ""),
        "defaults.low: required field is missing (name the default policy of every severity: low, medium, high, critical)",
    ),
    "no-resolution-for-a-severity": (
        replaced('[policies.urgent.severities.low]\nresolution = "2 days"', ""),
        "policies.urgent.severities.low.resolution: required: no resolution clock for severity low",
    ),
    "no-resolution-at-all": (
        replaced('resolution = "10 days"', 'first_response = "2 days"').replace(
            'resolution = { due = "2 days", levels = ["1 day", "2 days", "4 days"] }', ""
        ),
        "policies.base.clocks.resolution: required: no resolution clock for any severity",
    ),
    "misspelt-clock-key": (
        replaced('levels = ["1 day"', 'level = ["1 day"'),
        "policies.base.severities.high.resolution.level: unknown field (check the spelling); valid here: due, levels, pauses",
    ),
    "misspelt-clock-name": (
        replaced('acknowledge = "1 business day"', 'acknowlege = "1 business day"'),
        "policies.base.clocks.acknowlege: not a valid name here: Input should be 'acknowledge', 'first_response', "
        "'customer_update' or 'resolution' (got 'acknowlege')",
    ),
    "misspelt-policy-key": (
        replaced('calendar = "office"', 'calender = "office"'),
        "policies.base.calendar: required field is missing; "
        "policies.base.calender: unknown field (check the spelling); valid here: description, calendar,",
    ),
    "unknown-severity": (
        replaced("[policies.base.severities.high]", "[policies.base.severities.urgent]"),
        "policies.base.severities.urgent: not a valid name here: Input should be 'low', 'medium', 'high' or 'critical'",
    ),
    "bad-time-zone": (
        replaced('"Europe/Paris"', '"Europe/Pariss"'),
        "calendars.office.time_zone: 'Europe/Pariss' is not an IANA time zone",
    ),
    "bad-working-hours": (
        replaced('mon = "08:30-18:00"', 'mon = "8.30-6pm"'),
        "calendars.office.working_hours.mon: working hours are written 'HH:MM-HH:MM', e.g. '09:00-17:00' (got '8.30-6pm')",
    ),
    "misspelt-calendar-key": (
        replaced("holidays = [2026-12-25]", "holiday = [2026-12-25]"),
        "calendars.office.holiday: unknown field (check the spelling); valid here: time_zone, working_hours, holidays",
    ),
    "clock-of-the-wrong-type": (
        replaced('confirmation_window = "7 days"', "confirmation_window = 7"),
        "policies.base.confirmation_window: a clock is a duration (e.g. '5 days', '4 business hours') or a table",
    ),
    "mixed-business-and-calendar-levels": (
        replaced('levels = ["1 day", "2 days", "4 days"]', 'levels = ["1 business day", "2 days", "4 days"]'),
        "policies.base.severities.high.resolution: a clock's due and levels must all be business or all calendar durations",
    ),
    "business-time-promise": (
        MINIMAL + '\n[policies.base.promise]\nwarn_before = "2 business hours"\n',
        "policies.base.promise.warn_before: promise terms are elapsed time",
    ),
    "misspelt-promise-key": (
        MINIMAL + '\n[policies.base.promise]\nwarn_before = "2 hours"\nlevel_3_after = "1 day"\n',
        "policies.base.promise.level_3_after: unknown field (check the spelling); valid here: warn_before, level3_after, pauses",
    ),
    "misspelt-transfer-acceptance-key": (
        MINIMAL + '\n[policies.base.transfer_acceptance]\ndue = "2 hours"\nlevel = ["1 hour", "2 hours", "3 hours"]\n',
        "policies.base.transfer_acceptance.level: unknown field (check the spelling); valid here: due, levels, pauses",
    ),
    "bad-feedback-window": (
        MINIMAL.replace("[policies.base]", '[policies.base]\nfeedback_window = "a fortnight"'),
        "policies.base.feedback_window: 'a fortnight' is not a duration",
    ),
    "letter-with-an-unknown-template": (
        MINIMAL + '\n[policies.base.letters]\nack = { template = "acknowledgment", send = "on receipt" }\n',
        "policies.base.letters.ack.template: no letter template 'acknowledgment' in delivery/templates/letters: "
        "the templates are acknowledgement, cfpb_final_response,",
    ),
    "letter-sent-at-no-known-time": (
        MINIMAL + '\n[policies.base.letters]\nack = { template = "acknowledgement", send = "when ready" }\n',
        "policies.base.letters.ack.send: 'when ready' is not when a letter is sent: send is 'on receipt' (the engine",
    ),
    "letter-sent-after-no-duration": (
        MINIMAL + '\n[policies.base.letters]\nack = { template = "acknowledgement", send = "after a while" }\n',
        "policies.base.letters.ack.send: 'after a while': after what? write a duration as",
    ),
    "misspelt-letter-key": (
        MINIMAL + '\n[policies.base.letters]\nack = { templte = "acknowledgement", send = "on receipt" }\n',
        "policies.base.letters.ack.template: required field is missing; policies.base.letters.ack.templte: "
        "unknown field (check the spelling); valid here: template, send, drafted_on, within, unless_sent",
    ),
    "letter-drafted-though-the-engine-sends-it": (
        MINIMAL + '\n[policies.base.letters]\nack = { template = "acknowledgement", send = "on receipt", drafted_on = "update_due" }\n',
        "policies.base.letters.ack: drafted_on and within are for a letter sent 'by the owner'",
    ),
    "letter-unless-another-the-policy-lacks": (
        MINIMAL + '\n[policies.base.letters]\nack = { template = "acknowledgement", send = "after 2 days", unless_sent = ["final"] }\n',
        "policies.base.letters.ack.unless_sent: no letter 'final' in policy base: its letters are ack",
    ),
    "closing-letter-the-policy-lacks": (
        MINIMAL.replace("[policies.base]", '[policies.base]\nclosing_letters = ["final_response"]'),
        "policies.base.closing_letters: no letter 'final_response' in policy base: it has no letters",
    ),
    "not-toml": (MINIMAL + "\n[policies.base\n", "not valid TOML: "),
}


@pytest.mark.parametrize("text, expected", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_file_names_the_file_and_the_dotted_path(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(PolicyFileError) as err:
        load_policies(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_several_problems_are_reported_together_and_a_relative_path_is_shown_relative(tmp_path, monkeypatch):
    text = replaced('"Europe/Paris"', '"Mars/Olympus"').replace('resolution = "10 days"', 'resolution = "ten days"')
    write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PolicyFileError) as err:
        load_policies("policies.toml")
    message = str(err.value)
    assert message.startswith("policies.toml: calendars.office.time_zone: 'Mars/Olympus' is not an IANA time zone")
    assert "; policies.base.clocks.resolution: 'ten days' is not a duration" in message


def test_a_missing_file_says_how_to_point_at_another(tmp_path):
    with pytest.raises(PolicyFileError, match=r"nope\.toml: cannot read the policies file: No such file.*COMPLAINTS_POLICIES"):
        load_policies(tmp_path / "nope.toml")


async def test_the_worker_refuses_to_start_on_a_broken_file_with_status_2(tmp_path):
    """Before anything is started (the addresses below lead nowhere), one line names the bad entry."""
    path = write(tmp_path, replaced('calendar = "nonstop"', 'calendar = "nonstp"'))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "COMPLAINTS_POLICIES": str(path),
        "COMPLAINTS_DATA_DIR": str(tmp_path / "data"),
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "LOG_FORMAT": "json",
    }

    process = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    status = process.returncode
    lines = err.decode().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and "policies.urgent.calendar: no calendar 'nonstp'" in lines[0], err
    assert not (tmp_path / "data").exists()


# -- resolving for open_case ------------------------------------------------------------------


async def test_resolve_policy_in_an_activity(book):
    acts = PolicyActivities(book)
    env = ActivityEnvironment()

    async def ask(policy: str | None, severity: str) -> ResolvedPolicy:
        inp = ResolvePolicyInput(complaint_id="C-1", policy=policy, severity=severity, received_at=T0)
        return await env.run(acts.resolve_policy, inp)

    assert await ask("fca", "high") == book.resolve("fca", "high")
    assert (await ask(None, "low")).name == "standard"
    with pytest.raises(ApplicationError) as err:
        await ask("gold", "high")
    assert err.value.type == "UnknownPolicy" and err.value.non_retryable
    assert "unknown policy 'gold': the policies are cfpb, demo, fca, standard" in err.value.message
