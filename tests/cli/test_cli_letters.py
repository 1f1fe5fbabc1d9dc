"""`starter.py letters render`: a case's letter printed for posting, from the case as it stands."""

from __future__ import annotations

from tests.support.cli import OWNER, assert_one_error, engine, new_intake, quiet_info_logs, run_cli  # noqa: F401 (fixtures)


def posted_intake() -> dict:
    """An fca case of a customer with no email address: their letters go by post."""
    intake = new_intake(policy="fca")
    intake["customer"].pop("email", None)
    return intake


async def test_a_final_response_is_printed_for_posting_with_the_owner_s_words_and_the_ombudsman_s_terms(
    engine, database_url, capsys, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", database_url)  # the roster, for the owner's name
    intake = posted_intake()
    cid = intake["complaint_id"]
    await engine.start_case(intake)
    await engine.act(cid, "accept_ownership", {"actor": OWNER})
    await engine.act(cid, "propose_resolution", {"actor": OWNER, "resolution": "We refunded the duplicate charge of 40 GBP.", "root_cause": "Gateway retry"})
    drafted = (await engine.state(cid)).letter("final_response")
    assert drafted is not None and drafted.status == "drafted"

    status, out, err = await run_cli(capsys, "letters", "render", cid, "final_response", "--words", "I am sorry for the trouble.")
    assert status == 0 and err == ""
    subject, _, body = out.partition("\n\n")
    assert subject.startswith("Subject: ") and cid in subject
    assert "Priya Natarajan" in body and "Ana Agent" in body  # to the customer, signed by the owner (the roster's name)
    assert "I am sorry for the trouble." in body and "We refunded the duplicate charge of 40 GBP." in body
    assert "Financial Ombudsman Service" in body and "six months" in body  # DISP 1.6.2R: the referral right and its limit
    assert "<" not in body  # the plain text

    status, out, _ = await run_cli(capsys, "letters", "render", cid, "final_response", "--html")
    assert status == 0 and "<html" in out.lower() and "Financial Ombudsman Service" in out

    # Posted: the owner records it, and the case counts the letter as sent.
    await engine.act(cid, "contact_customer", {"actor": OWNER, "channel": "letter", "summary": "Final response posted", "letter": "final_response"})
    assert (await engine.state(cid)).letter("final_response").status == "sent"


async def test_a_letter_the_policy_does_not_have_is_refused_naming_the_ones_it_has(engine, capsys):
    intake = posted_intake()
    cid = intake["complaint_id"]
    await engine.start_case(intake)
    status, _, err = await run_cli(capsys, "letters", "render", cid, "apology")
    assert status == 2
    assert_one_error(err, "policy 'fca'", "no letter 'apology'", "final_response", "summary_resolution")
