"""Cases that turn on a promise to the customer: kept in time, or slipping and escalating live."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from complaint_client import CommandRejected, ComplaintClient
from demo_cases.customers import customer_id
from schemas import CaseOutcome


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
