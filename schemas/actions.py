"""Agent actions. Each is both an Update and a Signal of the same name.

ACTIONS maps the public action name to its payload model: the workflow, the
client and the CLI all take names and shapes from here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints, field_validator

from schemas.common import (
    FACTS_MAX,
    ActorId,
    Channel,
    FactName,
    FactValue,
    InputMessage,
    RequestId,
    Text,
    text,
)

PromiseId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# A promise is owed by the owner (None) or by another party, "external:<party>".
OwedBy = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^external:[A-Za-z0-9_. -]{1,64}$")]


class Action(InputMessage):
    actor: ActorId
    request_id: RequestId | None = None


class AcceptOwnership(Action):
    pass


class ContactCustomer(Action):
    channel: Channel
    summary: Text


class AddNote(Action):
    text: Text


class RequestInfo(Action):
    fields: list[FactName] = Field(min_length=1, max_length=20)
    question: Text

    @field_validator("fields")
    @classmethod
    def _distinct(cls, fields: list[str]) -> list[str]:
        if len(set(fields)) != len(fields):
            raise ValueError(f"fields must be distinct (got {fields})")
        return fields


class ProvideInfo(Action):
    facts: dict[FactName, FactValue] = Field(min_length=1, max_length=FACTS_MAX)
    channel: Channel


class MakePromise(Action):
    description: Text
    due_at: AwareDatetime
    owed_by: OwedBy | None = None


class KeepPromise(Action):
    promise_id: PromiseId
    evidence: Text


class RenegotiatePromise(Action):
    promise_id: PromiseId
    new_due_at: AwareDatetime
    reason: Text
    customer_agreed: bool

    @field_validator("customer_agreed")
    @classmethod
    def _customer_must_agree(cls, agreed: bool) -> bool:
        if not agreed:
            raise ValueError(
                "a promise is renegotiated only with the customer's agreement: "
                "agree the new date with them, then send customer_agreed=true"
            )
        return agreed


class ProposeResolution(Action):
    resolution: Text
    root_cause: text(2_000)


class ConfirmResolution(Action):
    satisfied: bool
    comment: Text | None = None
    channel: Channel | None = None


class Withdraw(Action):
    reason: Text


ACTIONS: dict[str, type[Action]] = {
    "accept_ownership": AcceptOwnership,
    "contact_customer": ContactCustomer,
    "add_note": AddNote,
    "request_info": RequestInfo,
    "provide_info": ProvideInfo,
    "make_promise": MakePromise,
    "keep_promise": KeepPromise,
    "renegotiate_promise": RenegotiatePromise,
    "propose_resolution": ProposeResolution,
    "confirm_resolution": ConfirmResolution,
    "withdraw": Withdraw,
}
