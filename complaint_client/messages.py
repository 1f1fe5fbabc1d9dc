"""What a caller sends, validated into its schemas/ model before anything reaches Temporal."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from complaint_client.errors import CommandRejected
from schemas import ACTIONS, Action, describe_validation_error


def validated_action(name: str, action: Action | dict[str, Any]) -> Action:
    if name not in ACTIONS:
        raise CommandRejected("InvalidCommand", f"unknown action {name!r}; actions are: {', '.join(ACTIONS)}")
    return validated(ACTIONS[name], action, name)


def validated(model: type, value: Any, what: str):
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise CommandRejected("InvalidCommand", describe_validation_error(error, what)) from None
