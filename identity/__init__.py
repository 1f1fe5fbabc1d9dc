"""Proven identity on the Temporal door: actor assertions (signed JWS) and who is trusted to sign them.

    identity.assertion    sign and verify one assertion: an actor, one action, one case, one payload
    identity.keys         signing keys (the embedded stack's development issuer) and the trusted issuers' JWKS
    identity.interceptors the client interceptor that signs, the worker interceptor that hands the header over
    identity.modes        a worker's mode (signed or trusted-callers) and the keys it trusts
    identity.setup        both from the settings: COMPLAINTS_IDENTITY, COMPLAINTS_TRUSTED_ISSUERS, COMPLAINTS_SIGNING_KEY

docs/security.md ("Signed actors") tells the whole story; docs/decisions/0006 why it is so.
"""
