"""The HTTP API for support systems and tools: an ASGI app (FastAPI) thin over ComplaintClient and PostgreSQL.

    api.app          create_app: the routes, the body limit, one log line per request
    api.auth         bearer tokens (OIDC, or the embedded development issuer) -> the acting Principal
    api.visibility   who may read which cases and notifications
    api.problems     RFC 9457 problem responses for every refusal and failure
    api.reads        lists from PostgreSQL: cases (filters, keyset pages, a total) and notifications
    api.serve        `python -m api` (make api): the embedded stack, the worker and the API

docs/api.md describes every endpoint.
"""
