"""Every message shape of the engine, as pydantic v2 models (plain JSON on the wire)."""

from schemas.actions import ACTIONS, Action
from schemas.errors import describe_validation_error
from schemas.intake import ComplaintIntake, Customer
from schemas.roster import Agent, AgentRef, Assignment, Roster
from schemas.state import CaseOutcome, CaseState, TimelineEvent

__all__ = [
    "ACTIONS",
    "Action",
    "Agent",
    "AgentRef",
    "Assignment",
    "CaseOutcome",
    "CaseState",
    "ComplaintIntake",
    "Customer",
    "Roster",
    "TimelineEvent",
    "describe_validation_error",
]
