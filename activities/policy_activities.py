"""The deadline policy a case copies when it opens (a part of open_case, activities/opening_activities.py).

The PolicyBook is loaded (and checked) once when the worker starts, so every
case opened by one worker process resolves against the same file; a case keeps
what it resolved, so changing the file later never changes an open case.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.policies import PolicyBook, UnknownPolicy
from schemas.policy import ResolvedPolicy, ResolvePolicyInput


def _logger(**context: Any) -> structlog.typing.FilteringBoundLogger:
    if activity.in_activity():
        info = activity.info()
        context.update(activity=info.activity_type, attempt=info.attempt, workflow_id=info.workflow_id)
    return structlog.get_logger().bind(**context)


class PolicyActivities:
    def __init__(self, book: PolicyBook) -> None:
        self.book = book

    async def resolve_policy(self, inp: ResolvePolicyInput) -> ResolvedPolicy:
        """The named policy (or the severity's default) with its clocks for the case's severity."""
        log = _logger(complaint_id=inp.complaint_id, policy=inp.policy, severity=inp.severity)
        try:
            resolved = self.book.resolve(inp.policy, inp.severity)
        except UnknownPolicy as err:
            log.warning("unknown policy", error=str(err))
            # Retrying cannot help: the worker's policies are fixed until it restarts.
            raise ApplicationError(str(err), type="UnknownPolicy", non_retryable=True) from err
        log.info(
            "policy resolved",
            policy=resolved.name,
            requested=inp.policy,
            calendar=resolved.calendar.name,
            clocks={name: str(spec.due) for name, spec in resolved.clocks.items()},
        )
        return resolved
