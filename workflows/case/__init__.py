"""The case aggregate: state, timeline and request memory, changed only by actions.

Pure and deterministic: time comes in as `now`, nothing is read from outside.
`check` decides without changing anything (used by update validators);
`apply` checks, then changes state and appends timeline events.
One module a theme, so each rule reads beside its kin; aggregate.py joins them into Case.
"""

from workflows.case.aggregate import CARRIED_TAIL_BYTES, CARRIED_TAIL_EVENTS, REQUEST_ID_MEMORY, Case
from workflows.case.common import ENGINE_ACTOR, ESCALATION_ACTOR, ROUTING_ACTOR
from workflows.case.escalation import CLOCK_LABELS
from workflows.case.resolution import FEEDBACK_REVIEW_AT_OR_BELOW

__all__ = [
    "CARRIED_TAIL_BYTES",
    "CARRIED_TAIL_EVENTS",
    "CLOCK_LABELS",
    "ENGINE_ACTOR",
    "ESCALATION_ACTOR",
    "FEEDBACK_REVIEW_AT_OR_BELOW",
    "REQUEST_ID_MEMORY",
    "ROUTING_ACTOR",
    "Case",
]
