"""The one place a Temporal client is made: worker, CLI and demo all use connect_client.

Payloads are plain JSON of pydantic v2 models (CONTRACT.md), so every client
uses temporalio's pydantic data converter; setting it here keeps them in step.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from config import DEFAULT_NAMESPACE


async def connect_client(address: str, namespace: str = DEFAULT_NAMESPACE, **kwargs: Any) -> Client:
    """Connect to the Temporal frontend at `address` ("host:port") in `namespace`.

    Extra keyword arguments go to temporalio.client.Client.connect (tls,
    identity, interceptors, ...); the data converter is always the pydantic one.
    """
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        **kwargs,
    )
