"""When a case writes its events: at once, or gathered for a moment while its actions come in a burst.

Every write is an activity task, a workflow task for its result and an upsert of
the fleet's search attributes (a visibility write): the server's work per write,
whatever the write carries. An agent, or a system acting for one, often works a
case in a burst: accept, contact, note, promise, seconds apart. Writing each of
those on its own costs the server a write per action; gathering them for
GATHER_FOR costs one write for the burst and a timer.

An action that comes after a quiet spell (BURST_GAP or more since the case's
previous action) is written at once, as before pacing: a case whose actions are
minutes apart never waits and never starts a timer for it. Everything else
that must be in PostgreSQL promptly is never held: escalations and clock events
(the outbox sends their notifications), a closing, the end of a run, and any
caller waiting for its writes (`wait_for_writes`, a read-your-writes client).
The events are durable in the workflow's history the moment the action is
answered; what waits is only their copy in PostgreSQL and the search attributes.

Pure functions of workflow time, so the workflow and the tests call the same rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.state import TimelineEvent

# Actions closer together than this are a burst; a case's first action of a run is never one.
BURST_GAP = timedelta(seconds=2)
# How long a burst's write waits for the actions that follow: the most PostgreSQL and the
# fleet's search attributes lag an answered action by.
GATHER_FOR = timedelta(seconds=1)
# One write carries at most FLUSH_MAX_EVENTS events and about FLUSH_MAX_BYTES of them: an activity
# input must stay under Temporal's 2 MB payload limit, however many signals came during the last write.
FLUSH_MAX_EVENTS = 500
FLUSH_MAX_BYTES = 512 * 1024


def gather_until(
    *,
    applied_at: datetime,
    previous_action_at: datetime | None,
    joins_pending_batch: bool,
    pending_until: datetime | None,
    closed: bool,
) -> datetime | None:
    """Until when the write of an action just applied may wait (None: write it at once).

    joins_pending_batch: events not yet handed to a write were already waiting
    when this action came; it rides with them and their deadline (pending_until)
    stands, so a steady stream of actions still writes every GATHER_FOR.
    """
    if closed:
        return None
    if joins_pending_batch:
        return pending_until
    if previous_action_at is not None and applied_at - previous_action_at < BURST_GAP:
        return applied_at + GATHER_FOR
    return None


def write_due(
    *,
    now: datetime | None,
    until: datetime | None,
    writes_awaited: bool,
    closed: bool,
    run_ending: bool,
) -> bool:
    """Whether unwritten events go to PostgreSQL now, rather than at `until`.

    now None: whatever the time, only what cuts a gathering short counts (the workflow's
    wait, which its timer ends).
    """
    if until is None or writes_awaited or closed or run_ending:
        return True
    return now is not None and until <= now


def next_batch(unwritten: list[TimelineEvent]) -> list[TimelineEvent]:
    """The events the next write carries: the first of those not yet written, within the bounds.

    The first event always goes, whatever its size, so a write always makes progress.
    """
    count, size = 0, 0
    for event in unwritten[:FLUSH_MAX_EVENTS]:
        size += len(event.model_dump_json())
        if count and size > FLUSH_MAX_BYTES:
            break
        count += 1
    return unwritten[:count]
