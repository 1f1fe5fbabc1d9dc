"""Agent actions. Each is both an Update and a Signal of the same name.

ACTIONS maps the public action name to its payload model: the workflow, the
client and the CLI all take names and shapes from here.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from schemas.common import (
    FACTS_MAX,
    ActorId,
    AgentId,
    ComplaintId,
    Channel,
    FactName,
    FactValue,
    Identifier,
    InputMessage,
    Moment,
    RequestId,
    Text,
    matching,
    shown,
    text,
)

PromiseId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# A promise is owed by the owner (None) or by another party, "external:<party>".
OwedBy = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    matching(
        re.compile(r"external:[A-Za-z0-9_. -]{1,64}"),
        "owed_by is 'external:<party>' (1 to 64 letters, digits, spaces, '.', '_' or '-'); leave it out for the owner",
    ),
]


class Action(InputMessage):
    actor: ActorId
    request_id: RequestId | None = None


class AcceptOwnership(Action):
    pass


class ContactCustomer(Action):
    """With `letter`, the contact sends one of the policy's letters (docs/lifecycle.md, "Letters"): `summary` is
    the owner's words, inserted into it; channel email has the engine email it, channel letter records that the
    owner posted it."""

    channel: Channel
    summary: Text
    letter: Identifier | None = None


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
    due_at: Moment
    owed_by: OwedBy | None = None


class KeepPromise(Action):
    promise_id: PromiseId
    evidence: Text


class RenegotiatePromise(Action):
    promise_id: PromiseId
    new_due_at: Moment
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


# A handoff note is what the next owner reads first: a real summary, not "see above".
HANDOFF_NOTE_MIN_CHARS = 30
HANDOFF_NOTE_MIN_WORDS = 5


class TransferOwnership(Action):
    to_agent: AgentId
    handoff_note: text(4_000)

    @field_validator("handoff_note")
    @classmethod
    def _meaningful(cls, note: str) -> str:
        words = re.findall(r"[A-Za-z0-9]+", note)
        if len(note) < HANDOFF_NOTE_MIN_CHARS or len(words) < HANDOFF_NOTE_MIN_WORDS:
            raise ValueError(
                "the handoff note is what the next owner reads first, so the customer never repeats "
                "themselves: summarise the problem, what was done and what is still owed "
                f"(at least {HANDOFF_NOTE_MIN_WORDS} words and {HANDOFF_NOTE_MIN_CHARS} characters; got {shown(note, 80)})"
            )
        return note


GoodwillKind = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True),
    matching(
        re.compile(r"[a-z][a-z0-9_]{0,39}"),
        "a goodwill kind is one word of at most 40 letters, digits or '_', such as refund, credit or voucher",
    ),
]
GoodwillId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("1000000000"), decimal_places=2)]
Currency = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True),
    matching(re.compile(r"[A-Z]{3}"), "a currency is a three-letter ISO 4217 code such as GBP, EUR or USD"),
]


class OfferGoodwill(Action):
    """A goodwill gesture (refund, credit, voucher, ...). settles_case: the complaint cannot be
    resolved, and this gesture closes it (outcome goodwill) once granted and every promise is kept."""

    kind: GoodwillKind
    amount: Amount | None = None
    currency: Currency | None = None
    description: Text
    settles_case: bool = False
    root_cause: text(2_000) | None = None

    @model_validator(mode="after")
    def _settling_needs_root_cause(self) -> "OfferGoodwill":
        if self.settles_case and not self.root_cause:
            raise ValueError(
                "a gesture that settles the case closes it, and a case closes only with its root cause: "
                "give root_cause"
            )
        if self.currency is not None and self.amount is None:
            raise ValueError("currency is given without an amount")
        return self


class ApproveGoodwill(Action):
    goodwill_id: GoodwillId
    approve: bool
    comment: Text | None = None


class RecordFeedback(Action):
    score: int = Field(ge=1, le=5)
    comment: Text | None = None


class NewContact(Action):
    """The customer got in touch again about the same problem, through any channel or system.

    contact_id: the reference the other system gave the contact (its own complaint id, say).
    """

    channel: Channel
    summary: Text
    facts: dict[FactName, FactValue] = Field(default_factory=dict, max_length=FACTS_MAX)
    contact_id: ComplaintId | None = None


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
    "transfer_ownership": TransferOwnership,
    "offer_goodwill": OfferGoodwill,
    "approve_goodwill": ApproveGoodwill,
    "record_feedback": RecordFeedback,
    "new_contact": NewContact,
}
