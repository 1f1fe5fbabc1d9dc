"""What every theme writes into events alike (system actors, moments), so the timeline reads the same throughout."""

from __future__ import annotations

from datetime import datetime

ROUTING_ACTOR = "system:routing"
ENGINE_ACTOR = "system:engine"
ESCALATION_ACTOR = "system:escalation"
# The letters the engine sends the customer, and what it records about letters (workflows/case/letters.py).
LETTERS_ACTOR = "system:letters"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
