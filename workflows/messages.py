"""How a message's payloads become an action, or a rejection, and the handlers that take them.

Payloads arrive as RawValue and are decoded and validated here, never by the SDK: a payload the SDK
cannot convert into a typed parameter would fail the workflow task (the run, an update) or be dropped
silently (a signal). A message with no payload or several is refused like any bad payload, and so
is one the worker could not decrypt (workflows/payload_keys.py).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from schemas.actions import ACTIONS, Action
    from schemas.errors import describe_validation_error
    from schemas.state import CaseState
    from identity.assertion import Assertion
    from workflows.payload_keys import PayloadKeys, undecodable_reason
    from workflows.rules import Rejection


def decode(raw: RawValue) -> Any:
    return workflow.payload_converter().from_payload(raw.payload)


class PayloadCount:
    """Stands for the payload of a message that carried none, or several: an action takes exactly one."""

    def __init__(self, count: int) -> None:
        self.count = count


def one_payload(payloads: Sequence[Any]) -> Any:
    return payloads[0] if len(payloads) == 1 else PayloadCount(len(payloads))


def split_assertion(args: Sequence[Any]) -> tuple[list[Any], Assertion]:
    """A message's payloads, and the actor assertion identity.interceptors handed over beside them."""
    payloads = [arg for arg in args if not isinstance(arg, Assertion)]
    assertions = [arg for arg in args if isinstance(arg, Assertion)]
    return payloads, assertions[0] if assertions else Assertion(None)


def takes_one_raw_payload(fn: Callable, returns: Any) -> Callable:
    """Declare fn, which takes any number of payloads, to the SDK as taking one RawValue.

    The SDK decodes a message's payloads by the handler's declared parameters and calls
    the handler with as many as were sent: a handler taking exactly one would raise
    TypeError for a message with none or several, failing every workflow task of the
    case (a signal) or answering with a TypeError (an update). Taking *payloads, the
    case rejects such a message like any bad payload.
    """
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("payload", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=RawValue),
        ],
        return_annotation=returns,
    )
    fn.__annotations__ = {"payload": RawValue, "return": returns}
    return fn


def storable(text: str, limit: int | None = None) -> str:
    """Text from a message, made fit for the timeline: PostgreSQL stores no NUL character."""
    text = text.replace("\x00", "\\x00")
    return text if limit is None else text[:limit]


def unreadable(raw: RawValue, keys: PayloadKeys | None = None) -> str | None:
    """Why a payload cannot be read at all: a signal's by the keys its case has met (keys), an update's by its marker."""
    return keys.refusal(raw) if keys is not None else undecodable_reason(raw)


def json_object(raw: RawValue, what: str, keys: PayloadKeys | None = None) -> dict[str, Any]:
    """The JSON object a payload holds, or Rejection saying why it holds none (`what` names the payload)."""
    why = unreadable(raw, keys)
    if why is not None:
        raise Rejection("InvalidCommand", f"{what} could not be decrypted: {why}")
    try:
        data = decode(raw)
    except Exception:
        encoding = storable(raw.payload.metadata.get("encoding", b"").decode(errors="replace"), 40)
        raise Rejection("InvalidCommand", f"{what} is not JSON (encoding {encoding or 'none'!r})")
    if not isinstance(data, dict):
        raise Rejection("InvalidCommand", f"{what} must be a JSON object (got {type(data).__name__})")
    return data


def parse_action(name: str, raw: RawValue, keys: PayloadKeys | None = None) -> Action:
    """Decode and validate an action payload, or raise Rejection saying what is wrong."""
    return read_action(name, raw, keys)[0]


def read_action(name: str, raw: RawValue, keys: PayloadKeys | None = None) -> tuple[Action, dict[str, Any]]:
    """The action, and the JSON object it was read from (what an actor assertion's digest covers)."""
    if isinstance(raw, PayloadCount):
        raise Rejection(
            "InvalidCommand", f"{name}: an action takes exactly one payload, a JSON object (got {raw.count} payloads)"
        )
    data = json_object(raw, f"{name}: the payload", keys)
    try:
        return ACTIONS[name].model_validate(data), data
    except ValidationError as error:
        fields = tuple(dict.fromkeys(".".join(str(part) for part in e["loc"]) for e in error.errors()))
        raise Rejection("InvalidCommand", describe_validation_error(error, name), fields)


def raw_actor(raw: RawValue, keys: PayloadKeys | None = None) -> str:
    """The actor named in a payload, for the command_rejected event, whatever else is wrong with it."""
    if isinstance(raw, PayloadCount) or unreadable(raw, keys) is not None:
        return "unknown"
    try:
        actor = decode(raw).get("actor")
    except Exception:
        return "unknown"
    return storable(actor, 80) if isinstance(actor, str) and actor else "unknown"


def unknown_action(name: str) -> str:
    return f"unknown action {storable(name, 100)!r}; actions are: {', '.join(ACTIONS)}"


def update_handler(name: str):
    async def handler(self, *args: RawValue) -> CaseState:
        payloads, assertion = split_assertion(args)
        return await self._run_update(name, one_payload(payloads), assertion)

    def validator(self, *args: RawValue) -> None:
        payloads, assertion = split_assertion(args)
        self._validate_update(name, one_payload(payloads), assertion)

    takes_one_raw_payload(handler, CaseState)
    takes_one_raw_payload(validator, None)
    handler.__name__ = f"{name}_update"
    validator.__name__ = f"validate_{name}"
    update = workflow.update(name=name)(handler)
    update.validator(validator)
    return update


def signal_handler(name: str):
    async def handler(self, *args: RawValue) -> None:
        payloads, assertion = split_assertion(args)
        await self._run_signal(name, one_payload(payloads), assertion)

    takes_one_raw_payload(handler, None)
    handler.__name__ = f"{name}_signal"
    return workflow.signal(name=name)(handler)


def with_action_handlers(cls: type) -> type:
    """Give the workflow an Update and a Signal of each action's name, for every action in schemas.actions.

    The contract's new_contact is a signal (from other systems); its update form, like every
    action's, tells the caller the outcome.
    """
    for name in ACTIONS:
        setattr(cls, name, update_handler(name))
        setattr(cls, f"{name}_signal", signal_handler(name))
    return cls


def optional_seq(payloads: Sequence[RawValue]) -> int | None:
    """wait_for_writes' one optional argument: a whole number of at least 0, or none (every event so far)."""
    payloads, _ = split_assertion(payloads)
    if not payloads:
        return None
    problem = f"{len(payloads)} arguments" if len(payloads) > 1 else None
    if problem is None:
        try:
            seq = decode(payloads[0])
        except Exception:
            problem = "a payload that is not JSON"
        else:
            if seq is None or (isinstance(seq, int) and not isinstance(seq, bool)):
                return seq
            problem = storable(repr(seq), 40)
    raise ApplicationError(
        f"wait_for_writes: seq must be a whole number (got {problem})", type="InvalidCommand", non_retryable=True
    )
