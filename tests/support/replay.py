"""The worker's replayer with the plain pydantic converter the clients use (stack/client.py)."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter

from workflow_runner import replayer as workflow_replayer


def replayer():  # type: ignore[no-untyped-def]
    return workflow_replayer(pydantic_data_converter)
