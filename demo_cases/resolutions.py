"""Cases that turn on the resolution: fixed on the first call, or accepted at the second attempt."""

from __future__ import annotations

from complaint_client import ComplaintClient
from demo_cases.customers import customer_id
from schemas import CaseOutcome


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
