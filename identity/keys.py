"""Who signs assertions, and whose signatures a worker trusts.

A signing key is a JSON file: {"iss": ..., "kid": ..., "jwk": <private Ed25519 JWK>}. The embedded stack
makes one for its development issuer in the data dir (`identity-signing-key.json`, mode 0600), as it makes
the payload keys; COMPLAINTS_SIGNING_KEY names another. A worker trusts the issuers in
COMPLAINTS_TRUSTED_ISSUERS, `<iss>=<JWKS file or https URL>` entries separated by commas, read once at
start-up (never inside a workflow); for the embedded stack it trusts the development issuer's public key.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from config import SettingsError

DEV_ISSUER = "complaints-dev"
SIGNING_KEY_FILE = "identity-signing-key.json"
TRUSTED_ENV = "COMPLAINTS_TRUSTED_ISSUERS"
SIGNING_KEY_ENV = "COMPLAINTS_SIGNING_KEY"
_FETCH_TIMEOUT_SECONDS = 10

TrustedKeys = Mapping[tuple[str, str], Any]


class IdentityKeyError(SettingsError):
    """A signing key or a trusted issuer's keys cannot be used; the message names the setting or file."""


@dataclass(frozen=True)
class SigningKey:
    issuer: str
    key_id: str
    private_key: Any

    def public_jwks(self) -> dict[str, Any]:
        jwk = OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.key_id, "alg": "EdDSA", "use": "sig"}]}

    def trusted_keys(self) -> dict[tuple[str, str], Any]:
        return {(self.issuer, self.key_id): self.private_key.public_key()}


def new_signing_key(issuer: str = DEV_ISSUER, key_id: str | None = None) -> SigningKey:
    key_id = key_id or f"{issuer}-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(3)}"
    return SigningKey(issuer, key_id, Ed25519PrivateKey.generate())


def signing_key_json(key: SigningKey) -> str:
    jwk = OKPAlgorithm.to_jwk(key.private_key, as_dict=True)
    return json.dumps({"iss": key.issuer, "kid": key.key_id, "jwk": jwk}, indent=2) + "\n"


def read_signing_key(path: Path) -> SigningKey:
    try:
        data = json.loads(path.read_text())
        private_key = OKPAlgorithm.from_jwk(data["jwk"])
        issuer, key_id = data["iss"], data["kid"]
    except OSError as error:
        raise IdentityKeyError(f"cannot read the signing key {path}: {error.strerror or error}") from None
    except (ValueError, KeyError, TypeError, jwt.InvalidKeyError):
        raise IdentityKeyError(f"{path}: not a signing key (expected iss, kid and an Ed25519 private jwk)") from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise IdentityKeyError(f"{path}: the jwk is not an Ed25519 private key")
    return SigningKey(str(issuer), str(key_id), private_key)


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The key in `path`, first created (mode 0600) if missing; of several racing processes one file wins."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as out:
                out.write(signing_key_json(new_signing_key()))
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
        finally:
            temporary.unlink(missing_ok=True)
    return read_signing_key(path)


def jwks_keys(issuer: str, jwks: Mapping[str, Any], source: str) -> dict[tuple[str, str], Any]:
    keys: dict[tuple[str, str], Any] = {}
    for number, entry in enumerate(jwks.get("keys", []) if isinstance(jwks, Mapping) else [], start=1):
        kid = entry.get("kid") if isinstance(entry, Mapping) else None
        if not isinstance(kid, str) or not kid:
            raise IdentityKeyError(f"{source}: key {number} has no kid")
        try:
            keys[(issuer, kid)] = jwt.PyJWK(dict(entry)).key
        except jwt.PyJWTError as error:
            raise IdentityKeyError(f"{source}: key {kid!r} cannot be used: {error}") from None
    if not keys:
        raise IdentityKeyError(f"{source}: no keys (expected a JWKS: {{\"keys\": [...]}})")
    return keys


def _read_jwks(source: str) -> Any:
    if source.startswith(("https://", "http://")):
        with urllib.request.urlopen(source, timeout=_FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 - a configured URL
            return json.load(response)
    return json.loads(Path(source).read_text())


def load_trusted_issuers(spec: str) -> dict[tuple[str, str], Any]:
    """The keys of every `<iss>=<JWKS file or URL>` entry of `spec` (COMPLAINTS_TRUSTED_ISSUERS)."""
    keys: dict[tuple[str, str], Any] = {}
    for number, entry in enumerate((part.strip() for part in spec.split(",")), start=1):
        if not entry:
            continue
        issuer, sep, source = entry.partition("=")
        if not sep or not issuer.strip() or not source.strip():
            raise IdentityKeyError(f"{TRUSTED_ENV} entry {number}: expected `<issuer>=<JWKS file or URL>`")
        where = f"{TRUSTED_ENV} entry {number} ({issuer.strip()})"
        try:
            jwks = _read_jwks(source.strip())
        except (OSError, ValueError) as error:
            raise IdentityKeyError(f"{where}: cannot read {source.strip()}: {error}") from None
        keys.update(jwks_keys(issuer.strip(), jwks, where))
    if not keys:
        raise IdentityKeyError(f"{TRUSTED_ENV} names no issuer")
    return keys


def main(argv: list[str] | None = None) -> int:
    """`python -m identity.keys [ISSUER]`: print a new signing key file (JSON) for COMPLAINTS_SIGNING_KEY, then its
    public JWKS on stderr, for the workers' COMPLAINTS_TRUSTED_ISSUERS."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print("usage: python -m identity.keys [ISSUER] > signing-key.json 2> issuer.jwks.json", file=sys.stderr)
        return 2
    key = new_signing_key(args[0] if args else DEV_ISSUER)
    print(signing_key_json(key), end="")
    print(json.dumps(key.public_jwks(), indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
