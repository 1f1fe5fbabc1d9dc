"""ComplaintIntake: the input that starts a case (the workflow's argument)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from schemas.common import (
    DETAILS_MAX,
    FACTS_MAX,
    AgentId,
    Category,
    Channel,
    ComplaintId,
    FactName,
    FactValue,
    Identifier,
    InputMessage,
    Moment,
    Severity,
    Summary,
    text,
)

# A deadline policy of policies/policies.toml (shipped: standard, fca, cfpb, demo);
# a case without one gets the default for its severity. An unknown name fails the
# case at intake with InvalidIntake, listing the known ones.
PolicyName = Identifier


class Customer(InputMessage):
    customer_id: Identifier
    name: text(200)
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32, pattern=r"^\+?[0-9 ()./-]{3,31}$")] | None = None
    segment: text(64) | None = None


class ComplaintIntake(InputMessage):
    complaint_id: ComplaintId
    customer: Customer
    channel: Channel
    category: Category
    severity: Severity
    summary: Summary
    details: Annotated[str, StringConstraints(max_length=DETAILS_MAX)] = ""
    received_at: Moment | None = None
    received_by: AgentId | None = None
    policy: PolicyName | None = None
    facts: dict[FactName, FactValue] = Field(default_factory=dict)
    # The earlier case about the same problem, closed before this contact (set by the problem door).
    related_case: ComplaintId | None = None

    @field_validator("facts")
    @classmethod
    def _not_too_many_facts(cls, facts: dict) -> dict:
        if len(facts) > FACTS_MAX:
            raise ValueError(f"at most {FACTS_MAX} facts (got {len(facts)})")
        return facts
