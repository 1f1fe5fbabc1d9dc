"""The public event types and their payloads (delivery/case_events.py): pure, no server."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import get_args

import pytest

from delivery.case_events import (
    EVENT_TYPES,
    UnknownEventType,
    event_payload,
    parse_event_types,
    public_type,
    public_types_of,
    timeline_kinds_for,
)
from schemas.state import EventKind

AT = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def test_every_public_type_comes_from_a_timeline_kind_the_engine_writes():
    assert set(timeline_kinds_for(EVENT_TYPES)) <= set(get_args(EventKind))
    assert public_type("complaint_received") == "case.opened" and public_type("promise_overdue") == "promise.overdue"
    assert public_type("note_added") is None and public_type("command_rejected") is None
    assert public_types_of(["escalated", "note_added", "escalated", "case_closed"]) == ["case.closed", "case.escalated"]
    assert timeline_kinds_for(["case.opened", "feedback.recorded"]) == ["complaint_received", "feedback_recorded"]


def test_a_payload_keeps_ids_and_facts_names_never_what_the_customer_or_an_agent_wrote():
    body = event_payload("C-1", 9, "info_provided", "customer:CU-9", AT, "phone", {
        "facts": {"card_last4": "4242", "iban": "GB00"}, "corrected_from": {"iban": "GB99"}, "still_awaiting": ["address"],
        "resumed": True,
    })  # fmt: skip
    assert body == {
        "type": "info.provided",
        "timestamp": "2026-11-23T09:30:00+00:00",
        "data": {"complaint_id": "C-1", "seq": 9, "kind": "info_provided", "actor": "customer:CU-9",
                 "at": "2026-11-23T09:30:00+00:00", "channel": "phone", "facts": ["card_last4", "iban"],
                 "still_awaiting": ["address"], "resumed": True},
    }  # fmt: skip
    closed = event_payload("C-1", 12, "case_closed", "customer:CU-9", AT, None,
                           {"outcome": "withdrawn", "reason": "my bank refunded me", "root_cause": "duplicate capture"})
    assert closed["data"]["outcome"] == "withdrawn" and "reason" not in closed["data"] and "root_cause" not in closed["data"]
    feedback = event_payload("C-1", 13, "feedback_recorded", "customer:CU-9", AT, None, {"score": 1, "comment": "awful"})
    assert feedback["data"]["score"] == 1 and "comment" not in feedback["data"]
    goodwill = event_payload("C-1", 14, "goodwill_offered", "a1", AT, None, {"goodwill_id": "G1", "kind": "refund", "amount": "10.00"})
    assert goodwill["data"]["kind"] == "goodwill_offered" and goodwill["data"]["goodwill_kind"] == "refund"
    with pytest.raises(ValueError, match="note_added"):
        event_payload("C-1", 3, "note_added", "a1", AT, None, {"text": "private"})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("case.closed, case.opened,case.closed", ["case.closed", "case.opened"]),
        ("case.openned", "unknown event type 'case.openned'; valid types are: case.accepted, case.assigned,"),
        ("case.x,y", "unknown event types 'case.x', 'y'; valid types are:"),
        (" , ", "no event type; valid types are:"),
    ],
)
def test_event_types_are_parsed_and_an_unknown_one_is_named_with_the_valid_ones(text, expected):
    if isinstance(expected, list):
        assert parse_event_types(text) == expected
        return
    with pytest.raises(UnknownEventType) as refused:
        parse_event_types(text)
    assert str(refused.value).startswith(expected) and "feedback.recorded" in str(refused.value)
