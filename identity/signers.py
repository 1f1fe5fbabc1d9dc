"""Who signs a client's assertions: a key file (identity.keys), or a command named by COMPLAINTS_SIGNING_COMMAND.

The command is for keys a process must not hold (an HSM, a cloud KMS, a token service): it is run with
`sh -c`, gets the claims to bind as one JSON object on stdin ({"sub", "wf", "act", "pd", "rid"}), and
prints the compact JWS on stdout; it chooses iss, kid, iat and exp (at most 5 minutes apart).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any, Mapping, Protocol

from identity.assertion import payload_digest, sign
from identity.keys import IdentityKeyError, SigningKey

COMMAND_ENV = "COMPLAINTS_SIGNING_COMMAND"
_COMMAND_TIMEOUT_SECONDS = 10


class Signer(Protocol):
    async def assertion(self, *, sub: str, workflow_id: str, action: str, payload: Any) -> str: ...


class KeySigner:
    def __init__(self, key: SigningKey) -> None:
        self.key = key

    async def assertion(self, *, sub: str, workflow_id: str, action: str, payload: Any) -> str:
        return sign(
            self.key.private_key, issuer=self.key.issuer, key_id=self.key.key_id, sub=sub,
            workflow_id=workflow_id, action=action, payload=payload, now=datetime.now(timezone.utc),
        )  # fmt: skip


class CommandSigner:
    def __init__(self, command: str) -> None:
        self.command = command

    async def assertion(self, *, sub: str, workflow_id: str, action: str, payload: Any) -> str:
        request_id = payload.get("request_id") if isinstance(payload, Mapping) else None
        claims = {"sub": sub, "wf": workflow_id, "act": action, "pd": payload_digest(payload), "rid": request_id}
        process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(json.dumps(claims).encode()), _COMMAND_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            process.kill()
            raise IdentityKeyError(f"{COMMAND_ENV} did not answer within {_COMMAND_TIMEOUT_SECONDS} s") from None
        token = out.decode().strip()
        if process.returncode != 0 or token.count(".") != 2:
            reason = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
            raise IdentityKeyError(f"{COMMAND_ENV} printed no assertion: {reason[0][:200]}")
        return token
