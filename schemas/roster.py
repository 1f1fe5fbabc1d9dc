"""The roster of agents, as loaded from JSON and as the workflow sees them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.common import AgentId, Category, InputMessage, OutputMessage, text

Role = Literal["agent", "supervisor", "manager"]
EmailAddress = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
WebhookUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2_000, pattern=r"^https?://[^\s]+$")]


class Agent(InputMessage):
    id: AgentId
    name: text(200)
    role: Role
    team: text(64)
    supervisor_id: AgentId | None = None
    skills: list[Category] = Field(default_factory=list)
    authority_limit: Decimal = Field(default=Decimal(0), ge=0)
    max_open_cases: int = Field(default=20, ge=0)
    active: bool = True
    # Where escalations reach this person (delivery/): an address, a webhook signed as Standard Webhooks,
    # a Slack or Teams incoming webhook. All optional; without any, their notifications wait for `notifications ack`.
    email: EmailAddress | None = None
    webhook_url: WebhookUrl | None = None
    chat_webhook_url: WebhookUrl | None = None

    @model_validator(mode="after")
    def _not_own_supervisor(self) -> "Agent":
        if self.supervisor_id == self.id:
            raise ValueError(f"agent {self.id} cannot be their own supervisor")
        return self


# The engine's own actors: no caller may act as one of these.
ENGINE_SYSTEMS = frozenset({"engine", "escalation", "letters", "routing"})


# What a system may read through the HTTP API besides the actions it may send (api/visibility.py).
SYSTEM_READS = ("read_cases",)


class System(InputMessage):
    """Another system that acts on cases as `system:<name>` (a CRM, a survey tool), and the actions it may send."""

    name: AgentId
    actions: list[str] = Field(min_length=1)
    active: bool = True

    @model_validator(mode="after")
    def _known_actions(self) -> "System":
        from schemas.actions import ACTIONS

        if self.name in ENGINE_SYSTEMS:
            raise ValueError(f"system:{self.name} is the engine's own name; register the system under another")
        allowed = [*ACTIONS, *SYSTEM_READS]
        unknown = sorted(set(self.actions) - set(allowed))
        if unknown:
            raise ValueError(f"system {self.name}: unknown actions {', '.join(unknown)}; actions are: {', '.join(allowed)}")
        return self


class Roster(InputMessage):
    agents: list[Agent] = Field(min_length=1)
    systems: list[System] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "Roster":
        ids = [agent.id for agent in self.agents]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"agent ids appear more than once: {', '.join(duplicates)}")
        names = [system.name for system in self.systems]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"system names appear more than once: {', '.join(twice)}")
        return self


class SystemRef(OutputMessage):
    """A registered system as the case sees it when it checks who may act."""

    name: str
    actions: list[str]
    active: bool = True


class AgentRef(OutputMessage):
    """What a case needs to know of an agent to apply the who-may rules."""

    agent_id: str
    name: str
    role: Role
    team: str
    supervisor_id: str | None = None
    active: bool = True
    authority_limit: Decimal = Decimal(0)
    max_open_cases: int = 20


class AgentWorkload(OutputMessage):
    """A roster member and how many open cases they own now (None: not on the roster)."""

    agent_id: str
    agent: AgentRef | None = None
    open_cases: int = 0

    @property
    def full(self) -> bool:
        return self.agent is not None and self.open_cases >= self.agent.max_open_cases


class Assignment(OutputMessage):
    """The accountable owner chosen at intake, with the escalation chain above them."""

    owner: AgentRef
    supervisor: AgentRef | None = None
    manager: AgentRef | None = None
    routed_by: Literal["received_by", "routing", "fallback"]
    reason: str
