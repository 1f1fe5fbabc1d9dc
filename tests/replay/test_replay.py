"""Determinism: every recorded history in tests/fixtures/histories replays against the current code.

A change to the commands a workflow issues for an existing history (an
activity, timer, marker or continue-as-new added, dropped or reordered) fails
here. Before the first release such a change re-records the fixtures
(`make fixtures`); from the release on it needs workflow.patched or a new
worker deployment version (docs/versioning.md).
Histories are recorded by `python -m tests.fixtures.histories.record`, with the
plain pydantic converter the clients use (stack/client.py); a payload codec
passes unencoded payloads through, so they replay with it too.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from tests.support.paths import REPO
from tests.support.replay import replayer
from workflow_runner import replayer as workflow_replayer

FIXTURES = REPO / "tests" / "fixtures" / "histories"
MANIFEST: dict[str, dict] = json.loads((FIXTURES / "manifest.json").read_text())


def fixture_name(path: Path) -> str:
    return path.name.split(".json")[0]


def fixture_paths() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.name.endswith((".json", ".json.gz")) and p.name != "manifest.json")


def history_dict(path: Path) -> dict:
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.name.endswith(".gz") else data)


def load_history(path: Path) -> WorkflowHistory:
    name = fixture_name(path)
    workflow_id = MANIFEST.get(name, {}).get("workflow_id", f"complaint-{name}")
    return WorkflowHistory.from_json(workflow_id, history_dict(path))


@pytest.mark.parametrize("path", fixture_paths(), ids=fixture_name)
async def test_a_recorded_history_replays_against_the_current_code(path: Path):
    # Raises (NondeterminismError, or the workflow task's failure) on any divergence.
    result = await replayer().replay_workflow(load_history(path))
    assert result.replay_failure is None


def test_the_fixtures_cover_the_representative_cases():
    """Every demo case, an escalated and transferred one, a problem door, a continue-as-new pair, an fca case's letters."""
    from demo_cases import SCENARIOS

    names = {fixture_name(p) for p in fixture_paths()}
    expected = {s.run.__name__ for s in SCENARIOS} | {
        "escalated_then_transferred",
        "door_joined_from_a_second_channel",
        "continued_as_new_run1",
        "continued_as_new_run2",
        "fca_letters",
    }
    assert expected <= names, f"missing fixtures: {sorted(expected - names)}"
    assert names <= set(MANIFEST), f"fixtures without a manifest row: {sorted(names - set(MANIFEST))}"
    assert MANIFEST["escalated_then_transferred"]["ends"] == "completed"


def _patch_markers(history: dict) -> list[str]:
    """The ids of the workflow.patched markers recorded in a history (core's marker: {"id", "deprecated"})."""
    found = []
    for event in history["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker.get("markerName") == "core_patch":
            raw = marker["details"]["patch-data"]["payloads"][0]["data"]
            found.append(json.loads(base64.b64decode(raw))["id"])
    return found


@pytest.mark.parametrize("path", fixture_paths(), ids=fixture_name)
def test_before_the_first_release_a_history_carries_no_patch_marker(path: Path):
    """One code path until v1.0.0 (docs/versioning.md): the fixtures are re-recorded, never patched."""
    assert _patch_markers(history_dict(path)) == []


def test_a_case_opens_in_one_activity_and_runs_through_its_feedback_window():
    for name in ("resolved_at_first_contact", "escalated_then_transferred", "joined_from_a_second_channel"):
        current = history_dict(FIXTURES / MANIFEST[name]["file"])
        assert _scheduled(current)[0] == "open_case", name
        assert not {"resolve_policy", "assign_owner", "load_customer_history"} & set(_scheduled(current)), name
    completed = history_dict(FIXTURES / MANIFEST["escalated_then_transferred"]["file"])
    assert completed["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    timers = [e["timerStartedEventAttributes"]["startToFireTimeout"] for e in completed["events"] if "timerStartedEventAttributes" in e]
    assert len(timers) >= 2, timers  # its clocks, then the feedback window


def _scheduled(history: dict) -> list[str]:
    return [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in history["events"] if "activityTaskScheduledEventAttributes" in e
    ]


async def test_a_history_the_code_no_longer_matches_fails_the_replay():
    """The safety net works: a history whose commands differ from the code's is refused."""
    history = history_dict(FIXTURES / MANIFEST["resolved_at_first_contact"]["file"])
    scheduled = next(
        e for e in history["events"]
        if e.get("activityTaskScheduledEventAttributes", {}).get("activityType", {}).get("name") == "record_case_events"
    )
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "record_case_events_v0"
    tampered = WorkflowHistory.from_json("complaint-tampered", history)
    result = await replayer().replay_workflow(tampered, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


async def test_the_fixtures_replay_with_the_encrypting_converter_too():
    """Recorded in plain JSON, they replay with the converter the clients use when keys are set:
    the encryption codec passes unencrypted payloads through (codec/, stack/client.py)."""
    from codec import make_data_converter, parse_keys
    from codec.keys import new_key_entry

    converter = make_data_converter(parse_keys(new_key_entry("replay")))
    replayer_with_codec = workflow_replayer(converter)
    for path in fixture_paths():
        result = await replayer_with_codec.replay_workflow(load_history(path), raise_on_replay_failure=False)
        assert result.replay_failure is None, (path.name, result.replay_failure)
