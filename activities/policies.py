"""Deadline policies as data: policies/policies.toml loaded into a PolicyBook.

    book = load_policies(settings.policies_path)      # PolicyFileError if anything is wrong
    book.resolve("fca", "high")                       # ResolvedPolicy, calendar included
    book.resolve(None, "low")                         # the default policy for low severity

The file is checked whole when a worker starts (activities/policy_file.py).
A PolicyFileError names the file, the dotted path of each bad entry and what
would be valid, e.g.

    policies/policies.toml: policies.standard.severities.high.resolution: 'five days'
    is not a duration: write a duration as '<number> <unit>' with unit ...
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Iterable

from activities.policy_file import SEVERITIES, PolicyFile, PolicyFileError, check_policy_file, clocks_for, display_path
from schemas.policy import Calendar, ResolvedPolicy, Span


class UnknownPolicy(LookupError):
    """A policy name the book does not have; the message lists the ones it has."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(
            f"unknown policy {name!r}: the policies are {', '.join(self.known)} "
            "(or give none for the default of the case's severity)"
        )


# --- loading and resolving ------------------------------------------------------------


def parse_policies(raw: dict[str, Any], where: str = "policies") -> "PolicyBook":
    """Validate an already parsed policies document; `where` names it in errors."""
    return PolicyBook(check_policy_file(raw, where), source=where)


def load_policies(path: str | Path) -> "PolicyBook":
    """Read and check the policies file at `path`; PolicyFileError says what is wrong."""
    path = Path(path)
    where = display_path(path)
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except OSError as error:
        raise PolicyFileError(
            f"{where}: cannot read the policies file: {error.strerror or error} "
            "(COMPLAINTS_POLICIES names the file to use)"
        ) from None
    except UnicodeDecodeError:
        raise PolicyFileError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyFileError(f"{where}: not valid TOML: {error}") from None
    return parse_policies(raw, where)


class PolicyBook:
    """The checked policies of one file: resolve a (policy, severity) into what a case needs."""

    def __init__(self, file: PolicyFile, source: str = "policies") -> None:
        self.file = file
        self.source = source
        # Plain Calendars (not the file's strict entries), as a ResolvedPolicy carries them.
        self.calendars: dict[str, Calendar] = {
            key: Calendar.model_validate(entry.model_dump()) for key, entry in file.calendars.items()
        }

    @property
    def names(self) -> list[str]:
        """The policy names, sorted."""
        return sorted(self.file.policies)

    def default_for(self, severity: str) -> str:
        _check_severity(severity)
        return getattr(self.file.defaults, severity)

    def resolve(self, name: str | None, severity: str) -> ResolvedPolicy:
        """The policy `name` (None: the severity's default) with its clocks for `severity`."""
        _check_severity(severity)
        chosen = self.default_for(severity) if name is None else name
        policy = self.file.policies.get(chosen)
        if policy is None:
            raise UnknownPolicy(chosen, self.file.policies)
        # Dumped and validated again: the result shares no object with the book.
        return ResolvedPolicy.model_validate(
            {
                "name": chosen,
                "description": policy.description,
                "severity": severity,
                "calendar": self.calendars[policy.calendar].model_dump(),
                "clocks": {clock: spec.model_dump() for clock, spec in clocks_for(policy, severity).items()},
                "confirmation_window": policy.confirmation_window.model_dump(),
                "promise": policy.promise.model_dump(),
                "transfer_to_supervisor_at_level3": policy.transfer_to_supervisor_at_level3,
                "summary_resolution_by": (
                    policy.summary_resolution_by.model_dump() if policy.summary_resolution_by else None
                ),
                "transfer_acceptance": policy.transfer_acceptance.model_dump(),
                "goodwill_approval": policy.goodwill_approval.model_dump(),
                "feedback_window": policy.feedback_window.model_dump(),
                "letters": {letter: terms.model_dump() for letter, terms in policy.letters.items()},
                "closing_letters": list(policy.closing_letters),
            }
        )

    def delivery_give_up(self, name: str | None) -> tuple[Span, Calendar] | None:
        """The policy's delivery give-up age and its calendar; None when it sets none (or is unknown)."""
        policy = self.file.policies.get(name) if name else None
        if policy is None or policy.delivery_give_up is None:
            return None
        return policy.delivery_give_up, self.calendars[policy.calendar]

    def __repr__(self) -> str:
        return f"PolicyBook({self.source!r}, policies={self.names})"


def _check_severity(severity: str) -> None:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)} (got {severity!r})")


__all__ = ["PolicyBook", "UnknownPolicy", "load_policies", "parse_policies"]
