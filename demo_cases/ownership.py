"""Cases that stay with one owner: handed over with a note, or reached again through a second channel."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from complaint_client import CommandRejected, ComplaintClient
from demo_cases.customers import customer_id
from schemas import CaseOutcome


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
