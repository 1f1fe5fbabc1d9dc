"""Where a delivery's time goes, read from the histories of a sample of the measured notifications'
DeliveryWorkflows: from the row's commit to the workflow's start, the time its workflow tasks and its
activity tasks waited on the task queue (scheduled to started), until the first `deliver` began."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.delivery.figures import spread
from workflows.delivery import WORKFLOW_ID_PREFIX

# Histories read per run: evenly spread over the measured notifications in id order.
SAMPLE = 100

_SCHEDULED = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}


def _at(event: Any) -> datetime:
    return event.event_time.ToDatetime().replace(tzinfo=None)


def path_to_first_send(events: list[Any]) -> dict[str, float] | None:
    """ms from the workflow's start to its first `deliver` starting, and how much of it its workflow
    tasks and its activity tasks spent waiting to be picked up; None if no `deliver` started."""
    if not events:
        return None
    began = _at(events[0])
    scheduled: dict[int, tuple[datetime, bool]] = {}  # event id -> (when, is the first deliver's)
    waits = {"workflow_task_wait_ms": 0.0, "activity_task_wait_ms": 0.0}
    for event in events:
        if event.event_type in _SCHEDULED:
            deliver = (event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                       and event.activity_task_scheduled_event_attributes.activity_type.name == "deliver")  # fmt: skip
            scheduled[event.event_id] = (_at(event), deliver)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            when, _ = scheduled.get(event.workflow_task_started_event_attributes.scheduled_event_id, (_at(event), False))
            waits["workflow_task_wait_ms"] += (_at(event) - when).total_seconds() * 1000
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            when, deliver = scheduled.get(event.activity_task_started_event_attributes.scheduled_event_id, (_at(event), False))
            waits["activity_task_wait_ms"] += (_at(event) - when).total_seconds() * 1000
            if deliver:
                return {"start_to_first_send_ms": (_at(event) - began).total_seconds() * 1000, **waits}
    return None


async def breakdown(client: Client, rows: list[Any]) -> dict[str, Any]:
    """p50/p99/max over a sample of rows' deliveries: row commit to workflow start, the queue waits on
    the way to the first send, and the whole way to it."""
    ordered = sorted(rows, key=lambda r: r["id"])
    step = max(1, len(ordered) // SAMPLE)
    sample = ordered[::step][:SAMPLE]
    parts: dict[str, list[float]] = {"row_to_workflow_start_ms": [], "start_to_first_send_ms": [],
                                     "workflow_task_wait_ms": [], "activity_task_wait_ms": []}  # fmt: skip
    waiting = 0  # workflows whose first `deliver` had not started when the histories were read
    for row in sample:
        workflow_id = f"{WORKFLOW_ID_PREFIX}{row['complaint_id']}-{row['id']}"
        try:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        except Exception:
            continue  # not started (no route) or gone: left out of the sample
        events = list(history.events)
        path = path_to_first_send(events)
        if path is None:
            waiting += 1
            continue
        created = row["created_at"].astimezone(timezone.utc).replace(tzinfo=None)  # naive UTC, as the history's
        parts["row_to_workflow_start_ms"].append((_at(events[0]) - created).total_seconds() * 1000)
        for key, value in path.items():
            parts[key].append(value)
    return {"sampled": len(parts["start_to_first_send_ms"]), "not_yet_sent": waiting,
            **{key: spread(values) for key, values in parts.items()}}
