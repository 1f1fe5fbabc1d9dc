"""Actor assertions and identity settings, pure: every check of identity.assertion.verify, the JWKS loading
of identity.keys, and the modes of identity.setup."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from config import load_settings
from identity.assertion import MAX_LIFETIME, AssertionRefused, payload_digest, sign, verify
from identity.keys import IdentityKeyError, load_trusted_issuers, new_signing_key, read_signing_key, signing_key_json
from identity.setup import identity_mode, signing_key_for, worker_identity

KEY = new_signing_key("idp", "k1")
OTHER = new_signing_key("idp", "k1")
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)
NOTE = {"actor": "a.patel", "text": "Called the bank", "request_id": "r-1"}
WF = "complaint-C1"


def token(payload=NOTE, *, key=KEY, sub=None, wf=WF, act="add_note", now=NOW, lifetime=MAX_LIFETIME) -> str:  # type: ignore[no-untyped-def]
    return sign(
        key.private_key, issuer=key.issuer, key_id=key.key_id, sub=sub or payload["actor"], workflow_id=wf,
        action=act, payload=payload, now=now, lifetime=lifetime,
    )  # fmt: skip


def check(tok, payload=NOTE, *, when=NOW, actor="a.patel"):  # type: ignore[no-untyped-def]
    return verify(tok, KEY.trusted_keys(), workflow_id=WF, action="add_note", payload=payload, now=when, actor=actor)


def test_a_good_assertion_names_who_vouched():
    verified = check(token())
    assert (verified.sub, verified.as_record()) == ("a.patel", {"iss": "idp", "kid": "k1"})


def test_the_digest_is_of_the_json_object_whoever_serialized_it():
    assert payload_digest({"b": 1, "a": [1, "é"]}) == payload_digest(json.loads('{ "a": [1, "\\u00e9"], "b": 1 }'))
    assert payload_digest({"a": 1}) != payload_digest({"a": 2})


@pytest.mark.parametrize(
    ("tok", "payload", "when", "actor", "check_name"),
    [
        (None, NOTE, NOW, "a.patel", "no assertion"),
        ("not-a-jws", NOTE, NOW, "a.patel", "malformed"),
        (token(key=new_signing_key("elsewhere", "x")), NOTE, NOW, "a.patel", "unknown key"),
        (token(key=OTHER), NOTE, NOW, "a.patel", "bad signature"),
        (token(), NOTE, NOW + MAX_LIFETIME, "a.patel", "expired"),
        (token(now=NOW + timedelta(minutes=2)), NOTE, NOW, "a.patel", "not yet valid"),
        (token(lifetime=MAX_LIFETIME + timedelta(seconds=1)), NOTE, NOW, "a.patel", "too long-lived"),
        (token(wf="complaint-C2"), NOTE, NOW, "a.patel", "another case"),
        (token(act="withdraw"), NOTE, NOW, "a.patel", "another action"),
        (token(), {**NOTE, "text": "Refund approved"}, NOW, "a.patel", "another payload"),
        (token(sub="m.okafor"), NOTE, NOW, "a.patel", "actor mismatch"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else None,
)
def test_each_check_refuses_naming_itself(tok, payload, when, actor, check_name):
    with pytest.raises(AssertionRefused) as refused:
        check(tok, payload, when=when, actor=actor)
    assert refused.value.check == check_name


def test_a_trusted_issuers_jwks_file_is_read_and_a_bad_entry_named(tmp_path: Path):
    jwks = tmp_path / "idp.jwks.json"
    jwks.write_text(json.dumps(KEY.public_jwks()))
    keys = load_trusted_issuers(f"idp={jwks}")
    assert check(token()).iss == "idp" and set(keys) == {("idp", "k1")}
    assert verify(token(), keys, workflow_id=WF, action="add_note", payload=NOTE, now=NOW, actor="a.patel").kid == "k1"
    with pytest.raises(IdentityKeyError, match="entry 1: expected"):
        load_trusted_issuers("idp")
    with pytest.raises(IdentityKeyError, match="cannot read"):
        load_trusted_issuers(f"idp={tmp_path / 'missing.json'}")
    (tmp_path / "empty.json").write_text('{"keys": []}')
    with pytest.raises(IdentityKeyError, match="no keys"):
        load_trusted_issuers(f"idp={tmp_path / 'empty.json'}")


def test_a_signing_key_file_round_trips_and_a_bad_one_is_named(tmp_path: Path):
    path = tmp_path / "key.json"
    path.write_text(signing_key_json(KEY))
    loaded = read_signing_key(path)
    assert (loaded.issuer, loaded.key_id) == ("idp", "k1") and check(token(key=loaded)).sub == "a.patel"
    path.write_text("{}")
    with pytest.raises(IdentityKeyError, match="not a signing key"):
        read_signing_key(path)


def test_a_real_server_means_signed_mode_and_signed_mode_needs_a_trusted_issuer(tmp_path: Path):
    embedded = load_settings({"COMPLAINTS_DATA_DIR": str(tmp_path)})
    real = load_settings({"TEMPORAL_ADDRESS": "temporal.example.com:7233", "COMPLAINTS_DATA_DIR": str(tmp_path)})
    assert identity_mode(embedded) == "trusted-callers" and identity_mode(real) == "signed"
    with pytest.raises(IdentityKeyError, match="needs COMPLAINTS_SIGNING_KEY"):
        worker_identity(real)
    key_file = tmp_path / "engine.json"
    key_file.write_text(signing_key_json(new_signing_key("engine", "e1")))
    jwks = tmp_path / "idp.json"
    jwks.write_text(json.dumps(KEY.public_jwks()))
    configured = load_settings(
        {"TEMPORAL_ADDRESS": "t:7233", "COMPLAINTS_SIGNING_KEY": str(key_file), "COMPLAINTS_TRUSTED_ISSUERS": f"idp={jwks}"}
    )
    assert set(worker_identity(configured).trusted) == {("engine", "e1"), ("idp", "k1")}
    with pytest.raises(IdentityKeyError, match="must be one of"):
        identity_mode(load_settings({"COMPLAINTS_IDENTITY": "open"}))
    # The embedded stack in signed mode trusts its development issuer, whose key its process makes.
    signed_embedded = load_settings({"COMPLAINTS_IDENTITY": "signed", "COMPLAINTS_DATA_DIR": str(tmp_path)})
    assert signing_key_for(signed_embedded) is None  # a client never makes the key
    identity = worker_identity(signed_embedded)
    dev = signing_key_for(signed_embedded)
    assert identity.mode == "signed" and dev is not None and set(identity.trusted) == {(dev.issuer, dev.key_id)}
