"""Clock arithmetic: when a clock is due, when each escalation level fires, pauses.

Pure functions over the Clock model. A clock measures "clock time" from its
start: elapsed seconds, or working seconds on the policy's calendar for a
business clock. Its deadline and its escalation levels are fixed offsets in
clock time (target_seconds, level_seconds); pausing adds to paused_seconds,
which pushes every instant still ahead later. So the wall-clock instants are
always derived, never stored as the truth: `refresh` recomputes them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.policy import Calendar, ClockSpec, PromiseTerms, Span
from schemas.state import Clock, ClockKind, Promise
from workflows import business_time

LEVEL_FRACTIONS = (0.75, 1.0, 1.5)
TOP_LEVEL = 3


def elapsed(start: datetime, end: datetime, business: bool, calendar: Calendar) -> float:
    if business:
        return business_time.working_seconds_between(start, end, calendar)
    return max((end - start).total_seconds(), 0.0)


def _span_seconds(start: datetime, span: Span, calendar: Calendar) -> float:
    """How much clock time `span` is when it starts at `start`."""
    return elapsed(start, business_time.deadline(start, span, calendar), span.business, calendar)


def instant(clock: Clock, clock_seconds: float, calendar: Calendar) -> datetime:
    """The wall-clock instant at which the clock reads `clock_seconds`, given pauses so far."""
    offset = clock_seconds + clock.paused_seconds
    if clock.business:
        # Working time that ends at a closing ends, for people, at the next opening:
        # "Monday 09:00 + 1 business day" is Tuesday 09:00, not Monday 17:00.
        reached = business_time.add_working_seconds(clock.started_at, offset, calendar)
        return business_time.next_working_moment(reached, calendar)
    return clock.started_at + timedelta(seconds=offset)


def start_policy_clock(
    name: str, kind: ClockKind, spec: ClockSpec, start: datetime, calendar: Calendar, occurrence: int = 1
) -> Clock:
    target = _span_seconds(start, spec.due, calendar)
    if spec.levels is not None:
        levels = [_span_seconds(start, span, calendar) for span in spec.levels]
    else:
        levels = [target * fraction for fraction in LEVEL_FRACTIONS]
    clock = Clock(
        name=name,
        kind=kind,
        started_at=start,
        due_at=start,
        business=spec.due.business,
        pauses=spec.pauses,
        occurrence=occurrence,
        target_seconds=target,
        level_seconds=sorted(levels),
    )
    return refresh(clock, calendar)


def start_promise_clock(
    promise: Promise, terms: PromiseTerms, start: datetime, calendar: Calendar, occurrence: int = 1
) -> Clock:
    """A promise escalates warn_before its deadline, at it, and level3_after past it."""
    target = max((promise.due_at - start).total_seconds(), 0.0)
    warn_before = _span_seconds(start, terms.warn_before, calendar)
    warning = target - warn_before if target > warn_before else target * LEVEL_FRACTIONS[0]
    clock = Clock(
        name=promise_clock_name(promise.promise_id),
        kind="promise",
        started_at=start,
        due_at=promise.due_at,
        business=False,
        pauses=terms.pauses,
        occurrence=occurrence,
        target_seconds=target,
        level_seconds=[warning, target, target + _span_seconds(promise.due_at, terms.level3_after, calendar)],
    )
    return refresh(clock, calendar)


PROMISE_CLOCK_PREFIX = "promise:"


def promise_clock_name(promise_id: str) -> str:
    return f"{PROMISE_CLOCK_PREFIX}{promise_id}"


def promise_id_of(clock: Clock) -> str:
    """The promise a promise clock runs for (the inverse of promise_clock_name)."""
    return clock.name.removeprefix(PROMISE_CLOCK_PREFIX)


def refresh(clock: Clock, calendar: Calendar) -> Clock:
    """Recompute the derived instants (due_at, next_escalation_at) from clock time."""
    clock.due_at = instant(clock, clock.target_seconds, calendar)
    if clock.paused or clock.level >= TOP_LEVEL:
        clock.next_escalation_at = None
    else:
        clock.next_escalation_at = instant(clock, clock.level_seconds[clock.level], calendar)
    return clock


def pause(clock: Clock, now: datetime) -> bool:
    """Pause a clock that pauses while the case waits on the customer; True if it paused."""
    if not clock.pauses or clock.paused:
        return False
    clock.paused = True
    clock.paused_since = now
    clock.next_escalation_at = None
    return True


def resume(clock: Clock, now: datetime, calendar: Calendar) -> float:
    """Resume a paused clock; return the clock time it was paused for (0 if it was not)."""
    if not clock.paused or clock.paused_since is None:
        return 0.0
    paused_for = elapsed(clock.paused_since, now, clock.business, calendar)
    clock.paused_seconds += paused_for
    clock.paused = False
    clock.paused_since = None
    refresh(clock, calendar)
    return paused_for


def next_wake(clock: Clock) -> datetime | None:
    """The next instant something happens to this clock: a level fires or it is breached."""
    if clock.paused:
        return None
    moments = [m for m in (clock.next_escalation_at, None if clock.breached else clock.due_at) if m is not None]
    return min(moments) if moments else None
