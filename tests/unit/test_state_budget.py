"""A case's state stays under rules.STATE_BUDGET_BYTES (README, "Limits"): pure rules, then a real workflow.

The state is the answer to every update and most of a continue-as-new's input; Temporal
refuses any payload over 2 MB, so a state past that would fail every workflow task of its
case for ever. Only facts, promises and goodwill accumulate, so only the actions that add
them are refused when a case is full; everything that works the case to its close goes on.
"""

from __future__ import annotations

import pytest

from tests.support.case import CUSTOMER, accepted_case, action, later, rejected
from workflows import rules
from workflows.case import Case

FACT_VALUE = "x" * 2_000  # the longest a fact's value may be
FACTS_PER_MESSAGE = 50


def facts(start: int, count: int = FACTS_PER_MESSAGE) -> dict[str, str]:
    return {f"document_page_{n}": FACT_VALUE for n in range(start, start + count)}


def fill(case: Case, start: int, per_message: int) -> int:
    """provide_info of `per_message` longest facts at a time until the next does not fit; the next fact number."""
    while True:
        more = action("provide_info", channel="email", facts=facts(start, per_message))
        if not rules.has_room(rules.state_bytes(case.state), len(more.model_dump_json().encode())):
            return start
        case.apply("provide_info", more, later(start))
        start += per_message


def full_case(*, to_the_brim: bool = True) -> Case:
    """A case whose facts filled its state: not one more longest fact fits (to_the_brim), or not 50 more."""
    case = accepted_case()
    start = fill(case, 0, FACTS_PER_MESSAGE)
    if to_the_brim:
        fill(case, start, 1)
    return case


def test_the_budget_keeps_a_case_far_below_temporals_payload_limit():
    case = full_case()
    assert rules.state_bytes(case.state) <= rules.STATE_BUDGET_BYTES < 2 * 1000 * 1000
    assert len(case.state.facts) >= 400  # about 1 MiB of facts went in before the case was full


def test_a_full_case_refuses_what_would_grow_it_and_says_why():
    case = full_case()
    used = rules.state_bytes(case.state)
    error = rejected(case, "provide_info", channel="email", facts=facts(10_000))
    assert error.kind == "InvalidCommand"
    assert f"case {case.state.complaint_id} is full" in error.message and f"{used:,} bytes" in error.message
    assert "provide_info" in error.message
    big_text = "y" * 10_000
    assert "is full" in rejected(case, "make_promise", description=big_text, due_at=later(600).isoformat()).message
    assert "is full" in rejected(case, "offer_goodwill", kind="refund", amount="10.00", currency="GBP", description=big_text).message
    assert "is full" in rejected(
        case, "new_contact", actor=CUSTOMER, channel="phone", summary="Called again", facts=facts(20_000)
    ).message


def test_a_full_case_still_takes_small_additions_and_corrections():
    case = full_case(to_the_brim=False)
    # A short correction and a short promise fit what is left.
    case.apply("provide_info", action("provide_info", channel="email", facts={"document_page_0": "corrected"}), later(900))
    assert case.state.facts["document_page_0"].value == "corrected"
    case.apply("make_promise", action("make_promise", description="Call back", due_at=later(960).isoformat()), later(901))
    assert case.state.promises[-1].description == "Call back"


def test_a_full_case_can_still_be_worked_to_its_close():
    case = full_case()
    long_text = "z" * 10_000
    case.apply("add_note", action("add_note", text=long_text), later(1_000))
    case.apply("contact_customer", action("contact_customer", channel="phone", summary=long_text), later(1_001))
    case.apply("new_contact", action("new_contact", actor=CUSTOMER, channel="email", summary=long_text), later(1_002))
    case.apply(
        "propose_resolution",
        action("propose_resolution", resolution=long_text, root_cause="r" * 2_000),
        later(1_003),
    )
    case.apply("confirm_resolution", action("confirm_resolution", actor=CUSTOMER, satisfied=True), later(1_004))
    assert case.state.status == "closed" and case.state.outcome == "resolved"
    # Replacing bounded fields moved the state by their size, not more: still far below Temporal's limit.
    assert rules.state_bytes(case.state) < rules.STATE_BUDGET_BYTES + 64 * 1024


def test_a_validator_refuses_what_would_not_fit_too():
    case = full_case()
    with pytest.raises(rules.Rejection, match="is full"):
        case.check("provide_info", action("provide_info", channel="email", facts=facts(10_000)), later(2_000), roster_unknown_ok=True)


@pytest.mark.parametrize("used, action_bytes, fits", [
    (0, 100_000, True),
    (rules.STATE_BUDGET_BYTES - 4 * 1024 - 2 * 100, 100, True),
    (rules.STATE_BUDGET_BYTES - 4 * 1024 - 2 * 100 + 1, 100, False),
    (rules.STATE_BUDGET_BYTES, 0, False),
])  # fmt: skip
def test_room_is_twice_the_action_and_some_overhead(used, action_bytes, fits):
    assert rules.has_room(used, action_bytes) is fits


# --- a real workflow ---------------------------------------------------------------------


@pytest.mark.integration
async def test_a_full_case_refuses_through_updates_and_signals_and_still_closes(dev_env, pool):
    from activities.roster_store import load_roster
    from temporalio.contrib.pydantic import pydantic_data_converter
    from workflow_runner import replayer as workflow_replayer

    from complaint_client import CommandRejected
    from tests.conftest import running_worker
    from tests.support.intake import OWNER, ROSTER, customer_of, new_intake

    await load_roster(pool, ROSTER)
    async with running_worker(dev_env.client, pool) as engine:
        started = await engine.start_case(new_intake())
        cid = started.complaint_id
        await engine.act(cid, "accept_ownership", {"actor": OWNER})
        start, answers = 0, 0
        with pytest.raises(CommandRejected, match="is full") as refused:
            while True:  # each answer is the whole state, up to the budget: Temporal takes every one
                await engine.act(cid, "provide_info", {"actor": OWNER, "channel": "email", "facts": facts(start)})
                start += FACTS_PER_MESSAGE
                answers += 1
        assert refused.value.kind == "InvalidCommand" and answers >= 8
        # The same through a signal: one command_rejected event.
        await engine.send(cid, "provide_info", {"actor": customer_of(cid), "channel": "email", "facts": facts(90_000)})
        state = await engine.act(cid, "add_note", {"actor": OWNER, "text": "Documents received; see DMS ref D-77"})
        assert "document_page_90000" not in state.facts
        rejections = [e for e in await engine.recent_timeline(cid) if e.kind == "command_rejected"]
        assert [(e.data["action"], "is full" in e.data["reason"]) for e in rejections] == [("provide_info", True)]
        # A full case is still worked to its close.
        await engine.act(cid, "propose_resolution", {"actor": OWNER, "resolution": "Refunded the duplicate charge", "root_cause": "Retry without idempotency key"})
        await engine.act(cid, "confirm_resolution", {"actor": customer_of(cid), "satisfied": True})
        assert (await engine.state(cid)).outcome == "resolved"

        await engine.handle(cid).terminate("test finished")
        histories = await every_run(dev_env.client, started.workflow_id)
    assert len(histories) > 1  # its history passed the size Temporal suggests continuing as new at
    replayer = workflow_replayer(pydantic_data_converter)
    for history in histories:
        replay = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replay.replay_failure is None


async def every_run(client, workflow_id: str) -> list:  # type: ignore[no-untyped-def]
    """The histories of every run of a workflow, the latest first."""
    histories, run_id = [], None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return histories
