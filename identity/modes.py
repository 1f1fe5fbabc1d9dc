"""How a worker checks who is acting: its mode, and the public keys of the issuers it trusts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

IdentityMode = Literal["signed", "trusted-callers"]
MODES: tuple[str, ...] = ("signed", "trusted-callers")


@dataclass(frozen=True)
class WorkerIdentity:
    mode: IdentityMode
    # (iss, kid) -> public key, read at start-up (identity.keys), never inside a workflow.
    trusted: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def trusting_callers(cls) -> "WorkerIdentity":
        return cls("trusted-callers")
