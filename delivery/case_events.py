"""Case events as other systems see them: the public event types and each one's webhook payload (pure).

A subscription (`starter.py webhooks add`) names public types such as
`case.opened`; each maps from one timeline kind of the case (docs/contract.md,
"Event kinds"). Timeline kinds without a public type (notes, rejected
commands, clock pauses, ...) never leave the engine.

A payload carries ids, statuses, numbers and times, never customer data: no
name, email or phone, no fact values, and no free text (summaries, notes,
questions, comments, reasons, resolutions, root causes), which may quote the
customer. Each type sends only the fields listed for it below; a receiver
that needs more reads the case over the HTTP API with its own token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

# timeline kind -> (public type, the fields of the event's data the payload keeps; `name=field` renames one)
_PUBLIC: dict[str, tuple[str, tuple[str, ...]]] = {
    "complaint_received": ("case.opened", ("category", "severity", "received_at", "received_by", "related_case", "facts")),
    "owner_assigned": ("case.assigned", ("owner", "team", "supervisor", "routed_by")),
    "ownership_accepted": ("case.accepted", ("owner",)),
    "ownership_transfer_requested": ("case.transfer_requested", ("from_owner", "to_agent", "accept_by")),
    "ownership_transferred": ("case.transferred", ("from_owner", "to_owner", "promises_inherited", "open_promises", "supervisor")),
    "escalated": ("case.escalated", ("clock", "level", "occurrence", "recipient", "recipient_role", "due_at", "deadline", "overdue")),
    "escalation_cleared": ("escalation.cleared", ("clock", "level", "occurrence")),
    "customer_contacted": ("customer.contacted", ("reminder",)),
    "info_requested": ("info.requested", ("fields",)),
    "info_provided": ("info.provided", ("facts", "still_awaiting", "resumed")),
    "contact_received": ("contact.received", ("contact_id", "facts", "resumed")),
    "promise_made": ("promise.made", ("promise_id", "owed_by", "due_at")),
    "promise_kept": ("promise.kept", ("promise_id", "on_time", "deadline")),
    "promise_renegotiated": ("promise.renegotiated", ("promise_id", "previous_due_at", "new_due_at", "customer_agreed", "renegotiations")),
    "promise_overdue": ("promise.overdue", ("promise_id", "owed_by", "due_at", "deadline")),
    "resolution_proposed": ("resolution.proposed", ()),
    "resolution_confirmed": ("resolution.confirmed", ("open_promises",)),
    "resolution_rejected": ("resolution.rejected", ()),
    "goodwill_offered": ("goodwill.offered", ("goodwill_id", "goodwill_kind=kind", "amount", "currency", "settles_case", "within_authority", "decide_by")),
    "goodwill_decided": ("goodwill.decided", ("goodwill_id", "approved", "amount", "currency", "settles_case")),
    "case_closed": ("case.closed", ("outcome", "promises_kept", "promises_kept_on_time", "promises_total",
                                    "summary_resolution", "goodwill", "feedback_until")),
    "case_reopened": ("case.reopened", ("previous_outcome", "closed_at", "owner")),
    "feedback_recorded": ("feedback.recorded", ("score", "review_by")),
}  # fmt: skip

# Every public type, in a stable order (the CLI lists them when it refuses one).
EVENT_TYPES: tuple[str, ...] = tuple(sorted(public for public, _ in _PUBLIC.values()))


class UnknownEventType(ValueError):
    """A subscription named a type that does not exist; the message lists the valid ones."""


def public_type(kind: str) -> str | None:
    """The public type of a timeline kind, or None when that kind is not sent to other systems."""
    entry = _PUBLIC.get(kind)
    return entry[0] if entry else None


def public_types_of(kinds: Iterable[str]) -> list[str]:
    """The distinct public types of these timeline kinds (what a batch of events may interest subscribers in)."""
    return sorted({t for t in map(public_type, kinds) if t is not None})


def timeline_kinds_for(types: Iterable[str]) -> list[str]:
    """The timeline kinds a subscription to these public types receives."""
    wanted = set(types)
    return sorted(kind for kind, (public, _) in _PUBLIC.items() if public in wanted)


def parse_event_types(text: str) -> list[str]:
    """`case.opened,case.closed` as a sorted list; an empty list or an unknown type raises UnknownEventType."""
    types = sorted({part.strip() for part in text.split(",") if part.strip()})
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown or not types:
        which = f"unknown event type{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}" if unknown else "no event type"
        raise UnknownEventType(f"{which}; valid types are: {', '.join(EVENT_TYPES)}")
    return types


def case_event_delivery_id(subscription_id: int, complaint_id: str, seq: int) -> str:
    """The idempotency key a receiver sees for one event sent to one subscription (its webhook-id)."""
    return f"evt-{subscription_id}-{complaint_id}-{seq}"


def event_payload(
    complaint_id: str, seq: int, kind: str, actor: str, at: datetime, channel: str | None, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The webhook body of one timeline event: Standard Webhooks' `{type, timestamp, data}`.

    `data` has the case's id, the event's seq (a receiver may check that none is
    skipped among the types it asked for), timeline kind, actor (an agent id,
    `customer:<customer_id>` or `system:<name>`), time and channel, then the
    event's own fields listed for its type. Fact values become their names.
    """
    entry = _PUBLIC.get(kind)
    if entry is None:
        raise ValueError(f"timeline kind {kind!r} has no public event type")
    public, fields = entry
    body: dict[str, Any] = {
        "complaint_id": complaint_id,
        "seq": seq,
        "kind": kind,
        "actor": actor,
        "at": at.isoformat(),
    }
    if channel is not None:
        body["channel"] = channel
    for spec in fields:
        name, _, source = spec.partition("=")
        value = data.get(source or name)
        if value is not None:
            body[name] = _names_only(value) if name == "facts" else value
    return {"type": public, "timestamp": at.isoformat(), "data": body}


def _names_only(facts: Any) -> list[str]:
    """A fact's value is the customer's data: only its name leaves the engine."""
    if isinstance(facts, Mapping):
        return sorted(str(name) for name in facts)
    if isinstance(facts, (list, tuple)):
        return sorted(str(name) for name in facts)
    return []
