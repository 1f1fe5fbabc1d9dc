"""An actor assertion: a compact JWS (EdDSA) that binds an actor to one action on one case with one payload.

Claims: sub (the actor: `a.patel`, `customer:CU-9`, `system:crm`), wf (the workflow id), act (the action, or
`start`), pd (SHA-256 of the payload's canonical JSON, so a token cannot carry other arguments), rid (the
request_id, if any), iat, exp (at most MAX_LIFETIME after iat) and iss. The JWS header names the key (kid).
Signing and checking the signature are PyJWT's; this module only says what must match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import jwt

ASSERTION_HEADER = "actor-assertion"
START_ACTION = "start"
MAX_LIFETIME = timedelta(minutes=5)
# Clocks of signer and worker differ a little: an assertion issued this far in the future is still taken.
CLOCK_SKEW = timedelta(seconds=30)
ALGORITHMS = ["EdDSA", "ES256"]


class AssertionRefused(Exception):
    """An assertion that proves nothing; `check` names the check that failed, for the caller and the timeline."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


@dataclass(frozen=True)
class Verified:
    sub: str
    iss: str
    kid: str

    def as_record(self) -> dict[str, str]:
        """What the timeline keeps of the proof: who vouched for the actor, with which key."""
        return {"iss": self.iss, "kid": self.kid}


def payload_digest(payload: Any) -> str:
    """SHA-256 of the payload's canonical JSON: the same object gives the same digest, whoever serialized it."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sign(
    private_key: Any,
    *,
    issuer: str,
    key_id: str,
    sub: str,
    workflow_id: str,
    action: str,
    payload: Any,
    now: datetime,
    lifetime: timedelta = MAX_LIFETIME,
) -> str:
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "wf": workflow_id,
        "act": action,
        "pd": payload_digest(payload),
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
    }
    request_id = payload.get("request_id") if isinstance(payload, Mapping) else None
    if request_id is not None:
        claims["rid"] = request_id
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": key_id})


def unverified_source(token: str) -> tuple[str, str] | None:
    """(iss, kid) as the token states them, unchecked; None if it is not a JWS."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    iss, kid = claims.get("iss"), header.get("kid")
    return (iss, kid) if isinstance(iss, str) and isinstance(kid, str) else None


def verify(
    token: str | None,
    keys: Mapping[tuple[str, str], Any],
    *,
    workflow_id: str,
    action: str,
    payload: Any,
    now: datetime,
    actor: str | None,
) -> Verified:
    """Check `token` against the trusted public keys ((iss, kid) -> key) for this action, or raise AssertionRefused.

    actor: the payload's actor, which must be the assertion's sub (None for a start, which names no actor).
    """
    if not token:
        raise AssertionRefused("no assertion", f"the {ASSERTION_HEADER} header is missing")
    source = unverified_source(token)
    if source is None:
        raise AssertionRefused("malformed", "the assertion is not a signed JWT naming its issuer and key id")
    key = keys.get(source)
    if key is None:
        raise AssertionRefused("unknown key", f"issuer {source[0][:80]!r} key {source[1][:40]!r} is not trusted")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
        )
    except jwt.PyJWTError:
        raise AssertionRefused("bad signature", "the signature does not verify with the trusted key") from None
    _check_times(claims, now)
    for claim, wanted, check in (
        ("wf", workflow_id, "another case"),
        ("act", action, "another action"),
        ("pd", payload_digest(payload), "another payload"),
    ):
        if claims.get(claim) != wanted:
            raise AssertionRefused(check, f"the assertion was issued for {check}")
    request_id = payload.get("request_id") if isinstance(payload, Mapping) else None
    if claims.get("rid") != request_id:
        raise AssertionRefused("another request", "the assertion was issued for another request_id")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AssertionRefused("malformed", "the assertion names no actor (sub)")
    if actor is not None and sub != actor:
        raise AssertionRefused("actor mismatch", f"the assertion is for {sub[:80]!r}, the action's actor is {actor[:80]!r}")
    return Verified(sub=sub, iss=source[0], kid=source[1])


def _check_times(claims: Mapping[str, Any], now: datetime) -> None:
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int) or not isinstance(expires, int):
        raise AssertionRefused("malformed", "the assertion lacks iat or exp")
    if expires - issued > MAX_LIFETIME.total_seconds():
        raise AssertionRefused("too long-lived", f"an assertion lives at most {int(MAX_LIFETIME.total_seconds())} s")
    moment = now.timestamp()
    if issued > moment + CLOCK_SKEW.total_seconds():
        raise AssertionRefused("not yet valid", "the assertion was issued in the future")
    if moment >= expires:
        raise AssertionRefused("expired", "the assertion has expired")


@dataclass(frozen=True)
class Assertion:
    """The actor-assertion header of one message, handed to the workflow's handler beside its payloads
    (identity.interceptors); token None: the message carried none."""

    token: str | None
