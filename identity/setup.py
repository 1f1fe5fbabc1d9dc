"""The identity settings of a process: the worker's mode and trusted keys, and the key a client signs with.

COMPLAINTS_IDENTITY: `signed` (the default when TEMPORAL_ADDRESS names a real server) or `trusted-callers`
(the embedded stack's default: the actor is taken as written, and the worker warns). Clients sign with
COMPLAINTS_SIGNING_KEY (a signing key file, identity.keys) or, on the embedded stack, with the development
issuer's key in the data dir. A worker trusts COMPLAINTS_TRUSTED_ISSUERS, the embedded development issuer,
and always its own signing key (the engine's own calls, such as the problem door starting a case).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from identity.keys import (
    SIGNING_KEY_FILE,
    IdentityKeyError,
    SigningKey,
    load_or_create_signing_key,
    load_trusted_issuers,
    read_signing_key,
)
from identity.modes import MODES, WorkerIdentity
from identity.signers import CommandSigner, KeySigner, Signer

MODE_ENV = "COMPLAINTS_IDENTITY"


def identity_mode(settings: Any) -> str:
    mode = settings.identity_mode or ("trusted-callers" if settings.embedded_temporal else "signed")
    if mode not in MODES:
        raise IdentityKeyError(f"{MODE_ENV} must be one of {', '.join(MODES)} (got {mode!r})")
    return mode


def signing_key_for(settings: Any, *, create: bool = False) -> SigningKey | None:
    """The key this process signs assertions with, or None (it then sends none).

    create: for the embedded stack, make the development issuer's key if it is missing (the process that
    runs the stack does; a client only reads it, as it reads the payload keys).
    """
    if settings.signing_key_path:
        return read_signing_key(Path(settings.signing_key_path))
    if not settings.embedded_temporal:
        return None
    path = settings.data_dir / SIGNING_KEY_FILE
    if create:
        return load_or_create_signing_key(path)
    return read_signing_key(path) if path.exists() else None


def worker_identity(settings: Any) -> WorkerIdentity:
    mode = identity_mode(settings)
    if mode != "signed":
        return WorkerIdentity.trusting_callers()
    trusted: dict[tuple[str, str], Any] = {}
    if settings.trusted_issuers:
        trusted.update(load_trusted_issuers(settings.trusted_issuers))
    own = signing_key_for(settings, create=True)
    if own is None:
        raise IdentityKeyError(
            f"{MODE_ENV}=signed needs COMPLAINTS_SIGNING_KEY: the engine signs its own calls (the problem door "
            "starting a case) with it (`python -m identity.keys <issuer>` writes one)"
        )
    trusted.update(own.trusted_keys())
    return WorkerIdentity("signed", trusted)


def signer_for(settings: Any) -> Signer | None:
    """How this process's clients sign: the signing key (file or the embedded issuer's), else the signing command."""
    key = signing_key_for(settings)
    if key is not None:
        return KeySigner(key)
    if settings.signing_command:
        return CommandSigner(settings.signing_command)
    return None
