"""The two interceptors of signed actors.

SigningInterceptor (client): attaches an `actor-assertion` header to every start, update and signal,
signed with one key or by a signing command (identity.signers), for the actor the payload names (for a start: who received it, or the customer).
AssertionHeaders (worker): hands the header to ComplaintWorkflow's handlers beside their payloads, and
the start's header to the instance before it runs; the workflow decides (workflows/identity_check.py).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from temporalio import client, workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from identity.assertion import ASSERTION_HEADER, START_ACTION, Assertion
from identity.keys import SigningKey
from identity.signers import KeySigner, Signer

# A workflow whose handlers take assertions says so with this class attribute; others get their messages as
# sent. One that also checks its start has START_RECEIVER.
TAKES_ASSERTIONS = "takes_actor_assertions"
START_RECEIVER = "receive_start_assertion"


def token_of(headers: Any) -> str | None:
    """The assertion in a message's headers: a JSON string payload (as this client and the temporal CLI send it)."""
    payload = headers.get(ASSERTION_HEADER) if headers else None
    if payload is None:
        return None
    try:
        value = json.loads(payload.data)
    except ValueError:
        value = payload.data.decode(errors="replace")
    return value if isinstance(value, str) and value else None


class SigningInterceptor(client.Interceptor):
    """Signs with a key file's key, or with any Signer (identity.signers: a command named by a setting)."""

    def __init__(self, signer: SigningKey | Signer) -> None:
        self.signer: Signer = KeySigner(signer) if isinstance(signer, SigningKey) else signer

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _SigningOutbound(next, self.signer)


class _SigningOutbound(client.OutboundInterceptor):
    def __init__(self, next: client.OutboundInterceptor, signer: Signer) -> None:
        super().__init__(next)
        self._key = signer

    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        payload = _json_of(input.args)
        return await super().start_workflow(await _signed(input, self._key, input.id, START_ACTION, payload, _starter(payload)))

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> Any:
        payload = _json_of(input.args)
        sub = _actor(payload) or _starter(payload)  # an action names its actor; a contact (an intake) its starter
        return await super().start_workflow_update(await _signed(input, self._key, input.id, input.update, payload, sub))

    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        payload = _json_of(input.args)
        return await super().signal_workflow(await _signed(input, self._key, input.id, input.signal, payload, _actor(payload)))

    async def start_update_with_start_workflow(self, input: client.StartWorkflowUpdateWithStartInput) -> Any:
        start, update = input.start_workflow_input, input.update_workflow_input
        start_payload, update_payload = _json_of(start.args), _json_of(update.args)
        return await super().start_update_with_start_workflow(
            dataclasses.replace(
                input,
                start_workflow_input=await _signed(start, self._key, start.id, START_ACTION, start_payload, _starter(start_payload)),
                update_workflow_input=await _signed(
                    update, self._key, start.id, update.update, update_payload, _actor(update_payload) or _starter(update_payload)
                ),
            )
        )


async def _signed(input: Any, signer: Signer, workflow_id: str, action: str, payload: Any, sub: str | None) -> Any:
    if payload is None or not sub:
        return input  # nothing a worker could check: sent as it is, and refused in signed mode
    token = await signer.assertion(sub=sub, workflow_id=workflow_id, action=action, payload=payload)
    header = pydantic_data_converter.payload_converter.to_payloads([token])[0]
    return dataclasses.replace(input, headers={**(input.headers or {}), ASSERTION_HEADER: header})


def _json_of(args: Any) -> Any:
    """The one argument as the worker will parse it (JSON), or None when there is not exactly one JSON argument."""
    if len(args) != 1:
        return None
    arg = args[0]
    payload: Payload = arg.payload if isinstance(arg, RawValue) else pydantic_data_converter.payload_converter.to_payloads([arg])[0]
    if payload.metadata.get("encoding") != b"json/plain":
        return None
    try:
        return json.loads(payload.data)
    except ValueError:
        return None


def _actor(payload: Any) -> str | None:
    actor = payload.get("actor") if isinstance(payload, dict) else None
    return actor if isinstance(actor, str) else None


def _starter(payload: Any) -> str | None:
    """Who a start or a contact speaks for: the agent who received the complaint, else its customer."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("received_by"), str):
        return payload["received_by"]
    customer = payload.get("customer")
    customer_id = customer.get("customer_id") if isinstance(customer, dict) else None
    return f"customer:{customer_id}" if isinstance(customer_id, str) else "system:engine"


class AssertionHeaders(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _HeadersToHandlers


class _HeadersToHandlers(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        receive = getattr(workflow.instance(), START_RECEIVER, None)
        if receive is not None:
            receive(Assertion(token_of(input.headers)))
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        named = workflow.get_signal_handler(input.signal) is not None
        return await super().handle_signal(_with_assertion(input, named))

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        named = workflow.get_update_handler(input.update) is not None
        return super().handle_update_validator(_with_assertion(input, named))

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        named = workflow.get_update_handler(input.update) is not None
        return await super().handle_update_handler(_with_assertion(input, named))


def _with_assertion(input: Any, named: bool) -> Any:
    """The message with its assertion as one more argument, for a ComplaintWorkflow handler of its own name
    or the door's (a dynamic handler, for a name no action answers to, is refused whoever sends it)."""
    if not named or not getattr(workflow.instance(), TAKES_ASSERTIONS, False):
        return input
    return dataclasses.replace(input, args=[*input.args, Assertion(token_of(input.headers))])
