"""The codec server: lets the Temporal UI and CLI show decrypted payloads to whoever runs it.

    .venv/bin/python starter.py codec-server            # http://127.0.0.1:8081
    .venv/bin/python -m codec.server --port 8081 --ui-origin https://ui.example.com

It speaks Temporal's codec server protocol: POST /decode and POST /encode
(also under a prefix such as /{namespace}/decode, for the CLI's templated
--codec-endpoint) take and return JSON `{"payloads": [...]}`, each payload in
proto3 JSON (base64 metadata values and data). Preflight OPTIONS requests and
the responses carry CORS headers for the allowed UI origins only (the
embedded dev server's UI on 8233 and docker-compose's on 8080 by default).

It uses the same keys as the worker (COMPLAINTS_ENCRYPTION_KEYS, or the
embedded stack's data/encryption-keys; codec/keys.py), so it can read every
case the worker can: it listens on 127.0.0.1 unless told otherwise, and with
--auth-token (or COMPLAINTS_CODEC_AUTH_TOKEN) it answers only requests whose
Authorization header is `Bearer <token>` (the CLI's --codec-auth). It logs
each request (path, namespace, number of payloads, status), never a payload.

Standard library only (http.server, one thread per request): it serves one
person's UI or CLI, not traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import ipaddress
import json
import os
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from codec.encryption import EncryptionCodec, UndecodablePayload
from codec.keys import EncryptionKeyError, KeyRing

log = structlog.get_logger("codec.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
# The Temporal UI origins allowed by default: the embedded dev server's UI and docker-compose's.
DEFAULT_UI_ORIGINS = (
    "http://localhost:8233",
    "http://127.0.0.1:8233",
    "http://localhost:8080",
    "http://127.0.0.1:8080",
)
AUTH_TOKEN_ENV = "COMPLAINTS_CODEC_AUTH_TOKEN"
MAX_BODY = 16 * 1024 * 1024  # the UI decodes a history page at a time; Temporal caps a payload at 2 MiB
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


class CodecServerError(EncryptionKeyError):
    """The codec server cannot start as asked (a setting, so the CLI answers with one line and exit 2)."""


def _with_port(name: str, port: int) -> str:
    """`name` as a Host header gives it: host:port, the port added where the name has none."""
    name = name.strip().lower()
    has_port = "]:" in name if name.startswith("[") else ":" in name
    return name if has_port else f"{name}:{port}"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        codec: EncryptionCodec,
        *,
        ui_origins: Sequence[str] = DEFAULT_UI_ORIGINS,
        auth_token: str | None = None,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        if not auth_token and not is_loopback(address[0]):
            raise CodecServerError(
                f"refusing to listen on {address[0]} without an auth token: anyone who reaches it could decrypt "
                f"every case; set --auth-token or {AUTH_TOKEN_ENV}, or listen on 127.0.0.1"
            )
        super().__init__(address, _Handler)
        self.codec = codec
        self.ui_origins = frozenset(origin.rstrip("/") for origin in ui_origins)
        self.auth_token = auth_token
        port = self.server_address[1]
        names = {"localhost", "127.0.0.1", "[::1]", address[0], *allowed_hosts}
        self.allowed_hosts = frozenset(_with_port(name, port) for name in names)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def allows_host(self, host: str | None) -> bool:
        return host is not None and _with_port(host, self.server_address[1]) in self.allowed_hosts

    def allows_origin(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.ui_origins or origin.rstrip("/") in self.ui_origins)


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer
    protocol_version = "HTTP/1.1"  # keep-alive: the UI sends many small requests

    def do_OPTIONS(self) -> None:  # CORS preflight
        if not self._host_allowed():
            return
        if self._operation() is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found: use /encode or /decode"})
            return
        self._send(HTTPStatus.NO_CONTENT, b"", content_type=None)

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        operation = self._operation()
        if operation is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found: use /encode or /decode"})
            return
        if not self._authorized():
            self._drain()
            self._send_json(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong Authorization: Bearer <token>"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > MAX_BODY else HTTPStatus.BAD_REQUEST
            self._send_json(status, {"error": f"a body of 0..{MAX_BODY} bytes with its Content-Length is required"})
            return
        body = self.rfile.read(length)
        try:
            payloads = json_format.Parse(body or b"{}", Payloads())
        except json_format.ParseError as error:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f'the body is not {{"payloads": [...]}} in proto3 JSON: {error}'})
            return
        codec = self.server.codec
        try:
            result = (codec.encode_sync if operation == "encode" else codec.decode_sync)(payloads.payloads)
        except UndecodablePayload as error:
            # The reason only: the full message names the key file, which is no caller's business.
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"a payload could not be decrypted: {error.reason}"})
            return
        self._log_request(operation, len(payloads.payloads), HTTPStatus.OK)
        text = json_format.MessageToJson(Payloads(payloads=result))
        self._send(HTTPStatus.OK, text.encode(), content_type="application/json")

    def do_GET(self) -> None:
        self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST /encode or /decode"})

    # --- helpers ---------------------------------------------------------

    def _operation(self) -> str | None:
        """encode or decode from the path's last segment (/decode, /default/decode, /codec/encode?x=y)."""
        path = self.path.split("?", 1)[0].rstrip("/")
        last = path.rsplit("/", 1)[-1]
        return last if last in ("encode", "decode") else None

    def _host_allowed(self) -> bool:
        """Refuse a request whose Host this server does not go by: a page on another name whose DNS was
        rebound to this address would otherwise read decrypted payloads through the victim's browser."""
        if self.server.allows_host(self.headers.get("Host")):
            return True
        self._drain()
        self.close_connection = True
        self._send_json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "this server does not answer to that Host"})
        return False

    def _token_id(self) -> str:
        """Which token the caller presented, as a short digest: enough to tell callers apart in the log."""
        given = self.headers.get("Authorization") or ""
        if not given.startswith("Bearer "):
            return "none"
        return hashlib.sha256(given[len("Bearer "):].encode()).hexdigest()[:8]

    def _namespace(self) -> str | None:
        """The namespace the UI names (X-Namespace), else the CLI's templated path (/{namespace}/decode)."""
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        return self.headers.get("X-Namespace") or (parts[-2] if len(parts) >= 2 else None)

    def _authorized(self) -> bool:
        token = self.server.auth_token
        if not token:
            return True
        given = self.headers.get("Authorization") or ""
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def _drain(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _cors_headers(self) -> dict[str, str]:
        origin = self.headers.get("Origin")
        if not self.server.allows_origin(origin):
            return {}
        headers = {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
        if origin is not None and origin.rstrip("/") in self.server.ui_origins:
            # A named origin may send credentials (the UI's "include credentials" setting).
            headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"})
        else:
            # '*': any page may call, but never with the browser's credentials.
            headers["Access-Control-Allow-Origin"] = "*"
        return headers

    def _send_json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        if status >= 400:
            self._log_request(self._operation() or self.path[:80], None, status)
        self._send(status, json.dumps(body).encode(), content_type="application/json")

    def _send(self, status: HTTPStatus, body: bytes, *, content_type: str | None) -> None:
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for name, value in self._cors_headers().items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _log_request(self, operation: str, payloads: int | None, status: HTTPStatus) -> None:
        fields: dict[str, Any] = {
            "method": self.command,
            "status": int(status),
            "namespace": self._namespace(),
            "token_id": self._token_id(),
        }
        if payloads is not None:
            fields["payloads"] = payloads
        (log.info if status < 400 else log.warning)(f"codec {operation}", **fields)

    def log_message(self, format: str, *args: Any) -> None:  # http.server's own stderr lines: replaced by _log_request
        pass


def start_codec_server(
    keyring: KeyRing,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    ui_origins: Sequence[str] = DEFAULT_UI_ORIGINS,
    auth_token: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> CodecServer:
    """Bind and serve in a daemon thread; call .shutdown() then .server_close() to stop (port 0: any free port)."""
    server = CodecServer(
        (host, port), EncryptionCodec(keyring), ui_origins=ui_origins, auth_token=auth_token, allowed_hosts=allowed_hosts
    )
    threading.Thread(target=server.serve_forever, name="codec-server", daemon=True).start()
    return server


async def serve(
    keyring: KeyRing,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    ui_origins: Sequence[str] = DEFAULT_UI_ORIGINS,
    auth_token: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Run the codec server until cancelled (Ctrl-C)."""
    server = start_codec_server(
        keyring, host=host, port=port, ui_origins=ui_origins, auth_token=auth_token, allowed_hosts=allowed_hosts
    )
    log.info(
        "codec server listening",
        url=server.url,
        encryption=keyring.describe(),
        ui_origins=sorted(server.ui_origins),
        auth="bearer token" if auth_token else "none",
    )
    print(f"Codec server on {server.url} ({keyring.describe()})", flush=True)
    print(f"  Temporal UI: Settings (or the data-encoder icon) -> Codec Server endpoint {server.url}", flush=True)
    print(f"  temporal CLI: temporal workflow show --workflow-id complaint-C1 --codec-endpoint {server.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--ui-origin",
        action="append",
        metavar="ORIGIN",
        help="a Temporal UI origin allowed by CORS, e.g. https://temporal.example.com (repeatable; "
        f"default: {', '.join(DEFAULT_UI_ORIGINS)}; '*' allows any)",
    )
    parser.add_argument(
        "--auth-token",
        default=None,
        help=f"require `Authorization: Bearer <token>` (default: ${AUTH_TOKEN_ENV}, else no check; "
        "required to listen on an address other than loopback)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        metavar="HOST[:PORT]",
        help="a name the server is reached by, besides localhost and the address it listens on (repeatable); "
        "a request with any other Host header is refused",
    )


def keyring_or_error(settings) -> KeyRing:  # type: ignore[no-untyped-def]
    """The worker's keys; a codec server without keys would have nothing to decrypt."""
    from codec.keys import KEY_FILE_NAME, KEYS_ENV, keyring_for

    keyring = keyring_for(settings, create=False)
    if keyring is None:
        where = (
            f"and {settings.data_dir / KEY_FILE_NAME} does not exist yet (the worker or `make demo` creates it)"
            if settings.embedded_temporal and settings.encryption_keys is None
            else "(payloads are stored in plain text: there is nothing to decrypt)"
        )
        raise EncryptionKeyError(f"no encryption keys: {KEYS_ENV} is not set {where}")
    return keyring


async def run_from_args(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    keyring = keyring_or_error(settings)
    token = args.auth_token or os.environ.get(AUTH_TOKEN_ENV) or None
    await serve(
        keyring,
        host=args.host,
        port=args.port,
        ui_origins=args.ui_origin or DEFAULT_UI_ORIGINS,
        auth_token=token,
        allowed_hosts=args.allowed_host or (),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m codec.server [--host H] [--port P] [--ui-origin O]... [--auth-token T]`."""
    from config import SettingsError, load_settings
    from logs import configure_logging

    parser = argparse.ArgumentParser(prog="python -m codec.server", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_format)
        return asyncio.run(run_from_args(args, settings))
    except KeyboardInterrupt:
        return 0
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the port is taken, ...
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
