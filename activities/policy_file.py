"""The policies file checked whole: its shape (schemas.policy, unknown keys included), then what the shape
cannot say alone (activities/policies.py reads it into a PolicyBook).

Checked across entries: every policy's calendar exists, every default names a policy, every policy has a
resolution clock for every severity, and its letters have templates and name only its own letters. A
PolicyFileError names the file, the dotted path of each bad entry and what would be valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from pydantic import ConfigDict, Field, ValidationError, model_validator

from delivery.letters import template_names
from schemas.common import Identifier, InputMessage, Severity
from schemas.policy import CLOCK_NAMES, Calendar, ClockSpec, LetterTerms, PolicyTerms, PromiseTerms, SPAN_HELP

SEVERITIES: tuple[str, ...] = get_args(Severity)
_MAX_PROBLEMS_SHOWN = 5

Location = tuple[str | int, ...]
Problem = tuple[Location, str]


class PolicyFileError(ValueError):
    """The policies file cannot be used as it is; the message names the file and each bad entry."""



# --- the file's shape -------------------------------------------------------------


class CalendarEntry(Calendar):
    """A calendar as written under [calendars.<name>]: unknown keys are errors, the name is the key."""

    model_config = ConfigDict(extra="forbid")


class Defaults(InputMessage):
    """[defaults]: the policy of a case whose intake names none, for each severity."""

    low: Identifier
    medium: Identifier
    high: Identifier
    critical: Identifier


class PolicyFile(InputMessage):
    """The whole policies file."""

    calendars: dict[Identifier, CalendarEntry] = Field(min_length=1)
    defaults: Defaults
    policies: dict[Identifier, PolicyTerms] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _calendar_names_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("calendars"), dict):
            named = {
                key: {"name": key, **entry} if isinstance(entry, dict) and "name" not in entry else entry
                for key, entry in data["calendars"].items()
            }
            data = {**data, "calendars": named}
        return data


# Fields of the tables nested in the file, for "unknown field" messages. The
# models of schemas.policy used inside a policy (clocks, promise terms) are
# tolerant output models, so their tables are checked for unknown keys here.
_TOP_FIELDS = tuple(PolicyFile.model_fields)
_CALENDAR_FIELDS = tuple(name for name in CalendarEntry.model_fields if name != "name")
_POLICY_FIELDS = tuple(PolicyTerms.model_fields)
_CLOCK_FIELDS = tuple(ClockSpec.model_fields)
_PROMISE_FIELDS = tuple(PromiseTerms.model_fields)
_LETTER_FIELDS = tuple(LetterTerms.model_fields)


# What to write instead of a value of the wrong type, by the model expected there.
_WRITTEN_AS = {
    "Span": f"not a duration: {SPAN_HELP}",
    "ClockSpec": (
        "a clock is a duration (e.g. '5 days', '4 business hours') "
        "or a table {due = '<duration>', levels = ['<level 1>', '<level 2>', '<level 3>'], pauses = true|false}"
    ),
    "PromiseTerms": "promise terms are a table {warn_before = '<duration>', level3_after = '<duration>', pauses = true|false}",
    "WorkingHours": "working hours are written 'HH:MM-HH:MM', e.g. '09:00-17:00'",
    "LetterTerms": "a letter is a table {template = '<template>', send = 'on receipt' | 'after <duration>' | 'by the owner', ...}",
}


def _valid_fields_at(parent: Location) -> tuple[str, ...] | None:
    """The keys a table at `parent` may have (None if unknown here)."""
    if len(parent) == 0:
        return _TOP_FIELDS
    if parent == ("defaults",):
        return SEVERITIES
    if len(parent) == 2 and parent[0] == "calendars":
        return _CALENDAR_FIELDS
    if len(parent) == 2 and parent[0] == "policies":
        return _POLICY_FIELDS
    return None


def _unknown_keys(raw: dict[str, Any]) -> list[Problem]:
    """Unknown keys in the clock and promise tables (their models would silently ignore them)."""
    problems: list[Problem] = []

    def check(loc: Location, table: Any, valid: tuple[str, ...]) -> None:
        if isinstance(table, dict):
            for key in table:
                if key not in valid:
                    problems.append((loc + (key,), _unknown_field(valid)))

    policies = raw.get("policies")
    if not isinstance(policies, dict):
        return problems
    for name, policy in policies.items():
        if not isinstance(policy, dict):
            continue
        base: Location = ("policies", name)
        clocks = policy.get("clocks")
        if isinstance(clocks, dict):
            for clock, spec in clocks.items():
                check(base + ("clocks", clock), spec, _CLOCK_FIELDS)
        severities = policy.get("severities")
        if isinstance(severities, dict):
            for severity, overrides in severities.items():
                if isinstance(overrides, dict):
                    for clock, spec in overrides.items():
                        check(base + ("severities", severity, clock), spec, _CLOCK_FIELDS)
        for clock_table in ("confirmation_window", "transfer_acceptance", "goodwill_approval"):
            check(base + (clock_table,), policy.get(clock_table), _CLOCK_FIELDS)
        check(base + ("promise",), policy.get("promise"), _PROMISE_FIELDS)
        letters = policy.get("letters")
        if isinstance(letters, dict):
            for letter, terms in letters.items():
                check(base + ("letters", letter), terms, _LETTER_FIELDS)
    return problems


def _unknown_field(valid: tuple[str, ...]) -> str:
    return f"unknown field (check the spelling); valid here: {', '.join(valid)}"


# --- error messages -----------------------------------------------------------------


def _lookup(raw: Any, loc: Location) -> Any:
    for part in loc:
        if isinstance(raw, dict) and part in raw:
            raw = raw[part]
        elif isinstance(raw, list) and isinstance(part, int) and 0 <= part < len(raw):
            raw = raw[part]
        else:
            return None
    return raw


def _short(value: object, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _problem(detail: Any, raw: dict[str, Any]) -> Problem:
    """One pydantic error as (dotted location, message), in the style of schemas.errors."""
    loc: list[str | int] = list(detail["loc"])
    message: str = detail["msg"].removeprefix("Value error, ")
    kind = detail["type"]
    value = detail.get("input")
    if loc and loc[-1] == "[key]":
        loc.pop()
        return tuple(loc), f"not a valid name here: {message} (got {_short(loc[-1] if loc else value)})"
    # A clock written as a bare duration is validated as {due = ...}: report it where it was written.
    if len(loc) > 1 and loc[-1] == "due" and isinstance(_lookup(raw, tuple(loc[:-1])), str):
        loc.pop()
    expected = (detail.get("ctx") or {}).get("class_name")
    if kind == "extra_forbidden":
        valid = _valid_fields_at(tuple(loc[:-1]))
        return tuple(loc), _unknown_field(valid) if valid else "unknown field (check the spelling)"
    if kind == "missing":
        message = "required field is missing"
        if tuple(loc[:1]) == ("defaults",) and len(loc) == 2:
            message += f" (name the default policy of every severity: {', '.join(SEVERITIES)})"
        return tuple(loc), message
    if kind == "model_type" and expected in _WRITTEN_AS:
        message = _WRITTEN_AS[expected]
    if isinstance(value, (str, int, float, bool)) and "(got " not in message and repr(value) not in message:
        message += f" (got {_short(value)})"
    return tuple(loc), message


def _cross_check(file: PolicyFile) -> list[Problem]:
    """What each entry's shape cannot say alone."""
    problems: list[Problem] = []
    calendars = sorted(file.calendars)
    policies = sorted(file.policies)
    for key, calendar in file.calendars.items():
        if calendar.name != key:
            problems.append(
                (("calendars", key, "name"), f"a calendar's name is its key: leave name out (got {calendar.name!r})")
            )
    for severity in SEVERITIES:
        name = getattr(file.defaults, severity)
        if name not in file.policies:
            problems.append((("defaults", severity), f"no policy {name!r}: the policies are {', '.join(policies)}"))
    for name, policy in file.policies.items():
        if policy.calendar not in file.calendars:
            problems.append(
                (
                    ("policies", name, "calendar"),
                    f"no calendar {policy.calendar!r}: the calendars are {', '.join(calendars)}",
                )
            )
        problems.extend(_letter_problems(name, policy))
        lacking = [s for s in SEVERITIES if "resolution" not in clocks_for(policy, s)]
        if len(lacking) == len(SEVERITIES):
            problems.append(
                (
                    ("policies", name, "clocks", "resolution"),
                    "required: no resolution clock for any severity; set resolution in "
                    f"[policies.{name}.clocks] or in [policies.{name}.severities.<severity>] for each of "
                    f"{', '.join(SEVERITIES)}",
                )
            )
        else:
            for severity in lacking:
                problems.append(
                    (
                        ("policies", name, "severities", severity, "resolution"),
                        f"required: no resolution clock for severity {severity}; set resolution in "
                        f"[policies.{name}.severities.{severity}] or in [policies.{name}.clocks]",
                    )
                )
    return problems


def _letter_problems(name: str, policy: PolicyTerms) -> list[Problem]:
    """Each letter's template exists, and the letters it names are the policy's own."""
    problems: list[Problem] = []
    templates = template_names()
    letters = sorted(policy.letters)
    known = f"its letters are {', '.join(letters)}" if letters else "it has no letters"
    for letter, terms in policy.letters.items():
        if terms.template not in templates:
            problems.append(
                (
                    ("policies", name, "letters", letter, "template"),
                    f"no letter template {terms.template!r} in delivery/templates/letters: the templates are "
                    f"{', '.join(templates)}",
                )
            )
        for other in terms.unless_sent:
            if other not in policy.letters:
                problems.append(
                    (("policies", name, "letters", letter, "unless_sent"), f"no letter {other!r} in policy {name}: {known}")
                )
    for other in policy.closing_letters:
        if other not in policy.letters:
            problems.append((("policies", name, "closing_letters"), f"no letter {other!r} in policy {name}: {known}"))
    return problems


def display_path(path: Path) -> str:
    """The file as errors name it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _error(where: str, problems: list[Problem]) -> PolicyFileError:
    parts = [f"{'.'.join(str(p) for p in loc) or 'file'}: {message}" for loc, message in problems[:_MAX_PROBLEMS_SHOWN]]
    hidden = len(problems) - len(parts)
    if hidden > 0:
        parts.append(f"and {hidden} more")
    return PolicyFileError(f"{where}: " + "; ".join(parts))


def clocks_for(policy: PolicyTerms, severity: str) -> dict[str, ClockSpec]:
    """The clocks a policy sets for a severity: its own, with the severity's overrides, in CLOCK_NAMES order."""
    overrides = policy.severities.get(severity, {})  # type: ignore[call-overload]
    merged = {**policy.clocks, **overrides}
    return {name: merged[name] for name in CLOCK_NAMES if name in merged}


def check_policy_file(raw: dict[str, Any], where: str) -> PolicyFile:
    """The parsed document as a PolicyFile; PolicyFileError names each bad entry (`where` names the file)."""
    problems: list[Problem] = []
    file: PolicyFile | None = None
    try:
        file = PolicyFile.model_validate(raw)
    except ValidationError as error:
        problems.extend(_problem(detail, raw) for detail in error.errors())
    problems.extend(_unknown_keys(raw))
    if file is not None and not problems:
        problems.extend(_cross_check(file))
    if problems or file is None:
        raise _error(where, sorted(set(problems), key=lambda p: [str(part) for part in p[0]]))
    return file
