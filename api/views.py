"""What a customer sees of their own case: no internal notes, handoffs, staff or other cases."""

from __future__ import annotations

from typing import Any

from schemas import CaseState, TimelineEvent

# The parts of a case's state that are the support floor's, not the customer's.
_INTERNAL_STATE = {"handoff", "customer_history", "supervisor", "manager", "pending_owner", "transfers"}
# Timeline events a customer never sees: notes and handoffs between staff, refused commands, escalations.
_INTERNAL_EVENTS = {
    "note_added", "command_rejected", "escalated", "escalation_cleared", "ownership_transfer_requested", "policy_applied",
}  # fmt: skip


def customer_state(state: CaseState) -> dict[str, Any]:
    return state.model_dump(mode="json", exclude=_INTERNAL_STATE)


def customer_timeline(events: list[TimelineEvent]) -> list[dict[str, Any]]:
    """What happened and when, without the events' data (which may quote staff or other parties)."""
    return [
        event.model_dump(mode="json", exclude={"data"}) for event in events if event.kind not in _INTERNAL_EVENTS
    ]
