"""Every message validates with errors a person understands, and stays plain JSON."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas import ACTIONS, ComplaintIntake, describe_validation_error
from schemas.roster import Roster
from tests.support.case import intake

GOOD_INTAKE = intake().model_dump(mode="json")


def intake_error(**changes) -> str:
    data = {**GOOD_INTAKE, **changes}
    with pytest.raises(ValidationError) as caught:
        ComplaintIntake.model_validate(data)
    return describe_validation_error(caught.value, "complaint intake")


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"severity": "urgent"}, "severity: Input should be 'low', 'medium', 'high' or 'critical' (got 'urgent')"),
        ({"summary": "   "}, "summary: String should have at least 1 character"),
        ({"summary": "x" * 201}, "summary: String should have at most 200 characters"),
        ({"complaint_id": "C 1"}, "complaint_id: must be 1 to 64 characters of letters, digits, '_' or '-', with no spaces (got 'C 1')"),
        ({"received_at": "2026-11-23T09:30:00"}, "received_at: Input should have timezone info"),
        ({"serverity": "low"}, "serverity: unknown field"),
        ({"channel": "fax"}, "channel: Input should be 'email', 'phone'"),
        ({"customer": {"customer_id": "c1", "name": "X", "email": "not-an-email"}}, "customer.email"),
    ],
)
def test_bad_intake_is_explained(changes, expected):
    assert expected in intake_error(**changes)


def test_missing_fields_are_named():
    data = dict(GOOD_INTAKE)
    del data["customer"]
    with pytest.raises(ValidationError) as caught:
        ComplaintIntake.model_validate(data)
    assert describe_validation_error(caught.value) == "customer: required field is missing"


def test_intake_round_trips_as_plain_json_with_offsets():
    parsed = intake(received_at="2026-11-23T09:30:00+01:00")
    wire = parsed.model_dump_json()
    assert json.loads(wire)["received_at"] == "2026-11-23T09:30:00+01:00"
    assert ComplaintIntake.model_validate_json(wire) == parsed
    assert intake(category="  Billing ").category == "billing"


@pytest.mark.parametrize(
    "name, payload, expected",
    [
        ("make_promise", {"actor": "ana", "description": "x", "due_at": "2026-12-01T10:00:00"}, "due_at: Input should have timezone info"),
        ("renegotiate_promise", {"actor": "ana", "promise_id": "P1", "new_due_at": "2026-12-01T10:00:00Z", "reason": "r", "customer_agreed": False}, "only with the customer's agreement"),
        ("request_info", {"actor": "ana", "fields": ["a", "a"], "question": "?"}, "fields must be distinct"),
        ("request_info", {"actor": "ana", "fields": ["Order ID"], "question": "?"}, "lower_snake_case"),
        ("add_note", {"actor": "bob smith", "text": "x"}, "an actor is a roster agent id, 'customer:<customer_id>' or 'system:<name>'"),
        ("add_note", {"actor": "ana", "text": ""}, "text: String should have at least 1 character"),
        ("contact_customer", {"actor": "ana", "channel": "phone"}, "summary: required field is missing"),
        ("accept_ownership", {"actor": "ana", "extra": 1}, "extra: unknown field"),
    ],
)
def test_bad_actions_are_explained(name, payload, expected):
    with pytest.raises(ValidationError) as caught:
        ACTIONS[name].model_validate(payload)
    assert expected in describe_validation_error(caught.value, name)


def test_roster_rejects_duplicates_and_self_supervision():
    agent = {"id": "ana", "name": "Ana", "role": "agent", "team": "billing"}
    with pytest.raises(ValidationError, match="more than once: ana"):
        Roster.model_validate({"agents": [agent, agent]})
    with pytest.raises(ValidationError, match="own supervisor"):
        Roster.model_validate({"agents": [{**agent, "supervisor_id": "ana"}]})
