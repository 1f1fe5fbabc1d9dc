"""The typed client a support system imports: start cases, act on them, read them."""

from complaint_client.client import CaseSummary, CommandRejected, ComplaintClient, StartResult

__all__ = ["CaseSummary", "CommandRejected", "ComplaintClient", "StartResult"]
