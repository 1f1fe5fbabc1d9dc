"""The typed client a support system imports: start cases, act on them, read them."""

from complaint_client.client import ComplaintClient, StartResult
from complaint_client.errors import CommandRejected, IncompleteTimeline
from complaint_client.fleet import CaseSummary
from complaint_client.timeline import join_timeline, stored_events

__all__ = [
    "CaseSummary",
    "CommandRejected",
    "ComplaintClient",
    "IncompleteTimeline",
    "StartResult",
    "join_timeline",
    "stored_events",
]
