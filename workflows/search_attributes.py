"""The fleet-query search attributes (docs/contract.md), kept current by the workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

if TYPE_CHECKING:
    from schemas.state import CaseState

STATUS = SearchAttributeKey.for_keyword("ComplaintStatus")
OWNER = SearchAttributeKey.for_keyword("ComplaintOwner")
SEVERITY = SearchAttributeKey.for_keyword("ComplaintSeverity")
CATEGORY = SearchAttributeKey.for_keyword("ComplaintCategory")
CUSTOMER = SearchAttributeKey.for_keyword("CustomerId")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")

ALL = (STATUS, OWNER, SEVERITY, CATEGORY, CUSTOMER, ESCALATION_LEVEL, NEXT_DEADLINE)

# Names of the types as `temporal server start-dev --search-attribute NAME=TYPE` spells them.
CLI_TYPE_NAMES = {
    "KEYWORD": "Keyword",
    "INT": "Int",
    "DATETIME": "Datetime",
}


def dev_server_flags() -> list[str]:
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={CLI_TYPE_NAMES[key.indexed_value_type.name]}"]
    return flags


def of_case(state: CaseState) -> dict[str, Any]:
    """The value each attribute should have for this state (None: unset)."""
    return {
        STATUS.name: state.status,
        OWNER.name: state.owner,
        SEVERITY.name: state.severity,
        CATEGORY.name: state.category,
        CUSTOMER.name: state.customer.customer_id,
        ESCALATION_LEVEL.name: state.escalation_level,
        NEXT_DEADLINE.name: state.next_deadline,
    }


def changes(wanted: dict[str, Any], sent: dict[str, Any]) -> list[SearchAttributeUpdate]:
    """The updates that bring what was sent to what is wanted; `sent` is updated to match."""
    updates: list[SearchAttributeUpdate] = []
    for key in ALL:
        value = wanted[key.name]
        if sent.get(key.name, ...) == value:
            continue
        sent[key.name] = value
        updates.append(key.value_unset() if value is None else key.value_set(value))  # type: ignore[attr-defined]
    return updates
