"""The problem door's messages: one door per (customer, category) turns each new
contact into a case opened, joined or reopened (workflows/problem_door.py).

The door takes a ComplaintIntake (schemas/intake.py) and answers with a DoorResult.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from schemas.common import Category, ComplaintId, Identifier, InputMessage, OutputMessage
from schemas.intake import ComplaintIntake
from schemas.state import CaseState

# opened:   no case held this problem, so the contact's complaint_id became a new case
# joined:   an open case of the same customer and category took the contact (contact_received)
# reopened: that case was closed but within its feedback window: it reopened with the same owner
# existing: the contact's complaint_id is already a case of its own; nothing was changed
DoorOutcome = Literal["opened", "joined", "reopened", "existing"]


class DoorStart(InputMessage):
    """The door workflow's input; continue-as-new carries the case it last routed to."""

    customer_id: Identifier
    category: Category
    current_case: ComplaintId | None = None


class DoorResult(OutputMessage):
    """What the door did with one contact."""

    complaint_id: str  # the case that now holds the contact
    contact_id: str  # the intake's complaint_id (the caller's own reference)
    outcome: DoorOutcome
    # opened: the earlier case of the same problem, closed past its feedback window, this one follows
    related_case: str | None = None
    # The case's accountable owner, when known (opened: once routing has run; existing: not looked up)
    owner: str | None = None
    # opened: the new case's first run
    run_id: str | None = None


# --- activity inputs and outputs ------------------------------------------------


class LatestCaseInput(InputMessage):
    customer_id: str
    category: str


class CaseRef(OutputMessage):
    """A case of the `cases` table, as the door needs it."""

    complaint_id: str
    status: str
    closed_at: datetime | None = None


class DeliverContact(InputMessage):
    """Hand one intake to an existing case as its new_contact."""

    case_id: str
    intake: ComplaintIntake


class Delivery(OutputMessage):
    """joined / reopened: the case took the contact; gone: it can take no more (a new case is due)."""

    outcome: Literal["joined", "reopened", "gone"]
    reason: str | None = None  # gone: why, for the log
    state: CaseState | None = None  # joined / reopened: the case after the contact


class StartCaseInput(InputMessage):
    intake: ComplaintIntake
    # Who is starting it, written in the case's memo: a retried start recognises its own earlier attempt.
    opened_by: str


class CaseStarted(OutputMessage):
    created: bool  # False: a case with this complaint_id already existed
    run_id: str | None = None
