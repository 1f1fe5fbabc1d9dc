"""open_case: a case's whole opening in one activity task.

A case opens by resolving its deadline policy, choosing its owner and loading
the customer's other cases. As three activities that cost the Temporal server
three activity tasks and two more workflow tasks per case (README,
"Performance"); as one, a single activity task. Each part keeps its own
idempotence (the policy is read from the file loaded at start-up, the owner is
chosen once under the assignment lock, the history is read only), so a retry
of the whole is harmless.
"""

from __future__ import annotations

from typing import Any, Callable

from temporalio import activity

from activities.case_activities import CaseActivities
from activities.policy_activities import PolicyActivities
from schemas.activity_io import AssignOwnerInput, CustomerHistoryInput, OpenCaseInput, OpenedCase
from schemas.policy import ResolvePolicyInput


class OpeningActivities:
    def __init__(self, cases: CaseActivities, policies: PolicyActivities) -> None:
        self.cases = cases
        self.policies = policies

    def all(self) -> list[Callable[..., Any]]:
        """The bound activities, for Worker(activities=...)."""
        return [self.open_case]

    @activity.defn(name="open_case")
    async def open_case(self, inp: OpenCaseInput) -> OpenedCase:
        """The policy first (routing records its name), then the owner, then the customer's history.

        One part after the other, never two pooled connections at once: the pool
        is sized to the worker's concurrent activities, one connection each.
        An unknown policy fails at once, non-retryable (type UnknownPolicy).
        """
        policy = await self.policies.resolve_policy(
            ResolvePolicyInput(
                complaint_id=inp.complaint_id,
                policy=inp.policy,
                severity=inp.severity,
                received_at=inp.received_at,
            )
        )
        assignment = await self.cases.assign_owner(
            AssignOwnerInput(**inp.model_dump(exclude={"policy"}), policy=policy.name)
        )
        history = await self.cases.load_customer_history(
            CustomerHistoryInput(complaint_id=inp.complaint_id, customer_id=inp.customer_id)
        )
        return OpenedCase(policy=policy, assignment=assignment, customer_history=history)
