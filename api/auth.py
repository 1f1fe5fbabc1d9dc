"""Bearer tokens to the acting Principal: the actor comes from the token, never from the body.

Configured (OIDC_ISSUER, OIDC_AUDIENCE, OIDC_JWKS_URL): a JWT from that issuer, checked against its JWKS
(PyJWT's PyJWKClient, cached). Staff: the claim OIDC_ACTOR_CLAIM (default preferred_username) is the
roster id. Customers: a `customer_id` claim makes `customer:<id>`. Systems (client credentials): a
`client_id` claim and no actor claim makes `system:<client_id>`, which must be registered. Unset, on the
embedded stack: the development issuer's key (identity.keys) signs and checks the tokens (`starter.py
api-token --as a.patel` prints one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from api.problems import Problem
from identity.keys import SigningKey

ALGORITHMS = ["RS256", "ES256", "EdDSA"]
DEV_AUDIENCE = "complaints-api"


@dataclass(frozen=True)
class Principal:
    actor: str  # a.patel, customer:CU-9, system:crm

    @property
    def customer_id(self) -> str | None:
        return self.actor.removeprefix("customer:") if self.actor.startswith("customer:") else None

    @property
    def system(self) -> str | None:
        return self.actor.removeprefix("system:") if self.actor.startswith("system:") else None


class Authenticator:
    """Checks a bearer token against one issuer: a fixed key (the development issuer) or a JWKS URL."""

    def __init__(self, *, issuer: str, audience: str, key: Any = None, jwks_url: str | None = None, actor_claim: str = "preferred_username") -> None:
        self.issuer, self.audience, self.actor_claim = issuer, audience, actor_claim
        self._key = key
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None

    def principal(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        token = authorization[7:].strip()
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks is not None else self._key
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer)
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired", error="invalid_token") from None
        except (jwt.PyJWTError, ValueError) as error:
            raise _unauthorized(f"the token is not valid: {type(error).__name__}", error="invalid_token") from None
        return Principal(self._actor_of(claims))

    def _actor_of(self, claims: dict[str, Any]) -> str:
        if isinstance(claims.get("customer_id"), str) and claims["customer_id"]:
            return f"customer:{claims['customer_id']}"
        actor = claims.get(self.actor_claim)
        if isinstance(actor, str) and actor:
            return actor
        if isinstance(claims.get("client_id"), str) and claims["client_id"]:
            return f"system:{claims['client_id']}"
        raise _unauthorized(f"the token names nobody: no {self.actor_claim}, customer_id or client_id claim", error="invalid_token")


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = 'Bearer realm="complaints"' + (f', error="{error}"' if error else "")
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


def key_authenticator(key: SigningKey, *, audience: str = DEV_AUDIENCE, actor_claim: str = "preferred_username") -> Authenticator:
    """Tokens checked against one signing key's public key: the embedded development issuer's."""
    return Authenticator(issuer=key.issuer, audience=audience, key=key.private_key.public_key(), actor_claim=actor_claim)


def bearer_token(key: SigningKey, actor: str, *, audience: str = DEV_AUDIENCE, lifetime: timedelta = timedelta(hours=1)) -> str:
    """A token signed with `key` naming `actor` in the claim Authenticator reads back for it."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": key.issuer, "aud": audience, "iat": now, "exp": now + int(lifetime.total_seconds()), "sub": actor}
    if actor.startswith("customer:"):
        claims["customer_id"] = actor.removeprefix("customer:")
    elif actor.startswith("system:"):
        claims["client_id"] = actor.removeprefix("system:")
    else:
        claims["preferred_username"] = actor
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.key_id})
