"""starter.py for the ownership actions: transfer with a handoff, goodwill and its approval, feedback."""

from __future__ import annotations

import uuid

from tests.support.cli import assert_one_error, engine, new_intake, quiet_info_logs, run_cli  # noqa: F401 (fixtures)

NOTE = "Duplicate charge on order A-1001; refund promised by Friday; customer prefers email replies."


async def test_transfer_goodwill_and_feedback_from_the_command_line(engine, capsys):  # noqa: F811
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    cid = f"CLI-{uuid.uuid4().hex[:10]}"
    await engine.start(new_intake(complaint_id=cid, customer={"customer_id": customer, "name": "Priya Natarajan"}))
    assert (await run_cli(capsys, "accept_ownership", cid, "--actor", "cli-ana"))[0] == 0

    status, out, err = await run_cli(
        capsys, "transfer-ownership", cid, "--actor", "cli-ana", "--to-agent", "cli-bob", "--handoff-note", NOTE
    )
    assert (status, err) == (0, "")
    assert f"handoff     from cli-ana to cli-bob (awaiting acceptance): {NOTE}" in out
    assert "pending     transfer to cli-bob; cli-ana stays accountable" in out

    status, _, err = await run_cli(capsys, "transfer_ownership", cid, "--actor", "cli-ana", "--to-agent", "cli-sam", "--handoff-note", NOTE)
    assert status == 2
    assert_one_error(err, "already pending")

    status, out, _ = await run_cli(capsys, "accept_ownership", cid, "--actor", "cli-bob")
    assert status == 0 and "owner       cli-bob" in out
    # The new owner reads the handoff first: it comes right after the case's title.
    assert out.splitlines()[1].startswith("  handoff     from cli-ana to cli-bob (accepted ")

    status, out, _ = await run_cli(
        capsys, "offer-goodwill", cid, "--actor", "cli-bob", "--kind", "credit", "--amount", "25", "--currency", "gbp",
        "--description", "Account credit for the trouble",
    )
    assert status == 0 and "goodwill    G1 [awaiting_approval] credit 25.00 GBP" in out
    status, _, err = await run_cli(capsys, "approve-goodwill", cid, "--actor", "cli-bob", "--goodwill-id", "G1", "--approve")
    assert status == 2
    assert_one_error(err, "NotAllowed", "supervisor or manager")
    status, out, _ = await run_cli(capsys, "approve-goodwill", cid, "--actor", "cli-mia", "--goodwill-id", "G1", "--approve")
    assert status == 0 and "goodwill    G1 [granted by cli-mia]" in out

    status, _, err = await run_cli(capsys, "record-feedback", cid, "--actor", f"customer:{customer}", "--score", "4")
    assert status == 2
    assert_one_error(err, "once the case is closed")
