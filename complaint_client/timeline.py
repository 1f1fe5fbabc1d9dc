"""A long-lived case's complete timeline: the events PostgreSQL stored before the ones its workflow holds."""

from __future__ import annotations

import json
from typing import Any

from complaint_client.errors import IncompleteTimeline
from schemas import TimelineEvent


async def stored_events(
    database: Any, complaint_id: str, *, after_seq: int = 0, before_seq: int | None = None
) -> list[TimelineEvent]:
    """A case's events from PostgreSQL (case_events), in seq order: after after_seq, before before_seq."""
    rows = await database.fetch(
        "SELECT seq, at, kind, actor, channel, data FROM case_events "
        "WHERE complaint_id = $1 AND seq > $2 AND ($3::int IS NULL OR seq < $3) ORDER BY seq",
        complaint_id,
        after_seq,
        before_seq,
    )
    events = []
    for row in rows:
        event = dict(row)
        if isinstance(event["data"], str):  # a pool without the engine's json codec (activities/db.py)
            event["data"] = json.loads(event["data"])
        events.append(TimelineEvent.model_validate(event))
    return events


def join_timeline(complaint_id: str, earlier: list[TimelineEvent], held: list[TimelineEvent]) -> list[TimelineEvent]:
    """The stored events before the ones the workflow holds, checked to run 1, 2, 3, ... with no gap."""
    timeline = earlier + held
    for expected, event in enumerate(timeline, start=1):
        if event.seq != expected:
            raise IncompleteTimeline(
                f"case {complaint_id}: case_events has no event {expected} (found seq {event.seq}); "
                "is this the database the engine writes to?"
            )
    return timeline
