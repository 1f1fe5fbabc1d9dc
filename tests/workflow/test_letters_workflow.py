"""Letters to the customer on a real worker, with a real SMTP server on loopback (aiosmtpd), on the
time-skipping server: the acknowledgement arrives on receipt and is the engine's contact, the final response
goes only with the owner's contact_customer letter=final_response, a failing mail server never stalls the
case, and the FCA holding response (day 55) and the CFPB in-progress response (day 14) go by themselves."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import AsyncIterator
from zoneinfo import ZoneInfo

from activities.roster_store import load_roster
from delivery.email import message_id
from delivery.letters import letter_key, template_version
from delivery.settings import DeliverySettings, SmtpSettings
from schemas import TimelineEvent
from tests.support.pg_fixtures import ON_ONE_SERVER
from tests.support.engine import Engine, end_cases
from tests.support.intake import OWNER, ROSTER
from tests.support.logs import json_logs
from tests.support.smtp import SmtpSink

CUSTOMER = {"name": "Priya Natarajan", "email": "priya.natarajan@example.com"}
LONDON = ZoneInfo("Europe/London")
WORDS = "We found the second charge: our card system took your payment twice. It is refunded today."


@asynccontextmanager
async def lettering(env, pool) -> AsyncIterator[tuple[Engine, SmtpSink, SmtpSettings]]:
    """An SMTP sink, a worker that emails through it, and an Engine opening fca cases on the workflow roster."""
    from worker import build_worker

    async with SmtpSink() as sink:
        smtp = SmtpSettings(host="127.0.0.1", port=sink.port, sender="complaints@bank.test", timeout=5)
        await load_roster(pool, ROSTER)
        task_queue = f"letters-test-{uuid.uuid4().hex[:8]}"
        async with build_worker(env.client, pool, task_queue, delivery=DeliverySettings(smtp=smtp), graceful_shutdown=timedelta(0)):
            engine = Engine(env.client, task_queue, read_your_writes=True, owner=OWNER, prefix="LT", customer_prefix="c-", policy="fca")
            try:
                yield engine, sink, smtp
            finally:
                await end_cases(engine, engine.started)


async def eventually(engine: Engine, complaint_id: str, kind: str, actor: str, count: int = 1, timeout: float = 30.0) -> list[TimelineEvent]:
    """The case's events of this kind by this actor, once there are `count` of them (a letter's answer comes
    when its activity finishes, after the action or timer that sent it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = [e for e in await engine.timeline(complaint_id) if e.kind == kind and e.actor == actor]
        if len(found) >= count or loop.time() > deadline:
            assert len(found) >= count, f"{complaint_id}: {len(found)} {kind} by {actor} after {timeout} s"
            return found
        await asyncio.sleep(0.1)


def wall_clock(at: datetime) -> datetime:
    """The time on a London clock: the fca calendar counts its days there."""
    return at.astimezone(LONDON).replace(tzinfo=None)


def to(sink: SmtpSink, complaint_id: str) -> list[EmailMessage]:
    return [m for m in sink.messages if m["X-Complaint-Id"] == complaint_id]


def mid(mail: EmailMessage) -> str:
    """The Message-ID as sent (a long one is folded onto a second header line)."""
    return str(mail["Message-ID"]).strip()


def text_of(mail: EmailMessage) -> str:
    return " ".join(mail.get_body(("plain",)).get_content().split())


async def opened(engine: Engine) -> str:
    """An fca case of a customer with an email address, received by OWNER and accepted."""
    complaint_id, _ = await engine.open(customer={"customer_id": f"c-{uuid.uuid4().hex[:12]}", **CUSTOMER})
    return complaint_id


async def test_the_acknowledgement_is_emailed_on_receipt_and_the_final_response_only_with_the_owner_s_letter(clock_env, pool):
    with json_logs() as (_, logs):
        async with lettering(clock_env, pool) as (engine, sink, smtp):
            cid = await opened(engine)
            [ack] = await sink.wait_for(1)
            assert ack["To"] == CUSTOMER["email"] and ack["From"] == "complaints@bank.test"
            assert mid(ack) == message_id(letter_key(cid, "acknowledgement", 1), smtp)
            assert ack["Subject"] == f"We have received your complaint (reference {cid})"
            assert "Dear Priya Natarajan," in text_of(ack) and ack.get_body(("html",)) is not None

            # The engine's contact, recorded once the email went: template, version, Message-ID.
            [contacted] = await eventually(engine, cid, "customer_contacted", "system:letters")
            assert contacted.channel == "email"
            assert {k: contacted.data[k] for k in ("letter", "template", "version", "message_id", "occurrence")} == {
                "letter": "acknowledgement",
                "template": "acknowledgement",
                "version": template_version("acknowledgement"),
                "message_id": mid(ack),
                "occurrence": 1,
            }
            # It restarts the update clock as a person's contact does: from the letter, first response given.
            state = await engine.state(cid)
            clocks = {c.name: c for c in state.clocks}
            assert clocks["customer_update"].started_at == contacted.at and "first_response" not in clocks
            assert state.letter("acknowledgement").status == "sent"

            # A resolution drafts the final response for the owner; nothing is emailed until they send it.
            state = await engine.act(cid, "propose_resolution", {"actor": OWNER, "resolution": "Refund of 49.00", "root_cause": "Card captured twice"})
            assert state.letter("final_response").status == "drafted"
            drafted = [e for e in await engine.timeline(cid) if e.kind == "letter_drafted"]
            assert [(e.actor, e.data["letter"], e.data["owner"]) for e in drafted] == [("system:letters", "final_response", OWNER)]
            await asyncio.sleep(0.5)
            assert len(to(sink, cid)) == 1, "the final response waits for the owner's words"

            await engine.act(cid, "contact_customer", {"actor": OWNER, "channel": "email", "summary": WORDS, "letter": "final_response"})
            await sink.wait_for(2)
            final = to(sink, cid)[-1]
            assert mid(final) == message_id(letter_key(cid, "final_response", 1), smtp)
            assert final["Subject"] == f"Our final response to your complaint (reference {cid})"
            body = text_of(final)
            for phrase in (WORDS, "Refund of 49.00", "Financial Ombudsman Service", "within six months of the date of this letter"):
                assert phrase in body, phrase
            [sent] = await eventually(engine, cid, "letter_sent", "system:letters")
            assert (sent.data["letter"], sent.data["written_by"], sent.data["version"]) == ("final_response", OWNER, template_version("fca_final_response"))

            # With its final response sent, the fca case closes when the customer confirms.
            state = await engine.act(cid, "confirm_resolution", {"actor": f"customer:{state.customer.customer_id}", "satisfied": True})
            assert (state.status, state.outcome) == ("closed", "resolved")

    lines = logs.getvalue()
    assert '"letter sent"' in lines and cid in lines
    for private in (CUSTOMER["email"], CUSTOMER["name"], "Priya", WORDS[:30], "Refund of 49.00"):
        assert private not in lines, f"a log line carries customer data: {private!r}"


@ON_ONE_SERVER
async def test_a_failing_mail_server_never_stalls_the_case_and_the_resend_is_the_same_message(clock_env, pool):
    async with lettering(clock_env, pool) as (engine, sink, smtp):
        sink.refuse(1)  # the acknowledgement's first attempt gets 451: try again later
        cid = await opened(engine)
        state = await engine.act(cid, "add_note", {"actor": OWNER, "text": "Called the bank while the letter waits"})
        assert state.status == "in_progress" and state.letter("acknowledgement").status in ("sending", "sent")
        [ack] = await sink.wait_for(1, timeout=60)
        assert sink.handler.refused == 1
        assert mid(ack) == message_id(letter_key(cid, "acknowledgement", 1), smtp)
        [contacted] = await eventually(engine, cid, "customer_contacted", "system:letters")
        assert contacted.data["message_id"] == mid(ack)


@ON_ONE_SERVER
async def test_the_fca_holding_response_and_the_cfpb_in_progress_response_go_by_themselves(clock_env, pool):
    async with lettering(clock_env, pool) as (engine, sink, _):
        fca, answered = await opened(engine), await opened(engine)
        cfpb, _ = await engine.open(policy="cfpb", customer={"customer_id": f"c-{uuid.uuid4().hex[:12]}", **CUSTOMER})
        await sink.wait_for(2)  # the fca acknowledgements; cfpb sends none on receipt
        await eventually(engine, fca, "customer_contacted", "system:letters")
        # This one's final response goes (by post) long before the eighth week: no holding response for it.
        await engine.act(answered, "contact_customer", {"actor": OWNER, "channel": "letter", "summary": "We reject it", "letter": "final_response"})

        await clock_env.sleep(timedelta(days=14, minutes=1))
        [progress] = await eventually(engine, cfpb, "customer_contacted", "system:letters")
        assert (progress.data["letter"], progress.data["template"]) == ("initial_response", "cfpb_initial_response")
        [mail] = to(sink, cfpb)
        assert mail["Subject"] == f"Your complaint is in progress (reference {cfpb})"
        state = await engine.state(cfpb)
        assert "first_response" not in {c.name for c in state.clocks}, "the in-progress response is the 15-day response"

        before = next(c for c in (await engine.state(fca)).clocks if c.name == "customer_update")
        await clock_env.sleep(timedelta(days=41))
        contacts = await eventually(engine, fca, "customer_contacted", "system:letters", count=2)
        holding = contacts[-1]
        assert holding.data["letter"] == "holding_response"
        # Day 55 is a London date (the fca calendar): across a clock change it is an hour more or less in UTC.
        received = (await engine.state(fca)).received_at
        assert wall_clock(holding.at) >= wall_clock(received) + timedelta(days=55)
        mail = to(sink, fca)[-1]
        assert mail["Subject"] == f"Your complaint: we need more time (reference {fca})"
        assert "you may now refer it to the Financial Ombudsman Service" in text_of(mail)
        after = next(c for c in (await engine.state(fca)).clocks if c.name == "customer_update")
        assert after.started_at == holding.at and after.occurrence > before.occurrence, "the holding response restarts the update clock"

        # A letter skipped at its time records nothing, and the case's next instant still fires (week 8).
        await clock_env.sleep(timedelta(days=1, minutes=1))
        state = await engine.state(answered)
        assert (state.letter("holding_response").status, state.letter("holding_response").reason) == ("skipped", "not needed: final_response was sent")
        assert len(to(sink, answered)) == 1
        levels = [e.data["level"] for e in await engine.timeline(answered) if e.kind == "escalated" and e.data["clock"] == "resolution"]
        assert levels == [1, 2, 3], "the resolution clock's week 8 fired after the skipped letter's day 55"
