"""Who is acting, proven (COMPLAINTS_IDENTITY=signed) or taken as written (trusted-callers), for one case.

The case learns its mode at its start, from the check_identity local activity, and keeps it for its
whole life (a continued run carries it): a worker whose setting changed later replays the case as it ran.
Every verdict, a start's, an update's or a signal's, comes from that local activity, outside the sandbox
(cryptography's native code must not run inside it), and is in the history: a replay reads it back,
whatever keys the replaying worker trusts by then. A refusal names the check that failed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from identity.assertion import ASSERTION_HEADER, START_ACTION, Assertion
    from schemas.identity import IdentityCheck, IdentityMode, IdentityVerdict
    from workflows.rules import Rejection

_CHECK_TIMEOUT = timedelta(seconds=5)


async def verdict_on(assertion: Assertion, action: str, payload: Any, actor: str | None) -> IdentityVerdict:
    """The check_identity local activity's verdict on one message to this workflow (its mode, and a refusal or who vouched)."""
    return await workflow.execute_local_activity(
        "check_identity",
        IdentityCheck(
            token=assertion.token, workflow_id=workflow.info().workflow_id, action=action,
            payload=payload, actor=actor, now=workflow.now(),
        ),  # fmt: skip
        result_type=IdentityVerdict,
        start_to_close_timeout=_CHECK_TIMEOUT,
    )


class CaseIdentity:
    def __init__(self, mode: IdentityMode | None = None) -> None:
        self.mode: IdentityMode | None = mode
        self.start_assertion = Assertion(None)

    async def check_start(self, intake: Any) -> dict[str, str] | None:
        """Learn the case's mode; in signed mode the start's assertion must hold, or the case fails as InvalidIntake."""
        verdict = await verdict_on(self.start_assertion, START_ACTION, intake, None)
        self.mode = verdict.mode
        if verdict.refusal is not None:
            raise ApplicationError(
                f"invalid complaint intake: the actor assertion was refused ({verdict.refusal})",
                type="InvalidIntake",
                non_retryable=True,
            )
        return verdict.verified_by

    async def check_action(self, name: str, payload: Any, actor: str, assertion: Assertion) -> dict[str, str] | None:
        """Who vouched for an action's actor (None in trusted-callers mode), or Rejection NotAllowed."""
        await workflow.wait_condition(lambda: self.mode is not None)
        if self.mode != "signed":
            return None
        verdict = await verdict_on(assertion, name, payload, actor)
        if verdict.refusal is not None:
            raise Rejection("NotAllowed", f"{name}: the actor assertion was refused ({verdict.refusal})")
        return verdict.verified_by

    def require_assertion(self, name: str, assertion: Assertion) -> None:
        """An update's validator refuses, before it is recorded, what cannot be signed: no assertion at all."""
        if self.mode == "signed" and not assertion.token:
            raise Rejection("NotAllowed", f"{name}: the actor assertion was refused (no assertion: the {ASSERTION_HEADER} header is missing)")
