"""Messages sent as anyone with frontend access could: raw payloads and headers through the workflow service, no codec."""

from __future__ import annotations

import uuid
from typing import Sequence

from temporalio.api.common.v1 import Header, Payload, Payloads, WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.failure.v1 import Failure
from temporalio.api.update.v1 import Input, Request, WaitPolicy
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest, UpdateWorkflowExecutionRequest
from temporalio.client import Client


async def raw_signal(
    client: Client, workflow_id: str, name: str, payloads: Sequence[Payload], header: Header | None = None
) -> None:
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            signal_name=name,
            input=Payloads(payloads=payloads),
            header=header,
            identity="attacker",
        )
    )


async def raw_update(
    client: Client, workflow_id: str, name: str, payloads: Sequence[Payload], header: Header | None = None
) -> Failure | None:
    """Send an update and wait for its outcome; returns its failure (still encoded), or None if it was applied."""
    response = await client.workflow_service.update_workflow_execution(
        UpdateWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            request=Request(
                meta={"update_id": uuid.uuid4().hex, "identity": "attacker"},
                input=Input(name=name, args=Payloads(payloads=payloads), header=header),
            ),
            wait_policy=WaitPolicy(
                lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
            ),
        )
    )
    return response.outcome.failure if response.outcome.HasField("failure") else None
