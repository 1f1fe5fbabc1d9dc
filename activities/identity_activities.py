"""check_identity: the verdict on an actor assertion (a start's, an update's or a signal's), by the keys
this worker trusts now.

A local activity, so the verdict is in the history: a replay reads it back, whatever keys the replaying
worker trusts by then (a key added, rotated or revoked since). It also keeps cryptography's native code
out of the workflow sandbox.
"""

from __future__ import annotations

from typing import Callable

from temporalio import activity

from identity.assertion import AssertionRefused, verify
from identity.modes import WorkerIdentity
from schemas.identity import IdentityCheck, IdentityVerdict


class IdentityActivities:
    def __init__(self, identity: WorkerIdentity) -> None:
        self._identity = identity

    @activity.defn(name="check_identity")
    async def check_identity(self, check: IdentityCheck) -> IdentityVerdict:
        if self._identity.mode != "signed":
            return IdentityVerdict(mode=self._identity.mode)
        try:
            verified = verify(
                check.token, self._identity.trusted, workflow_id=check.workflow_id, action=check.action,
                payload=check.payload, now=check.now, actor=check.actor,
            )  # fmt: skip
        except AssertionRefused as refused:
            return IdentityVerdict(mode="signed", refusal=str(refused))
        return IdentityVerdict(mode="signed", verified_by=verified.as_record())

    def all(self) -> list[Callable]:
        return [self.check_identity]
