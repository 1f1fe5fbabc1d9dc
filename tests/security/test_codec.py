"""The payload codec (codec/): keys, AES-GCM round trips, rotation, plain pass-through, clear errors,
the key file of the embedded stack, and the codec server over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from codec.encryption import ENCODING, KEY_ID_METADATA, EncryptionCodec, make_data_converter
from codec.keys import KEY_FILE_NAME, EncryptionKeyError, keyring_for, load_key_file, new_key_entry, parse_keys
from codec.server import keyring_or_error, start_codec_server
from tests.support.http import http_call
from config import load_settings
from schemas import ComplaintIntake

K1 = new_key_entry("k1")
K2 = new_key_entry("k2")
INTAKE = {
    "complaint_id": "C-CODEC-1",
    "customer": {"customer_id": "cu-9", "name": "Ottilie Brannigan", "email": "ottilie@example.org", "phone": "+44 7700 900456"},
    "channel": "email",
    "category": "billing",
    "severity": "high",
    "summary": "Charged twice",
    "details": "My flat is 4B, 12 Larkspur Road; please call after six.",
}


def plain(value) -> Payload:  # type: ignore[no-untyped-def]
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


# --- keys ------------------------------------------------------------------------


def test_keys_parse_in_order_and_the_first_encrypts():
    ring = parse_keys(f"{K2}, {K1}")
    assert ring.ids == ("k2", "k1") and ring.current_id == "k2" and len(ring.current_key) == 32
    assert ring.key("k1") == base64.b64decode(K1.split(":", 1)[1])
    assert ring.key("k9") is None
    assert "k2" in ring.describe() and K2.split(":", 1)[1] not in repr(ring) + ring.describe()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "holds no keys"),
        ("k1", "entry 1: expected `<key-id>:<base64"),
        ("k1:not base64!!", "entry 1 (k1): the key is not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "the key is 5 bytes; AES-256-GCM needs 32"),
        (f"{K1},{K1}", "key id k1 is listed twice"),
        (f"bad id:{K1.split(':', 1)[1]}", "key id 'bad id' must be"),
    ],
    ids=["empty", "no-key", "not-base64", "short", "listed-twice", "bad-id"],  # K1 is random: ids by name
)
def test_a_bad_key_list_is_refused_naming_the_variable_and_entry(text, says):
    with pytest.raises(EncryptionKeyError) as caught:
        parse_keys(text)
    assert "COMPLAINTS_ENCRYPTION_KEYS" in str(caught.value) and says in str(caught.value)


def test_url_safe_and_unpadded_base64_keys_are_accepted():
    raw = os.urandom(32)
    ring = parse_keys("u1:" + base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert ring.key("u1") == raw


# --- the codec ---------------------------------------------------------------------


async def test_round_trip_hides_the_plain_text_and_names_the_key():
    codec = EncryptionCodec(parse_keys(K1))
    original = plain(ComplaintIntake.model_validate(INTAKE))
    [encrypted] = await codec.encode([original])
    assert encrypted.metadata["encoding"] == ENCODING and encrypted.metadata[KEY_ID_METADATA] == b"k1"
    for secret in ("Ottilie", "ottilie@example.org", "900456", "Larkspur", "json/plain"):
        assert secret.encode() not in encrypted.SerializeToString()
    assert await codec.decode([encrypted]) == [original]
    # A random nonce each time: the same payload never encrypts the same way twice.
    [again] = await codec.encode([original])
    assert again.data != encrypted.data


async def test_rotation_old_payloads_still_decode_and_new_ones_use_the_new_key():
    old = EncryptionCodec(parse_keys(K1))
    [written_before] = await old.encode([plain({"name": "before rotation"})])
    rotated = EncryptionCodec(parse_keys(f"{K2},{K1}"))
    [written_after] = await rotated.encode([plain({"name": "after rotation"})])
    assert written_after.metadata[KEY_ID_METADATA] == b"k2"
    assert await rotated.decode([written_before, written_after]) == [plain({"name": "before rotation"}), plain({"name": "after rotation"})]
    # Dropping the old key too early is a clear error, not garbage.
    with pytest.raises(EncryptionKeyError) as caught:
        await EncryptionCodec(parse_keys(K2)).decode([written_before])
    message = str(caught.value)
    assert "key id 'k1'" in message and "COMPLAINTS_ENCRYPTION_KEYS" in message and "k2" in message


async def test_without_keys_plain_passes_and_an_encrypted_payload_is_a_clear_error():
    [encrypted] = await EncryptionCodec(parse_keys(K1)).encode([plain({"a": 1})])
    keyless = EncryptionCodec(None)
    assert await keyless.encode([plain({"a": 1})]) == [plain({"a": 1})]
    with pytest.raises(EncryptionKeyError, match="key id 'k1', but this process has no encryption keys; add that key to COMPLAINTS_ENCRYPTION_KEYS"):
        await keyless.decode([encrypted])


async def test_plain_payloads_pass_through_decode_so_hand_written_cli_json_works():
    codec = EncryptionCodec(parse_keys(K1))
    hand_written = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(INTAKE).encode())
    binary_null = Payload(metadata={"encoding": b"binary/null"})
    assert await codec.decode([hand_written, binary_null]) == [hand_written, binary_null]
    converter = make_data_converter(parse_keys(K1))
    [decoded] = await converter.decode([hand_written], [ComplaintIntake])
    assert decoded.customer.name == "Ottilie Brannigan"


async def test_a_payload_under_the_same_id_but_another_key_or_altered_is_refused():
    [encrypted] = await EncryptionCodec(parse_keys(K1)).encode([plain({"a": 1})])
    impostor = EncryptionCodec(parse_keys("k1:" + K2.split(":", 1)[1]))
    with pytest.raises(EncryptionKeyError, match="does not decrypt with the key of that id"):
        await impostor.decode([encrypted])
    tampered = Payload()
    tampered.CopyFrom(encrypted)
    tampered.data = encrypted.data[:-1] + bytes([encrypted.data[-1] ^ 1])
    with pytest.raises(EncryptionKeyError, match="or the payload was altered"):
        await EncryptionCodec(parse_keys(K1)).decode([tampered])


async def test_the_converter_round_trips_models_and_encrypts_failure_messages():
    converter = make_data_converter(parse_keys(K1))
    intake = ComplaintIntake.model_validate(INTAKE)
    payloads = await converter.encode([intake])
    assert all(p.metadata["encoding"] == ENCODING for p in payloads)
    assert (await converter.decode(payloads, [ComplaintIntake]))[0] == intake

    failure = Failure()
    await converter.encode_failure(ApplicationError("phone is already known: '+44 7700 900456'", type="InvalidCommand"), failure)
    assert b"900456" not in failure.SerializeToString()
    error = await converter.decode_failure(failure)
    assert isinstance(error, ApplicationError) and error.type == "InvalidCommand" and "+44 7700 900456" in error.message


# --- which keys a process uses ------------------------------------------------------


def test_the_embedded_stack_creates_one_private_key_file_that_every_process_shares(tmp_path: Path):
    settings = load_settings({"COMPLAINTS_DATA_DIR": str(tmp_path / "data")})
    assert keyring_for(settings, create=False) is None  # nothing made when not asked
    with ThreadPoolExecutor(8) as pool:  # processes racing at start-up all end with the same key
        rings = list(pool.map(lambda _: keyring_for(settings), range(8)))
    path = tmp_path / "data" / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len({ring.keys for ring in rings}) == 1 and rings[0].source == str(path)
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE_NAME]  # no temporary files left
    assert load_key_file(path, create=False) == rings[0]


def test_keys_from_the_environment_win_off_turns_encryption_off_and_a_real_server_has_none_by_default(tmp_path: Path):
    data = str(tmp_path / "data")
    ring = keyring_for(load_settings({"COMPLAINTS_DATA_DIR": data, "COMPLAINTS_ENCRYPTION_KEYS": f"{K2},{K1}"}))
    assert ring is not None and ring.ids == ("k2", "k1") and ring.source == "COMPLAINTS_ENCRYPTION_KEYS"
    assert keyring_for(load_settings({"COMPLAINTS_DATA_DIR": data, "COMPLAINTS_ENCRYPTION_KEYS": "off"})) is None
    assert keyring_for(load_settings({"COMPLAINTS_DATA_DIR": data, "TEMPORAL_ADDRESS": "temporal:7233"})) is None
    assert not (tmp_path / "data").exists()  # none of these wrote a key file
    with pytest.raises(EncryptionKeyError, match="no encryption keys"):
        keyring_or_error(load_settings({"COMPLAINTS_DATA_DIR": data}))
    assert K1.split(":", 1)[1] not in repr(load_settings({"COMPLAINTS_ENCRYPTION_KEYS": K1}))


# --- the codec server, over real HTTP ---------------------------------------------------


@pytest.fixture
def codec_server():
    server = start_codec_server(parse_keys(f"{K2},{K1}"), port=0, auth_token=None)
    yield server
    server.shutdown()
    server.server_close()


async def test_codec_server_encodes_and_decodes_in_the_protocol_s_json(codec_server):
    from google.protobuf import json_format
    from temporalio.api.common.v1 import Payloads

    original = plain(ComplaintIntake.model_validate(INTAKE))
    body = json_format.MessageToJson(Payloads(payloads=[original])).encode()
    headers = {"Content-Type": "application/json", "X-Namespace": "default", "Origin": "http://localhost:8233"}
    status, response_headers, encoded = await asyncio.to_thread(http_call, f"{codec_server.url}/encode", body, headers)
    assert status == 200 and response_headers["Content-Type"] == "application/json"
    assert response_headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
    assert b"Ottilie" not in encoded
    as_json = json.loads(encoded)
    assert base64.b64decode(as_json["payloads"][0]["metadata"]["encoding"]) == ENCODING
    assert base64.b64decode(as_json["payloads"][0]["metadata"][KEY_ID_METADATA]) == b"k2"

    # The CLI's templated endpoint: /{namespace}/decode.
    status, _, decoded = await asyncio.to_thread(http_call, f"{codec_server.url}/default/decode", encoded, headers)
    assert status == 200
    assert json_format.Parse(decoded, Payloads()).payloads[0] == original
    assert json.loads(base64.b64decode(json.loads(decoded)["payloads"][0]["data"]))["customer"]["name"] == "Ottilie Brannigan"

    # Payloads written with the older key, and plain ones, decode too.
    [old] = await EncryptionCodec(parse_keys(K1)).encode([original])
    mixed = json_format.MessageToJson(Payloads(payloads=[old, original])).encode()
    status, _, decoded = await asyncio.to_thread(http_call, f"{codec_server.url}/decode", mixed, headers)
    assert status == 200 and list(json_format.Parse(decoded, Payloads()).payloads) == [original, original]


async def test_codec_server_answers_cors_preflight_for_the_ui_origin_only(codec_server):
    preflight = {
        "Origin": "http://127.0.0.1:8233",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    status, headers, _ = await asyncio.to_thread(http_call, f"{codec_server.url}/decode", b"", preflight, "OPTIONS")
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8233"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert {"content-type", "x-namespace"} <= {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert headers["Access-Control-Allow-Credentials"] == "true"

    status, headers, _ = await asyncio.to_thread(
        http_call, f"{codec_server.url}/decode", b"", {**preflight, "Origin": "https://evil.example"}, "OPTIONS"
    )
    assert "Access-Control-Allow-Origin" not in headers


async def test_codec_server_errors_are_json_and_say_what_is_wrong(codec_server):
    status, _, body = await asyncio.to_thread(http_call, f"{codec_server.url}/decode", b"not json")
    assert status == 400 and "proto3 JSON" in json.loads(body)["error"]
    status, _, body = await asyncio.to_thread(http_call, f"{codec_server.url}/elsewhere", b"{}")
    assert status == 404
    [unknown] = await EncryptionCodec(parse_keys(new_key_entry("k9"))).encode([plain({"a": 1})])
    from google.protobuf import json_format
    from temporalio.api.common.v1 import Payloads

    body = json_format.MessageToJson(Payloads(payloads=[unknown])).encode()
    status, _, answer = await asyncio.to_thread(http_call, f"{codec_server.url}/decode", body)
    assert status == 400 and "key id 'k9'" in json.loads(answer)["error"]


async def test_codec_server_with_a_token_refuses_requests_without_it():
    server = start_codec_server(parse_keys(K1), port=0, auth_token="s3cret")
    try:
        status, _, _ = await asyncio.to_thread(http_call, f"{server.url}/decode", b'{"payloads": []}')
        assert status == 401
        status, _, body = await asyncio.to_thread(
            http_call, f"{server.url}/decode", b'{"payloads": []}', {"Authorization": "Bearer s3cret"}
        )
        assert status == 200 and json.loads(body) == {}
    finally:
        server.shutdown()
        server.server_close()


async def test_a_client_reads_the_embedded_key_file_but_never_makes_one(tmp_path: Path, monkeypatch):
    """Only the process running the embedded stack makes the key; a client elsewhere sends plain JSON instead."""
    from stack import client as client_module

    converters = []

    async def fake_connect(target, **kwargs):  # type: ignore[no-untyped-def]
        converters.append(kwargs["data_converter"])

    monkeypatch.setattr(client_module.Client, "connect", staticmethod(fake_connect))
    settings = load_settings({"COMPLAINTS_DATA_DIR": str(tmp_path / "data")})
    await client_module.connect_client("127.0.0.1:7233", settings=settings)
    assert isinstance(converters[0].payload_codec, EncryptionCodec) and converters[0].payload_codec.keyring is None
    assert not (tmp_path / "data").exists()
    made = keyring_for(settings, create=True)  # what stack.running_stack does
    assert made is not None and re.fullmatch(r"local-\d{8}-[0-9a-f]{6}", made.current_id)
    await client_module.connect_client("127.0.0.1:7233", settings=settings)
    assert converters[1].payload_codec.keyring == made
    assert client_module.data_converter_for(settings).payload_codec.keyring == made
