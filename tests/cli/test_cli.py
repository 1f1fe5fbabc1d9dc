"""starter.py, the command line, driven in-process against the dev server with a real worker.

starter.main() runs its own event loop, so each call runs in a thread
(asyncio.to_thread) while the worker keeps running in the test's loop
(tests/support/cli.py: run_cli, the CLI tests' roster and engine).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import pytest

from tests.support.cli import OWNER, assert_one_error, engine, new_intake, quiet_info_logs, run_cli  # noqa: F401 (fixtures)
from tests.support.intake import customer_id_for
from tests.support.paths import REPO
from stack.ports import free_port


async def test_start_act_show_and_list(engine, pool, capsys, tmp_path):
    # start from a JSON file, then again: one case
    intake = new_intake()
    cid = intake["complaint_id"]
    intake_file = tmp_path / "intake.json"
    intake_file.write_text(json.dumps(intake))
    status, out, err = await run_cli(capsys, "start", "--file", str(intake_file))
    assert (status, out.strip(), err) == (0, f"Case {cid} started; owner: {OWNER}", "")
    status, out, _ = await run_cli(capsys, "start", "--file", str(intake_file))
    assert (status, out.strip()) == (0, f"Case {cid} already exists; not started again")

    # an update prints the state after it
    status, out, err = await run_cli(capsys, "accept_ownership", cid, "--actor", OWNER)
    assert status == 0 and err == ""
    assert f"Case {cid}: Charged twice" in out and "in_progress" in out
    status, out, _ = await run_cli(
        capsys, "make_promise", cid, "--actor", OWNER, "--description", "Refund the duplicate charge", "--due-at", "+2d",
        "--wait-written",
    )
    assert status == 0 and "promise     P1 [open] Refund the duplicate charge" in out
    state = await engine.state(cid)
    assert out.rstrip().endswith(f"Written to PostgreSQL: events 1..{state.event_count}")
    assert await pool.fetchval("SELECT max(seq) FROM case_events WHERE complaint_id = $1", cid) == state.event_count
    status, out, _ = await run_cli(
        capsys, "request_info", cid, "--actor", OWNER, "--fields", "card_last4", "--question", "Which card?"
    )
    assert status == 0 and "waiting_on_customer" in out and "awaiting    card_last4" in out
    status, out, _ = await run_cli(
        capsys, "provide-info", cid, "--json", json.dumps({"actor": f"customer:{customer_id_for(cid)}", "channel": "chat"}), "--fact", "card_last4=4242"
    )
    assert status == 0 and "in_progress" in out and "card_last4='4242' (chat)" in out

    # show: state, then the timeline
    status, out, err = await run_cli(capsys, "show", cid)
    assert status == 0 and err == ""
    state_part, _, timeline_part = out.partition("Timeline (")
    assert f"Case {cid}" in state_part and "owner       cli-ana, supervisor cli-sam" in state_part
    for kind in ("complaint_received", "owner_assigned", "ownership_accepted", "promise_made", "info_provided"):
        assert kind in timeline_part
    status, out, _ = await run_cli(capsys, "show", cid, "--json")
    shown = json.loads(out)
    assert status == 0 and shown["state"]["status"] == "in_progress" and shown["outcome"] is None
    assert shown["timeline"][0]["kind"] == "complaint_received"
    assert [event["seq"] for event in shown["timeline"]] == sorted(event["seq"] for event in shown["timeline"])

    # list by owner finds it (visibility is eventually consistent: poll)
    for _ in range(50):
        status, out, _ = await run_cli(capsys, "list", "--owner", OWNER, "--customer", customer_id_for(cid), "--limit", "500")
        row = next((line for line in out.splitlines() if line.startswith(cid + " ")), None)
        if row and "in_progress" in row:
            break
        await asyncio.sleep(0.2)
    assert status == 0 and out.startswith("COMPLAINT")
    assert row is not None and row.split()[1:5] == ["in_progress", OWNER, "medium", "billing"], out
    status, out, _ = await run_cli(capsys, "list", "--owner", "nobody-at-all")
    assert status == 0 and out.startswith("No cases match") and "eventually consistent" in out


async def test_start_from_flags_and_act_by_signal(engine, capsys):
    cid = f"CLI-{uuid.uuid4().hex[:10]}"
    status, out, err = await run_cli(
        capsys, "start", "--complaint-id", cid, "--customer-id", customer_id_for(cid), "--customer-name", "Tom Okafor",
        "--phone", "+44 20 7946 0958", "--channel", "phone", "--category", "Billing", "--severity", "high",
        "--summary", "Refund never arrived", "--received-by", OWNER, "--fact", "refund_id=R-77",
    )  # fmt: skip
    assert (status, out.strip(), err) == (0, f"Case {cid} started; owner: {OWNER}", "")
    state = await engine.state(cid)
    assert (state.category, state.severity, state.channel) == ("billing", "high", "phone")
    assert state.facts["refund_id"].value == "R-77"

    # --signal: accepted ones apply, a rejected one leaves a command_rejected event
    status, out, err = await run_cli(capsys, "accept_ownership", cid, "--actor", OWNER, "--signal")
    assert status == 0 and err == "" and "as a signal" in out
    status, _, _ = await run_cli(capsys, "add_note", cid, "--actor", "cli-bob", "--text", "Bank confirms", "--signal")
    assert status == 0
    status, _, _ = await run_cli(capsys, "contact_customer", cid, "--actor", "cli-bob", "--channel", "phone", "--summary", "Hi", "--signal")
    assert status == 0  # sent; the case rejects it (only the owner may contact the customer)
    for _ in range(50):
        timeline = await engine.timeline(cid)
        kinds = [event.kind for event in timeline]
        if "command_rejected" in kinds and "note_added" in kinds:
            break
        await asyncio.sleep(0.1)
    # Signal handlers run concurrently: the note (which checks the roster in an
    # activity) may land after the rejection of the signal sent after it.
    assert kinds[-3] == "ownership_accepted"
    assert sorted(kinds[-2:]) == ["command_rejected", "note_added"]
    rejected = next(event for event in timeline if event.kind == "command_rejected")
    assert rejected.actor == "cli-bob" and rejected.data["action"] == "contact_customer"
    assert (await engine.state(cid)).status == "in_progress"

    status, out, err = await run_cli(capsys, "withdraw", cid, "--actor", f"customer:{customer_id_for(cid)}", "--reason", "The refund arrived")
    assert (status, err) == (0, "")
    state = await engine.state(cid)
    assert (state.status, state.outcome) == ("closed", "withdrawn")


async def test_errors_from_the_engine_are_one_line(engine, capsys):
    cid = f"CLI-{uuid.uuid4().hex[:10]}"
    await engine.start(new_intake(complaint_id=cid))

    # rejected update: exit 2, the engine's reason, nothing recorded
    before = await engine.state(cid)
    status, out, err = await run_cli(capsys, "accept_ownership", cid, "--actor", "cli-bob")
    assert status == 2 and out == ""
    assert_one_error(err, "rejected (NotAllowed)", OWNER)
    assert await engine.state(cid) == before

    # unknown case, through a query, an update and a signal
    for argv in (("show", "NOPE-9"), ("add_note", "NOPE-9", "--actor", OWNER, "--text", "x"), ("add_note", "NOPE-9", "--actor", OWNER, "--text", "x", "--signal")):
        status, out, err = await run_cli(capsys, *argv)
        assert status == 2 and out == "", argv
        assert_one_error(err, "no case NOPE-9 (workflow complaint-NOPE-9 not found)")

    # invalid payloads are caught before anything is sent
    status, _, err = await run_cli(capsys, "make_promise", cid, "--actor", OWNER, "--description", "Refund", "--due-at", "2026-11-25T17:00")
    assert status == 2
    assert_one_error(err, "invalid make_promise: due_at: Input should have timezone info")
    assert await engine.state(cid) == before


@pytest.mark.parametrize(
    "argv, status, expected",
    [
        (["start", "--json", '{"complaint_id": "C1",'], 2, "--json is not valid JSON"),
        (["add_note", "C1", "--json", "[1, 2]"], 2, "--json must be a JSON object (got list)"),
        (
            ["start", "--complaint-id", "C1", "--customer-id", "c1", "--customer-name", "Ana", "--channel", "email",
             "--category", "billing", "--severity", "urgent", "--summary", "Late"],
            2,
            "severity: Input should be 'low', 'medium', 'high' or 'critical' (got 'urgent')",
        ),  # fmt: skip
        (["add_note", "C1", "--text", "no actor"], 2, "invalid add_note: actor: required field is missing"),
        (["start", "--file", "/nonexistent/intake.json"], 2, "cannot read /nonexistent/intake.json"),
        (["provide_info", "C1", "--actor", "a", "--fact", "no-equals-sign"], 2, "argument --fact: expected name=value"),
        (["escalate", "C1"], 2, "unknown command 'escalate'; commands are: start, accept_ownership"),
        (["show", "bad id"], 2, "complaint id must be"),
        (["list", "--owner", "o'brien"], 2, "cannot contain quotes"),
        (["show", "C1"], 1, "cannot reach Temporal at 127.0.0.1:{port} — start it with `make worker` or set TEMPORAL_ADDRESS"),
        (["add_note", "C1", "--actor", "a", "--text", "hi"], 1, "cannot reach Temporal at 127.0.0.1:{port}"),
        (["roster", "list"], 1, "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:{port}/x"),
    ],
)
async def test_bad_input_and_missing_servers_are_one_line_without_a_traceback(argv, status, expected, capsys, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/x")
    got, out, err = await run_cli(capsys, *argv)
    assert (got, out) == (status, "")
    assert_one_error(err, expected.format(port=port))


async def test_roster_load_and_list(database_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    roster_file = tmp_path / "roster.json"
    roster_file.write_text(json.dumps({"agents": [
        {"id": "cli-roster-lead", "name": "Lee Lead", "role": "supervisor", "team": "delivery", "skills": ["delivery"]},
        {"id": "cli-roster-kim", "name": "Kim Agent", "role": "agent", "team": "delivery", "supervisor_id": "cli-roster-lead", "skills": ["delivery"]},
    ]}))  # fmt: skip
    status, out, err = await run_cli(capsys, "roster", "load", str(roster_file))
    assert status == 0 and "Roster loaded: 2 agents inserted or updated" in out
    assert "error" not in err
    status, out, _ = await run_cli(capsys, "roster", "list")
    row = next(line for line in out.splitlines() if line.startswith("cli-roster-kim "))
    assert status == 0 and out.startswith("ID") and "cli-roster-lead" in row and "delivery" in row
    status, out, _ = await run_cli(capsys, "roster", "list", "--json")
    agents = {agent["id"]: agent for agent in json.loads(out)}
    assert agents["cli-roster-kim"]["supervisor_id"] == "cli-roster-lead"

    roster_file.write_text(json.dumps({"agents": [{"id": "cli-roster-x", "name": "X", "role": "agent", "team": "t", "supervisor_id": "ghost"}]}))
    status, out, err = await run_cli(capsys, "roster", "load", str(roster_file))
    assert status == 2
    assert_one_error(err, "roster not loaded", "'ghost'")
    roster_file.write_text(json.dumps({"agents": [{"id": "cli-roster-y", "name": "Y", "role": "boss", "team": "t"}]}))
    status, out, err = await run_cli(capsys, "roster", "load", str(roster_file))
    assert status == 2
    assert_one_error(err, "invalid roster: agents.0.role")


@pytest.mark.parametrize(
    "intake, status, expected",
    [
        ({"severity": "urgent"}, 2, "error: invalid complaint intake: severity: Input should be"),
        ({}, 1, "error: cannot reach Temporal at 127.0.0.1:"),
    ],
    ids=["bad-severity", "no-server"],
)
async def test_starter_as_a_process_prints_one_line_and_exits(intake, status, expected, tmp_path):
    """The real entry point: validation happens before connecting; exit status survives os._exit."""
    intake_file = tmp_path / "intake.json"
    intake_file.write_text(json.dumps(new_intake(**intake)))
    env = {"PATH": "/usr/bin:/bin", "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "LOG_FORMAT": "console"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", "start", "--file", str(intake_file),
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == status, (out, err)
    lines = err.decode().splitlines()
    assert out == b"" and len(lines) == 1 and lines[0].startswith(expected), err


async def test_no_worker_is_named_after_the_timeout(dev_env, capsys, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("COMPLAINTS_TASK_QUEUE", f"nobody-polls-{uuid.uuid4().hex[:8]}")
    cid = f"CLI-{uuid.uuid4().hex[:10]}"
    intake = json.dumps(new_intake(complaint_id=cid))
    # Through the problem door, which needs a worker to decide.
    status, out, err = await run_cli(capsys, "--timeout", "1", "start", "--json", intake)
    assert (status, out) == (1, "")
    assert_one_error(err, "no answer within 1s — is a worker polling task queue 'nobody-polls-", "sending the same intake again is safe")
    # Started directly, the case exists at once; its owner waits for a worker.
    status, out, err = await run_cli(capsys, "--timeout", "1", "start", "--json", intake, "--direct")
    assert (status, out.strip()) == (0, f"Case {cid} started; owner: not known yet")
    assert err.startswith("warning: no answer within 1s — is a worker polling task queue 'nobody-polls-")
    status, out, err = await run_cli(capsys, "--timeout", "1", "add_note", cid, "--actor", OWNER, "--text", "x", "--request-id", "n-1")
    assert (status, out) == (1, "")
    assert_one_error(err, "no answer within 1s", "Start one with `make worker`", "resending with --request-id n-1 is safe")
    await dev_env.client.get_workflow_handle(f"complaint-{cid}").terminate("test done")
    await dev_env.client.get_workflow_handle(f"problem/{customer_id_for(cid)}/billing").terminate("test done")


def test_show_tells_the_owner_who_the_customer_is():
    from complaint_client.render import render_state
    from schemas.state import CustomerHistory
    from tests.support.case import assigned_case

    state = assigned_case().state
    state.customer_history = CustomerHistory()
    assert "Dana Whitfield (cust-1), first complaint" in render_state(state)
    state.customer_history = CustomerHistory(
        earlier_cases=2, open_cases=["C-7 (delivery, in_progress)"], last_complaint_id="C-5", last_outcome="resolved"
    )
    assert "2 earlier cases; last closed resolved (C-5); still open: C-7 (delivery, in_progress)" in render_state(state)


def test_a_broken_temporal_profile_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    """A TOML profile the temporal CLI would refuse is refused by name, never with a traceback."""
    import starter

    profile = tmp_path / "temporal.toml"
    profile.write_text("[profile.default\naddress = ")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profile))
    assert starter.main(["list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(profile) in err[0], err
