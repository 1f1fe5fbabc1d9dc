"""Issue 14.2: only registered systems act as system:<name>, only with their actions, and a system adds facts
but never changes one the customer gave. The engine's own names are nobody's to use."""

from __future__ import annotations

import pytest

from schemas.roster import Roster, SystemRef
from tests.support.case import CUSTOMER, accepted_case, action, later, rejected

CRM = SystemRef(name="crm", actions=["new_contact"])
CONTACT = {"channel": "email", "summary": "Customer wrote again"}


def test_an_unknown_system_is_not_allowed():
    case = accepted_case()
    case.learn_system("anything", None)
    refusal = rejected(case, "new_contact", later(), actor="system:anything", **CONTACT)
    assert refusal.kind == "NotAllowed" and "system:anything is not a registered system" in refusal.message


@pytest.mark.parametrize("name", ["engine", "escalation", "letters", "routing"])
def test_the_engine_s_own_names_are_no_caller_s(name: str):
    case = accepted_case()
    refusal = rejected(case, "add_note", later(), actor=f"system:{name}", text="I am the engine")
    assert refusal.kind == "NotAllowed" and "the engine's own name" in refusal.message
    with pytest.raises(Exception, match="the engine's own name"):
        case.check("add_note", action("add_note", actor=f"system:{name}", text="x"), later(), roster_unknown_ok=True)


def test_a_registered_system_sends_only_its_actions():
    case = accepted_case()
    case.learn_system("crm", CRM)
    refusal = rejected(case, "add_note", later(), actor="system:crm", text="Synced")
    assert refusal.message == "system:crm may not send add_note; it is registered for new_contact"
    case.learn_system("crm", CRM)
    assert case.apply("new_contact", action("new_contact", actor="system:crm", **CONTACT), later(2))
    case.learn_system("crm", CRM.model_copy(update={"active": False}))
    assert "not active" in rejected(case, "new_contact", later(3), actor="system:crm", **CONTACT).message


def test_a_system_adds_facts_but_never_changes_the_customer_s():
    case = accepted_case()
    case.apply("new_contact", action("new_contact", actor=CUSTOMER, facts={"refund_account": "GB29 1111"}, **CONTACT), later())
    case.learn_system("crm", CRM)
    refusal = rejected(case, "new_contact", later(2), actor="system:crm", facts={"refund_account": "GB29 9999"}, **CONTACT)
    assert refusal.kind == "NotAllowed" and refusal.fields == ("refund_account",)
    assert "GB29" not in refusal.message  # the reason names the fact, never its value
    case.learn_system("crm", CRM)
    case.apply("new_contact", action("new_contact", actor="system:crm", facts={"crm_ticket": "T-77", "refund_account": "GB29 1111"}, **CONTACT), later(3))
    assert case.state.facts["crm_ticket"].value == "T-77" and case.state.facts["refund_account"].value == "GB29 1111"
    # The customer corrects it themselves.
    case.apply("new_contact", action("new_contact", actor=CUSTOMER, facts={"refund_account": "GB29 2222"}, **CONTACT), later(4))
    assert case.state.facts["refund_account"].value == "GB29 2222"


def test_a_roster_registers_systems_with_known_actions_only():
    roster = Roster.model_validate({"agents": [{"id": "a", "name": "A", "role": "agent", "team": "t"}],
                                    "systems": [{"name": "crm", "actions": ["new_contact"]}]})  # fmt: skip
    assert roster.systems[0].actions == ["new_contact"]
    with pytest.raises(ValueError, match="unknown actions teleport"):
        Roster.model_validate({"agents": roster.model_dump()["agents"], "systems": [{"name": "crm", "actions": ["teleport"]}]})
    with pytest.raises(ValueError, match="engine's own name"):
        Roster.model_validate({"agents": roster.model_dump()["agents"], "systems": [{"name": "routing", "actions": ["add_note"]}]})
