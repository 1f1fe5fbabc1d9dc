"""What the client raises: an action the engine refused, a timeline it cannot complete."""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError


class IncompleteTimeline(Exception):
    """The complete timeline needs PostgreSQL: the case continued as new and its workflow holds only the recent events."""


class CommandRejected(Exception):
    """The engine refused an action: kind is InvalidCommand or NotAllowed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def rejection(error: WorkflowUpdateFailedError) -> Exception:
    """The case's refusal as CommandRejected; any other failure of the update as it came."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return CommandRejected(cause.type or "InvalidCommand", cause.message)
    return error
