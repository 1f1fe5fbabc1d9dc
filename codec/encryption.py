"""The payload codec: AES-256-GCM over each payload, so customer data is never plain text in Temporal.

An encrypted payload:

    metadata  encoding = "binary/encrypted", encryption-key-id = <key id>
    data      12-byte random nonce || AES-GCM(serialized inner Payload protobuf) (ciphertext and 16-byte tag)

The inner payload is the pydantic converter's plain JSON payload, metadata
included, so decoding gives back exactly what was encoded. Decoding passes
through any payload that is not encrypted: a case started from the `temporal`
CLI with hand-written JSON, or histories written before encryption was on,
still work. Every key of the KeyRing decrypts; the first encrypts.

A worker must never fail a workflow task on a payload it cannot decode: the SDK
decodes a task's payloads before any handler runs, so one undecodable signal
would stop its case for good. for_workers(converter) gives workers a codec that
turns such a payload into a marker (encoding binary/undecodable, the reason and
the key id in its metadata) and tags every payload it decrypts with its key id,
for the workflow to refuse or accept (workflows/payload_keys.py).

make_data_converter(keyring) is the data converter every client uses
(stack/client.py): temporalio's pydantic converter, this codec, and, when
encrypting, failure messages and stack traces moved into an encoded (so
encrypted) attribute, since a rejection's message may quote customer data.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from codec.keys import KEYS_ENV, EncryptionKeyError, KeyRing

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
# A payload a worker could not decode stands in the workflow as one of these.
UNDECODABLE_ENCODING = b"binary/undecodable"
UNDECODABLE_REASON_METADATA = "undecodable-reason"


class EncryptionCodec(PayloadCodec):
    """Encrypts with the keyring's first key; decrypts with whichever key a payload names.

    keyring None: encode leaves payloads as they are (plain JSON) and decode
    passes plain payloads through, but an encrypted one is an error naming its
    key id and the variable that would supply it.
    """

    def __init__(self, keyring: KeyRing | None, *, marks_undecodable: bool = False) -> None:
        super().__init__()
        self.keyring = keyring
        self.marks_undecodable = marks_undecodable
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys} if keyring else {}

    @property
    def encrypting(self) -> bool:
        return self.keyring is not None

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)

    # The codec server calls these from its request threads.

    def encode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self.keyring is None:
            return list(payloads)
        key_id = self.keyring.current_id
        cipher = self._ciphers[key_id]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
                    data=nonce + cipher.encrypt(nonce, payload.SerializeToString(), None),
                )
            )
        return encoded

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not self.marks_undecodable:
            return [self._decode_one(payload) if is_encrypted(payload) else payload for payload in payloads]
        return [self._decode_or_mark(payload) if is_encrypted(payload) else payload for payload in payloads]

    def _decode_or_mark(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID_METADATA, b"")
        try:
            decoded = self._decode_one(payload)
        except UndecodablePayload as error:
            return Payload(
                metadata={
                    "encoding": UNDECODABLE_ENCODING,
                    UNDECODABLE_REASON_METADATA: error.reason.encode(),
                    KEY_ID_METADATA: key_id,
                }
            )
        decoded.metadata[KEY_ID_METADATA] = key_id
        return decoded

    def _decode_one(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")[:80]
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            if self.keyring is None:
                have = "this process has no encryption keys"
            else:
                have = f"this process has keys {', '.join(self.keyring.ids)} (from {self.keyring.source})"
            raise UndecodablePayload(
                f"unknown key id {key_id or '(none)'!r}",
                f"a payload is encrypted with key id {key_id or '(none)'!r}, but {have}; "
                f"add that key to {KEYS_ENV} (`<key-id>:<base64>`, comma-separated, the first one encrypts)",
            )
        data = payload.data
        if len(data) <= NONCE_BYTES:
            raise UndecodablePayload(
                "truncated ciphertext", f"a payload encrypted with key id {key_id!r} is truncated ({len(data)} bytes)"
            )
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
        except InvalidTag:
            raise UndecodablePayload(
                "the ciphertext does not decrypt (altered, or another key under the same id)",
                f"a payload encrypted with key id {key_id!r} does not decrypt with the key of that id "
                f"(a different key under the same id in {self.keyring.source if self.keyring else KEYS_ENV}, "
                "or the payload was altered)",
            ) from None
        try:
            return Payload.FromString(plain)
        except DecodeError:
            raise UndecodablePayload(
                "the decrypted bytes are not a payload",
                f"a payload encrypted with key id {key_id!r} decrypts to bytes that are not a Payload message",
            ) from None


class UndecodablePayload(EncryptionKeyError):
    """A payload this process cannot decrypt. `reason` says why in words safe to show anyone (no key
    material, no file path); the message adds what an operator needs to fix it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def for_workers(converter: DataConverter) -> DataConverter:
    """The converter a worker uses: its encryption codec marks a payload it cannot decode instead of raising.

    A converter without the encryption codec is returned as it is: an encrypted payload then reaches
    the workflow still encrypted, and is refused there as one under a key the worker does not have.
    """
    codec = converter.payload_codec
    if not isinstance(codec, EncryptionCodec) or codec.marks_undecodable:
        return converter
    return dataclasses.replace(converter, payload_codec=EncryptionCodec(codec.keyring, marks_undecodable=True))


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


def make_data_converter(keyring: KeyRing | None) -> DataConverter:
    """The pydantic data converter with the encryption codec (and, when encrypting, encoded failure attributes)."""
    if keyring is None:
        # Plain JSON as before; the codec only turns an encrypted payload into a clear error.
        return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(None))
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
