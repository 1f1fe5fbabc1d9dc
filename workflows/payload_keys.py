"""Which encryption keys a case reads messages under, decided once and kept in its history.

A worker decodes a message before the workflow sees it, with the keys the worker holds
now (codec.encryption.for_workers marks a payload it cannot decode instead of failing
the task). A signal's verdict must not depend on that: a signal refused because its key
id was unknown would, on a replay by a worker given that key since, be applied instead,
and the case could never be replayed again. So a case keeps the key ids it has met: the
one its run's input came under, and those a local activity reported when a signal named
a key id outside them. The local activity's answer is in the history, and every replay
reads it back whatever keys the replaying worker has.

Updates need no record: a refused update leaves nothing in the history, and an accepted
one was readable, so its replay reads it again (a key is never withdrawn while a history
holds payloads under it: docs/security.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Iterable

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from codec.encryption import KEY_ID_METADATA, UNDECODABLE_ENCODING, UNDECODABLE_REASON_METADATA

# The activity runs in the worker's own process and reads a list it holds in memory.
_LOOKUP_TIMEOUT = timedelta(seconds=5)


def key_id_of(raw: RawValue) -> str | None:
    """The key id a payload came under (the worker's codec tags what it decrypts), or None if it was plain."""
    payload = getattr(raw, "payload", None)  # not a RawValue: a message with no payload or several
    key_id = payload.metadata.get(KEY_ID_METADATA) if payload is not None else None
    return key_id.decode(errors="replace")[:80] if key_id is not None else None


def undecodable_reason(raw: RawValue) -> str | None:
    """Why the worker could not decode a payload, or None if it could."""
    payload = getattr(raw, "payload", None)
    if payload is None or payload.metadata.get("encoding") != UNDECODABLE_ENCODING:
        return None
    return payload.metadata.get(UNDECODABLE_REASON_METADATA, b"unknown reason").decode(errors="replace")[:200]


class PayloadKeys:
    """The key ids a case has met, and the verdict on a payload under them."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.known: set[str] = set(known)

    def meet(self, raw: RawValue) -> None:
        """The run's own input was readable under its key: messages under that key are too."""
        key_id = key_id_of(raw)
        if key_id is not None and undecodable_reason(raw) is None:
            self.known.add(key_id)

    async def learn(self, raw: RawValue) -> None:
        """Before a signal under a key id the case has not met is judged, record which keys the worker has."""
        key_id = key_id_of(raw)
        if key_id is None or key_id in self.known:
            return
        held = await workflow.execute_local_activity(
            "encryption_key_ids", result_type=list[str], start_to_close_timeout=_LOOKUP_TIMEOUT
        )
        self.known.update(held)

    def refusal(self, raw: RawValue) -> str | None:
        """Why a signal's payload cannot be read, by the keys the case has met; None if it can."""
        key_id = key_id_of(raw)
        if key_id is not None and key_id not in self.known:
            return f"unknown key id {key_id!r}"
        return undecodable_reason(raw)

    def ids(self) -> list[str]:
        return sorted(self.known)
