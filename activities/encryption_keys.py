"""encryption_key_ids: the key ids this worker decrypts with, for a case to record (workflows/payload_keys.py).

A local activity: it must answer with the keys of the worker that decoded the task's payloads.
"""

from __future__ import annotations

from typing import Callable

from temporalio import activity
from temporalio.converter import DataConverter

from codec.encryption import EncryptionCodec


class EncryptionKeyActivities:
    def __init__(self, converter: DataConverter) -> None:
        codec = converter.payload_codec
        keyring = codec.keyring if isinstance(codec, EncryptionCodec) else None
        self._ids = list(keyring.ids) if keyring is not None else []

    @activity.defn(name="encryption_key_ids")
    async def encryption_key_ids(self) -> list[str]:
        return list(self._ids)

    def all(self) -> list[Callable]:
        return [self.encryption_key_ids]
