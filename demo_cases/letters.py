"""A case under the FCA's complaint rules (the fca policy): acknowledged in writing, closed by a final response."""

from __future__ import annotations

from complaint_client import ComplaintClient
from demo_cases.customers import customer_id
from schemas import CaseOutcome


async def answered_in_writing(engine: ComplaintClient, complaint_id: str) -> CaseOutcome:
    """The engine emails the acknowledgement on receipt (DISP 1.6.1R); the owner posts the final response,
    with the Financial Ombudsman Service's referral rights (DISP 1.6.2R), and only then does the case close."""
    customer = f"customer:{customer_id('CU-5120', complaint_id)}"
    started = await engine.start(
        {
            "complaint_id": complaint_id,
            "customer": {"customer_id": customer_id("CU-5120", complaint_id), "name": "Eleanor Price", "email": "e.price@example.co.uk"},
            "channel": "email",
            "category": "billing",
            "severity": "high",
            "summary": "Direct debit taken twice for my November premium",
            "details": "Two collections of 48.20 on 1 November; the bank says both were requested by you.",
            "received_by": "a.patel",
            "policy": "fca",
            "facts": {"policy_number": "HP-774-2190", "collection_date": "2026-11-01"},
        }
    )
    owner = started.owner or "a.patel"
    await engine.act(complaint_id, "accept_ownership", {"actor": owner})
    await engine.act(
        complaint_id,
        "propose_resolution",
        {
            "actor": owner,
            "resolution": "The second collection of 48.20 is refunded to your account within three working days.",
            "root_cause": "A retried collection run re-submitted the mandates it had already collected",
        },
    )
    await engine.act(complaint_id, "confirm_resolution", {"actor": customer, "satisfied": True, "channel": "email"})
    # Confirmed, but an fca case closes only once its final response or summary communication was sent.
    await engine.act(
        complaint_id,
        "contact_customer",
        {"actor": owner, "channel": "letter", "letter": "final_response",
         "summary": "I am sorry that we took your premium twice. The refund is on its way."},  # fmt: skip
    )
    return await engine.outcome(complaint_id)
