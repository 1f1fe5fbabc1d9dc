"""The codec server is no decryption oracle (issue 14.4): who may reach it, from which page, and what it says."""

from __future__ import annotations

import base64
import json

import pytest
from structlog.testing import capture_logs

from codec import parse_keys
from codec.keys import new_key_entry
from codec.server import CodecServerError, start_codec_server
from tests.support.http import http_call

KEYS = parse_keys(new_key_entry("codec-test"))
EMPTY = b'{"payloads": []}'


def post(server, body: bytes = EMPTY, headers: dict[str, str] | None = None, path: str = "/decode"):  # type: ignore[no-untyped-def]
    return http_call(server.url + path, body, headers)


@pytest.fixture
def serving(request):  # type: ignore[no-untyped-def]
    servers = []

    def start(**options):  # type: ignore[no-untyped-def]
        server = start_codec_server(KEYS, port=0, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_it_refuses_to_listen_beyond_loopback_without_a_token(serving):
    with pytest.raises(CodecServerError, match="refusing to listen on 0.0.0.0 without an auth token"):
        serving(host="0.0.0.0")
    assert serving(host="0.0.0.0", auth_token="s3cret").url.startswith("http://0.0.0.0:")
    assert serving(host="127.0.0.1").url.startswith("http://127.0.0.1:")


def test_a_request_for_another_host_is_refused_dns_rebinding(serving):
    server = serving()
    port = server.server_address[1]
    status, _, body = post(server, headers={"Host": "attacker.example"})
    assert status == 421 and b"does not answer to that Host" in body
    status, _, _ = post(server, headers={"Host": f"attacker.example:{port}"})
    assert status == 421
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        assert post(server, headers={"Host": host})[0] == 200, host
    named = serving(allowed_hosts=["codec.internal"])
    assert post(named, headers={"Host": f"codec.internal:{named.server_address[1]}"})[0] == 200


def test_credentials_are_never_allowed_with_any_origin(serving):
    anyone = serving(ui_origins=["*"])
    _, headers, _ = post(anyone, headers={"Origin": "https://evil.example"})
    assert headers.get("Access-Control-Allow-Origin") == "*"
    assert "Access-Control-Allow-Credentials" not in headers
    named = serving(ui_origins=["https://ui.example.com"])
    _, headers, _ = post(named, headers={"Origin": "https://ui.example.com"})
    assert headers["Access-Control-Allow-Origin"] == "https://ui.example.com"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    _, headers, _ = post(named, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers


def test_an_error_names_no_key_file_and_each_decode_logs_the_token_and_namespace(serving):
    server = serving(auth_token="s3cret")
    payload = {
        "metadata": {
            "encoding": base64.b64encode(b"binary/encrypted").decode(),
            "encryption-key-id": base64.b64encode(b"nobody-s-key").decode(),
        },
        "data": base64.b64encode(b"\x00" * 40).decode(),
    }
    auth = {"Authorization": "Bearer s3cret"}
    with capture_logs() as logged:
        status, _, body = post(server, json.dumps({"payloads": [payload]}).encode(), auth, path="/complaints/decode")
        assert post(server, EMPTY, {**auth, "X-Namespace": "default"})[0] == 200
    assert status == 400
    error = json.loads(body)["error"]
    assert error == "a payload could not be decrypted: unknown key id 'nobody-s-key'"
    assert KEYS.source not in error and "/" not in error
    decodes = [line for line in logged if line["event"] == "codec decode"]
    assert [(line["namespace"], line["status"]) for line in decodes] == [("complaints", 400), ("default", 200)]
    token_ids = {line["token_id"] for line in decodes}
    assert len(token_ids) == 1 and "none" not in token_ids and "s3cret" not in json.dumps(decodes)
