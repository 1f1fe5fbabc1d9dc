"""The demo's cases, as a support floor would work them.

Each scenario drives one complaint through the typed client and returns its
outcome; the demo prints them and the integration tests assert on them.
The agents are those of roster/demo.json.
"""

from __future__ import annotations

import asyncio

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from complaint_client import CommandRejected, ComplaintClient
from schemas import CaseOutcome


def customer_id(base: str, complaint_id: str) -> str:
    """A customer of this run only: with one case per problem, a customer and category seen in an
    earlier run (within its feedback window) would reopen that run's case instead of opening one."""
    return f"{base}-{complaint_id}"[:64]


@dataclass(frozen=True)
class Scenario:
    title: str
    story: str
    run: Callable[[ComplaintClient, str], Awaitable[CaseOutcome]]


async def resolved_at_first_contact(engine: ComplaintClient, complaint_id: str) -> CaseOutcome:
    """A customer phones about a late fee; whoever takes the call owns it and fixes it on the call."""
    started = await engine.start(
        {
            "complaint_id": complaint_id,
            "customer": {"customer_id": customer_id("CU-1042", complaint_id), "name": "Tom Okoro", "phone": "+44 20 7946 0958", "segment": "retail"},
            "channel": "phone",
            "category": "billing",
            "severity": "medium",
            "summary": "Charged a late-payment fee although I paid on the due date",
            "details": "Paid the October invoice by bank transfer on the 15th; the November bill adds a 12.00 late fee.",
            "received_by": "c.nguyen",
            "facts": {"invoice_id": "INV-2026-10-5531", "payment_date": "2026-10-15"},
        }
    )
    owner = started.owner or "c.nguyen"
    await engine.act(complaint_id, "accept_ownership", {"actor": owner})
    await engine.act(
        complaint_id,
        "contact_customer",
        {"actor": owner, "channel": "phone", "summary": "Listened, checked the ledger with the customer on the line"},
    )
    await engine.act(
        complaint_id,
        "propose_resolution",
        {
            "actor": owner,
            "resolution": "Late fee of 12.00 reversed during the call; the November bill is reissued without it",
            "root_cause": "The payment arrived on the due date but posted the next business day; the fee rule used the posting date",
        },
    )
    await engine.act(
        complaint_id,
        "confirm_resolution",
        {"actor": owner, "satisfied": True, "channel": "phone", "comment": "Customer thanked us before hanging up"},
    )
    return await engine.outcome(complaint_id)


async def information_and_a_kept_promise(engine: ComplaintClient, complaint_id: str) -> CaseOutcome:
    """The ping-pong case: shop and bank each said the pending charge was the other's job.

    The owner takes it on, asks only for what is not already known, promises to
    get the charge released, keeps that promise, and the customer confirms.
    """
    customer = f"customer:{customer_id('CU-2210', complaint_id)}"
    started = await engine.start(
        {
            "complaint_id": complaint_id,
            "customer": {"customer_id": customer_id("CU-2210", complaint_id), "name": "Grace Liu", "email": "grace.liu@example.org"},
            "channel": "web",
            "category": "payments",
            "severity": "high",
            "summary": "Order never fulfilled but the pending charge is still on my card",
            "details": (
                "Order was cancelled for stock, yet 89.99 is still pending. Your team told me to ask my bank; "
                "my bank told me to ask you. I feel like a ping-pong ball."
            ),
            "facts": {"order_id": "ORD-88412", "amount": "89.99"},
        }
    )
    owner = started.owner
    if owner is None:
        raise RuntimeError(f"case {complaint_id} has no owner yet: is the roster loaded?")
    await engine.act(complaint_id, "accept_ownership", {"actor": owner})
    try:
        # The customer already gave the order number: the engine refuses to ask again.
        await engine.act(
            complaint_id,
            "request_info",
            {"actor": owner, "fields": ["order_id"], "question": "Could you tell me your order number?"},
        )
    except CommandRejected as refused:
        print(f"  (never ask twice) request_info refused: {refused.message}")
    await engine.act(
        complaint_id,
        "request_info",
        {
            "actor": owner,
            "fields": ["card_last4", "bank_name"],
            "question": "Which card (last four digits) and bank show the pending charge?",
        },
    )
    await engine.act(
        complaint_id,
        "provide_info",
        {"actor": customer, "facts": {"card_last4": "4417", "bank_name": "Northbank"}, "channel": "email"},
    )
    due = datetime.now(timezone.utc) + timedelta(days=2)
    state = await engine.act(
        complaint_id,
        "make_promise",
        {
            "actor": owner,
            "description": "Have our payment processor void the 89.99 authorisation and email you the confirmation",
            "due_at": due.isoformat(),
        },
    )
    promise_id = state.promises[-1].promise_id
    await engine.act(
        complaint_id,
        "add_note",
        {"actor": "s.lindqvist", "text": "Supervisor: processor escalation desk confirms voids within the hour"},
    )
    await engine.act(
        complaint_id,
        "keep_promise",
        {"actor": owner, "promise_id": promise_id, "evidence": "Processor void reference VX-5521; confirmation emailed"},
    )
    await engine.act(
        complaint_id,
        "propose_resolution",
        {
            "actor": owner,
            "resolution": "The 89.99 authorisation is voided; Northbank will drop the pending charge within 24 hours",
            "root_cause": "Stock cancellation did not trigger an authorisation void in the order system",
        },
    )
    await engine.act(
        complaint_id,
        "confirm_resolution",
        {"actor": customer, "satisfied": True, "comment": "Finally someone owned it. Thank you."},
    )
    return await engine.outcome(complaint_id)


async def second_resolution_accepted(engine: ComplaintClient, complaint_id: str) -> CaseOutcome:
    """A leaking coffee machine: the customer rejects the first fix and accepts the second."""
    customer = f"customer:{customer_id('CU-3307', complaint_id)}"
    started = await engine.start(
        {
            "complaint_id": complaint_id,
            "customer": {"customer_id": customer_id("CU-3307", complaint_id), "name": "Amara Haddad", "email": "amara.h@example.net"},
            "channel": "chat",
            "category": "product",
            "severity": "medium",
            "summary": "New coffee machine leaks water under the drip tray",
            "details": "Bought three weeks ago; leaks a puddle every morning.",
            "facts": {"order_id": "ORD-77120", "model": "BrewMaster 300"},
        }
    )
    owner = started.owner
    if owner is None:
        raise RuntimeError(f"case {complaint_id} has no owner yet: is the roster loaded?")
    await engine.act(complaint_id, "accept_ownership", {"actor": owner})
    await engine.act(
        complaint_id,
        "contact_customer",
        {"actor": owner, "channel": "chat", "summary": "Walked through the seal check; the seal looks worn"},
    )
    await engine.act(
        complaint_id,
        "propose_resolution",
        {
            "actor": owner,
            "resolution": "Replacement seal kit sent by next-day post with fitting instructions",
            "root_cause": "Worn boiler seal",
        },
    )
    await engine.act(
        complaint_id,
        "confirm_resolution",
        {"actor": customer, "satisfied": False, "comment": "Fitted the new seal; it still leaks every morning"},
    )
    await engine.act(
        complaint_id,
        "add_note",
        {"actor": owner, "text": "Quality team: serial range B-2291 has a faulty boiler gasket; seal kits do not help"},
    )
    await engine.act(
        complaint_id,
        "propose_resolution",
        {
            "actor": owner,
            "resolution": "A new machine from an unaffected batch delivered and the faulty one collected, at no cost",
            "root_cause": "Faulty boiler gasket in manufacturing batch B-2291 (reported to quality)",
        },
    )
    await engine.act(
        complaint_id,
        "confirm_resolution",
        {"actor": customer, "satisfied": True, "comment": "New machine is dry. Thanks for not giving up."},
    )
    return await engine.outcome(complaint_id)


async def promise_escalated_live(engine: ComplaintClient, complaint_id: str) -> CaseOutcome:
    """A courier pick-up promised within seconds (the demo policy) slips: the owner is warned,
    then the supervisor told, at the instants the durable timers fire; keeping it clears the level."""
    await engine.start(
        {
            "complaint_id": complaint_id,
            "customer": {"customer_id": customer_id("CU-3318", complaint_id), "name": "Ines Duarte", "email": "ines.duarte@example.com"},
            "channel": "chat",
            "category": "delivery",
            "severity": "high",
            "summary": "Wrong size delivered twice; nobody came to collect the first parcel",
            "received_by": "j.moreau",
            "policy": "demo",
            "facts": {"order_id": "ORD-88231"},
        }
    )
    owner = "j.moreau"
    await engine.act(complaint_id, "accept_ownership", {"actor": owner})
    await engine.act(
        complaint_id,
        "contact_customer",
        {"actor": owner, "channel": "chat", "summary": "Apologised; booking a courier to collect both parcels"},
    )
    due = datetime.now(timezone.utc) + timedelta(seconds=8)
    await engine.act(
        complaint_id,
        "make_promise",
        {"actor": owner, "description": "Courier collects both parcels", "due_at": due.isoformat()},
    )
    # Nobody keeps it in time: warned 5 s before it is due, the supervisor told when it is overdue.
    for _ in range(200):
        state = await engine.state(complaint_id)
        if state.promises[0].status == "overdue":
            break
        await asyncio.sleep(0.1)
    await engine.act(
        complaint_id,
        "keep_promise",
        {"actor": owner, "promise_id": "P1", "evidence": "Courier collected both parcels, late (ref CR-5521)"},
    )
    await engine.act(
        complaint_id,
        "propose_resolution",
        {
            "actor": owner,
            "resolution": "Both parcels collected; the right size ships today with next-day delivery",
            "root_cause": "Size mapping for the new supplier's SKUs was off by one (fixed in the catalogue)",
        },
    )
    await engine.act(
        complaint_id,
        "confirm_resolution",
        {"actor": f"customer:{customer_id('CU-3318', complaint_id)}", "satisfied": True, "comment": "Got the right one. Took a while."},
    )
    return await engine.outcome(complaint_id)


async def transferred_with_a_handoff(engine: ComplaintClient, complaint_id: str) -> CaseOutcome:
    """A refund dispute taken by the wrong desk: the first owner hands it to the refunds specialist
    with a note, stays accountable until he accepts, and he carries on without asking again."""
    customer = f"customer:{customer_id('CU-4471', complaint_id)}"
    await engine.start(
        {
            "complaint_id": complaint_id,
            "customer": {"customer_id": customer_id("CU-4471", complaint_id), "name": "Kofi Asante", "email": "kofi.m@example.com"},
            "channel": "email",
            "category": "payments",
            "severity": "high",
            "summary": "Refund for a returned sofa never arrived, six weeks on",
            "details": "Returned the sofa on 2 October (collection ref COL-7781); the 649.00 refund has not arrived.",
            "received_by": "a.patel",
            "facts": {"order_id": "ORD-60219", "collection_ref": "COL-7781", "amount": "649.00"},
        }
    )
    first, second = "a.patel", "d.mensah"
    await engine.act(complaint_id, "accept_ownership", {"actor": first})
    await engine.act(
        complaint_id,
        "contact_customer",
        {"actor": first, "channel": "email", "summary": "Apologised; the refunds desk will call back today"},
    )
    due = datetime.now(timezone.utc) + timedelta(days=1)
    await engine.act(
        complaint_id,
        "make_promise",
        {"actor": first, "description": "Call the customer back with the refund status", "due_at": due.isoformat()},
    )
    await engine.act(
        complaint_id,
        "transfer_ownership",
        {
            "actor": first,
            "to_agent": second,
            "handoff_note": (
                "Sofa returned 2 Oct (COL-7781), warehouse scan confirms receipt, refund of 649.00 never raised. "
                "I promised a call back today (P1). Customer prefers email; do not ask for the order again."
            ),
        },
    )
    # Until he accepts, the first owner is still accountable; his acceptance moves the case, promise included.
    state = await engine.act(complaint_id, "accept_ownership", {"actor": second})
    print(f"  {second} accepted; reads first: {state.handoff.note if state.handoff else '(no handoff)'}")
    await engine.act(
        complaint_id,
        "contact_customer",
        {"actor": second, "channel": "phone", "summary": "Called back: refund raised now, apologised for the wait"},
    )
    await engine.act(
        complaint_id,
        "keep_promise",
        {"actor": second, "promise_id": "P1", "evidence": "Called the customer at 14:10; refund RF-2291 raised"},
    )
    # 75.00 is above his authority (50.00): it waits for the supervisor, whose limit covers it.
    state = await engine.act(
        complaint_id,
        "offer_goodwill",
        {"actor": second, "kind": "credit", "amount": "75.00", "currency": "GBP", "description": "Credit for six weeks of chasing"},
    )
    await engine.act(
        complaint_id,
        "approve_goodwill",
        {"actor": "s.lindqvist", "goodwill_id": state.goodwill[-1].goodwill_id, "approve": True, "comment": "Deserved"},
    )
    await engine.act(
        complaint_id,
        "propose_resolution",
        {
            "actor": second,
            "resolution": "Refund of 649.00 sent (RF-2291, 2-3 days) and 75.00 credit applied to the account",
            "root_cause": "Returns received by the warehouse were not linked to refunds when the collection ref was typed by hand",
        },
    )
    await engine.act(complaint_id, "confirm_resolution", {"actor": customer, "satisfied": True, "comment": "Refund is pending at my bank."})
    await engine.act(complaint_id, "record_feedback", {"actor": customer, "score": 5, "comment": "One person sorted it"})
    return await engine.outcome(complaint_id)


async def joined_from_a_second_channel(engine: ComplaintClient, complaint_id: str) -> CaseOutcome:
    """The customer writes in, then phones an hour later: the phone system's new complaint joins the
    open case instead of starting a second one, and what she says on the phone is never asked again."""
    customer = customer_id("CU-5120", complaint_id)
    intake = {
        "customer": {"customer_id": customer, "name": "Marta Kowalska", "email": "marta.k@example.com"},
        "category": "delivery",
        "severity": "medium",
        "received_by": "h.tanaka",
    }
    first = await engine.start(
        {
            **intake,
            "complaint_id": complaint_id,
            "channel": "web",
            "summary": "Parcel marked delivered but never arrived",
            "facts": {"order_id": "ORD-91833", "tracking_id": "TRK-44120"},
        }
    )
    owner = first.owner or "h.tanaka"
    await engine.act(complaint_id, "accept_ownership", {"actor": owner})
    # The phone system knows nothing of the web form: it opens its own complaint, which joins this case.
    second = await engine.start(
        {
            **intake,
            "complaint_id": f"{complaint_id}-PH",
            "channel": "phone",
            "summary": "Calling again about the parcel that never came",
            "facts": {"order_id": "ORD-91833", "safe_place": "none given; the photo shows another door"},
        }
    )
    print(f"  second contact {second.contact_id} via phone: {second.outcome} case {second.complaint_id} (owner {second.owner})")
    try:
        await engine.act(
            complaint_id,
            "request_info",
            {"actor": owner, "fields": ["safe_place"], "question": "Did you name a safe place for the parcel?"},
        )
    except CommandRejected as refused:
        print(f"  (never ask twice) request_info refused: {refused.message}")
    await engine.act(
        complaint_id,
        "contact_customer",
        {"actor": owner, "channel": "phone", "summary": "Courier photo shows the wrong door; reshipping today"},
    )
    await engine.act(
        complaint_id,
        "propose_resolution",
        {
            "actor": owner,
            "resolution": "Replacement shipped by tracked next-day delivery; the courier is investigating the misdelivery",
            "root_cause": "Courier delivered to the neighbouring house number (photo evidence)",
        },
    )
    await engine.act(complaint_id, "confirm_resolution", {"actor": f"customer:{customer}", "satisfied": True})
    return await engine.outcome(complaint_id)


SCENARIOS: list[Scenario] = [
    Scenario(
        "Resolved at first contact",
        "A customer phones about a late fee; the agent who took the call owns it and fixes it there and then.",
        resolved_at_first_contact,
    ),
    Scenario(
        "Information requested, a promise made and kept, then confirmed",
        "Shop and bank each said the pending charge was the other's job; one owner takes it end to end.",
        information_and_a_kept_promise,
    ),
    Scenario(
        "First resolution rejected, second accepted",
        "A leaking coffee machine: a seal kit does not fix it, a replacement machine does.",
        second_resolution_accepted,
    ),
    Scenario(
        "A promise slips and escalates live",
        "On the demo policy (seconds): the owner is warned before the promise is due, the supervisor when it is overdue.",
        promise_escalated_live,
    ),
    Scenario(
        "Transferred with a handoff, goodwill approved",
        "The first owner hands a refund dispute to the specialist with a note; his goodwill above his limit waits for the supervisor.",
        transferred_with_a_handoff,
    ),
    Scenario(
        "A second contact joins the open case",
        "The customer writes in, then phones: the phone system's complaint joins the same case, with what she said.",
        joined_from_a_second_channel,
    ),
]
