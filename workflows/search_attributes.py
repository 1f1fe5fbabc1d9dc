"""The fleet-query search attributes of CONTRACT.md, kept current by the workflow."""

from temporalio.common import SearchAttributeKey

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
