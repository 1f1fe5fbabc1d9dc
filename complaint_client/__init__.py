"""The typed client a support system imports: start cases, act on them, read them."""

from complaint_client.client import (
    CaseSummary,
    CommandRejected,
    ComplaintClient,
    IncompleteTimeline,
    StartResult,
    join_timeline,
    stored_events,
)

__all__ = [
    "CaseSummary",
    "CommandRejected",
    "ComplaintClient",
    "IncompleteTimeline",
    "StartResult",
    "join_timeline",
    "stored_events",
]
