"""The identity check a case records for a start or a signal (activities/identity_activities.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from schemas.common import OutputMessage

IdentityMode = Literal["signed", "trusted-callers"]


class IdentityCheck(OutputMessage):
    """What an assertion must prove: this actor (None for a start), this action on this case, this payload, now."""

    token: str | None
    workflow_id: str
    action: str
    payload: Any
    actor: str | None
    now: datetime


class IdentityVerdict(OutputMessage):
    """The worker's answer, kept in the history: its mode, and who vouched for the actor or why nobody did."""

    mode: IdentityMode
    verified_by: dict[str, str] | None = None
    refusal: str | None = None
