"""Determinism: every recorded history in tests/fixtures/histories replays against the current code.

A change to the commands a workflow issues for an existing history (an
activity, timer, marker or continue-as-new added, dropped or reordered) fails
here: put it behind workflow.patched (README, "Versioning workflow changes").
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
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.complaint import FEEDBACK_WINDOW_PATCH, LEAN_ROUND_TRIPS_PATCH, PACED_WRITES_PATCH, ComplaintWorkflow
from workflows.problem_door import ProblemDoorWorkflow

FIXTURES = Path(__file__).parent / "fixtures" / "histories"
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


def replayer() -> Replayer:
    return Replayer(workflows=[ComplaintWorkflow, ProblemDoorWorkflow], data_converter=pydantic_data_converter)


@pytest.mark.parametrize("path", fixture_paths(), ids=fixture_name)
async def test_a_recorded_history_replays_against_the_current_code(path: Path):
    # Raises (NondeterminismError, or the workflow task's failure) on any divergence.
    result = await replayer().replay_workflow(load_history(path))
    assert result.replay_failure is None


def test_the_fixtures_cover_the_representative_cases():
    """Every demo case, an escalated and transferred one, a door, a continue-as-new, an engine before a patch."""
    from demo_cases import SCENARIOS

    names = {fixture_name(p) for p in fixture_paths()}
    expected = {s.run.__name__ for s in SCENARIOS} | {
        "escalated_then_transferred",
        "door_joined_from_a_second_channel",
        "continued_as_new_run1",
        "continued_as_new_run2",
        "continued_as_new_run1_bounded",
        "continued_as_new_run2_bounded",
        "pre_feedback_window_resolved",
    } | {f"{s.run.__name__}_answer_first" for s in SCENARIOS} | {"escalated_then_transferred_answer_first"}
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


def test_the_feedback_window_patch_is_replayed_both_ways():
    """The pre-patch history completed at the close, with no marker; a current closed case records the marker."""
    old = history_dict(FIXTURES / MANIFEST["pre_feedback_window_resolved"]["file"])
    assert FEEDBACK_WINDOW_PATCH not in _patch_markers(old)
    assert old["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    new = history_dict(FIXTURES / MANIFEST["resolved_at_first_contact_answer_first"]["file"])
    assert _patch_markers(new) == [LEAN_ROUND_TRIPS_PATCH, FEEDBACK_WINDOW_PATCH]
    completed = history_dict(FIXTURES / MANIFEST["escalated_then_transferred_answer_first"]["file"])
    assert FEEDBACK_WINDOW_PATCH in _patch_markers(completed)
    assert completed["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


def test_the_paced_writes_patch_stands_for_the_patches_before_it():
    """A current case records one marker, paced-writes, and still runs through its feedback window
    and opens with open_case: the changes of the two markers it replaces."""
    for name in ("resolved_at_first_contact", "escalated_then_transferred", "joined_from_a_second_channel"):
        current = history_dict(FIXTURES / MANIFEST[name]["file"])
        assert _patch_markers(current) == [PACED_WRITES_PATCH], name
        assert _scheduled(current)[0] == "open_case", name
    completed = history_dict(FIXTURES / MANIFEST["escalated_then_transferred"]["file"])
    assert completed["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    timers = [e["timerStartedEventAttributes"]["startToFireTimeout"] for e in completed["events"] if "timerStartedEventAttributes" in e]
    assert len(timers) >= 2, timers  # its clocks, then the feedback window


def test_the_lean_round_trips_patch_is_replayed_both_ways():
    """Before the patch a case opened with three activities and answered every update that changed it
    in a later workflow task than the one that accepted it (after its write). Since, it opens with
    open_case and answers most updates in the task that accepted them."""
    for name in ("resolved_at_first_contact", "escalated_then_transferred", "joined_from_a_second_channel"):
        old = history_dict(FIXTURES / MANIFEST[f"{name}_three_activity_opening"]["file"])
        new = history_dict(FIXTURES / MANIFEST[f"{name}_answer_first"]["file"])
        assert LEAN_ROUND_TRIPS_PATCH not in _patch_markers(old)
        assert {"resolve_policy", "assign_owner", "load_customer_history"} <= set(_scheduled(old)) and "open_case" not in _scheduled(old)
        assert not any(_answered_in_the_accepting_task(old)), name
        assert LEAN_ROUND_TRIPS_PATCH in _patch_markers(new)
        assert _scheduled(new)[0] == "open_case" and "resolve_policy" not in _scheduled(new)
        answered = _answered_in_the_accepting_task(new)
        # The exceptions wait for an activity of their own (a transfer reads the target's workload).
        assert answered.count(True) > answered.count(False), (name, answered)


def _answered_in_the_accepting_task(history: dict) -> list[bool]:
    """For each completed action update: was it completed in the workflow task that accepted it?
    (wait_for_writes, which the recorder sends after each action, waits for the write by design.)"""
    events = history["events"]
    accepted_at: dict[str, int] = {}
    answered = []
    for index, event in enumerate(events):
        accepted = event.get("workflowExecutionUpdateAcceptedEventAttributes")
        if accepted and accepted["acceptedRequest"]["input"]["name"] != "wait_for_writes":
            accepted_at[accepted["protocolInstanceId"]] = index
        completed = event.get("workflowExecutionUpdateCompletedEventAttributes")
        if completed and completed["meta"]["updateId"] in accepted_at:
            between = events[accepted_at[completed["meta"]["updateId"]] + 1:index]
            answered.append(all(e["eventType"] != "EVENT_TYPE_WORKFLOW_TASK_COMPLETED" for e in between))
    return answered


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
    replayer_with_codec = Replayer(workflows=[ComplaintWorkflow, ProblemDoorWorkflow], data_converter=converter)
    for path in fixture_paths():
        result = await replayer_with_codec.replay_workflow(load_history(path), raise_on_replay_failure=False)
        assert result.replay_failure is None, (path.name, result.replay_failure)
