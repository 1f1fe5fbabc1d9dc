"""What the escalation benchmark measures, and when: the shared due instant, placed where no other
clock of the benchmark's cases fires, so that the burst measured is the promises' alone."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from schemas.state import Clock, Promise
from workflows import clocks as clock_math

POLICY = "demo"
SEVERITY = "high"
MEASURED_CLOCK = "promise:P1"
MEASURED_LEVEL = 2
# Seconds between the end of a setup phase and its due instant (the demo promise warns 5 s before).
LEAD = 8.0
# Guard before the promise's level 1 kept free of other clocks' escalations (they may be late too).
GUARD = 3.0
# How much later than the planned instant the due instant may be put to find a quiet window:
# enough for every other clock of the demo policy to have fired its last level (resolution:
# level 3 at 180 s after receipt), after which the window is always quiet.
MAX_DEFER = 300.0
# Seconds between two counts of the rows written while a side waits for its burst.
POLL = 0.5


@dataclass
class Plan:
    """The shared due instant, how far it was put off to find a quiet window, and whether it found one."""

    due: datetime
    planned: datetime
    deferred_s: float
    quiet: bool
    expected_background_in_window: int


def background_instants(snapshots: list[Any], calendar: Any) -> list[datetime]:
    """Every instant still ahead at which a non-promise clock of these cases fires a level or is breached."""
    instants: list[datetime] = []
    for clocks_json in snapshots:
        for raw in clocks_json or []:
            clock = Clock.model_validate(raw)
            if clock.kind == "promise" or clock.paused:
                continue
            for level in range(clock.level, clock_math.TOP_LEVEL):
                instants.append(clock_math.instant(clock, clock.level_seconds[level], calendar))
            if not clock.breached:
                instants.append(clock.due_at)
    return sorted(instants)


def plan_due(earliest: datetime, instants: list[datetime], warn: float, window: float, max_defer: float = MAX_DEFER) -> Plan:
    """The first instant >= earliest, and at most max_defer later, with no background instant in
    [t - warn - GUARD, t + window]; earliest (not quiet) when there is none."""

    def clashes(t: datetime) -> int:
        lo = bisect_left(instants, t - timedelta(seconds=warn + GUARD))
        hi = bisect_left(instants, t + timedelta(seconds=window), lo)
        return hi - lo

    candidates = [earliest] + [
        x + timedelta(seconds=warn + GUARD + 0.01) for x in instants if x + timedelta(seconds=warn + GUARD) > earliest
    ]
    for t in sorted(candidates):
        if (t - earliest).total_seconds() > max_defer:
            break
        if clashes(t) == 0:
            return Plan(t, earliest, round((t - earliest).total_seconds(), 2), True, 0)
    return Plan(earliest, earliest, 0.0, False, clashes(earliest))


def promise_warn_seconds(policy: Any) -> float:
    """How long before its due time a promise clock reaches level 1 (demo: 5 s)."""
    now = datetime.now(timezone.utc)
    promise = Promise(promise_id="P1", description="-", owed_by="-", due_at=now + timedelta(hours=1), made_at=now)
    clock = clock_math.start_promise_clock(promise, policy.promise, now, policy.calendar)
    return clock.level_seconds[1] - clock.level_seconds[0]
