"""TLS and API-key settings (config.py, read by temporalio.envconfig) to Client.connect arguments
(stack/client.py), without a network, and the clear errors a worker or the CLI gives for a bad one."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from codec.encryption import EncryptionCodec
from config import SettingsError, load_settings
from stack import client as client_module
from stack.client import connect_client, connect_options
from tests.support.paths import REPO
from tests.support.settings import no_user_config_file

# A developer's own ~/.config/temporalio/temporal.toml must not give these tests an address or a key.
pytestmark = pytest.mark.usefixtures(no_user_config_file.__name__)

CLOUD = {"TEMPORAL_ADDRESS": "complaints.a1b2c.tmprl.cloud:7233", "TEMPORAL_NAMESPACE": "complaints.a1b2c"}
CERT = b"-----BEGIN CERTIFICATE-----\nMIIB...client\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIE...key\n-----END PRIVATE KEY-----\n"
CA = b"-----BEGIN CERTIFICATE-----\nMIIB...ca\n-----END CERTIFICATE-----\n"
CERT_VAR, KEY_VAR, CA_VAR = "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, str]:
    files = {"cert": ("client.pem", CERT), "key": ("client.key", KEY), "ca": ("ca.pem", CA)}
    paths = {}
    for name, (file_name, content) in files.items():
        path = tmp_path / file_name
        path.write_bytes(content)
        paths[name] = str(path)
    return paths


def options(env: dict[str, str]) -> dict:
    return connect_options(load_settings(env))


def test_no_security_settings_means_plain_grpc_as_for_a_local_server():
    assert options({}) == {}
    assert options({"TEMPORAL_ADDRESS": "temporal:7233"}) == {}


def test_mtls_reads_the_certificate_key_and_ca(pems):
    got = options({**CLOUD, "TEMPORAL_TLS_CLIENT_CERT_PATH": pems["cert"], "TEMPORAL_TLS_CLIENT_KEY_PATH": pems["key"]})
    assert got == {"tls": TLSConfig(client_cert=CERT, client_private_key=KEY)}
    got = options(
        {
            **CLOUD,
            "TEMPORAL_TLS_CLIENT_CERT_PATH": pems["cert"],
            "TEMPORAL_TLS_CLIENT_KEY_PATH": pems["key"],
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pems["ca"],
            "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
        }
    )
    assert got == {"tls": TLSConfig(client_cert=CERT, client_private_key=KEY, server_root_ca_cert=CA, domain="temporal.internal")}


def test_pem_data_in_variables_works_as_the_temporal_cli_reads_it(pems):
    got = options({**CLOUD, "TEMPORAL_TLS_CLIENT_CERT_DATA": CERT.decode(), "TEMPORAL_TLS_CLIENT_KEY_PATH": pems["key"]})
    assert got == {"tls": TLSConfig(client_cert=CERT, client_private_key=KEY)}
    with pytest.raises(SettingsError, match="TEMPORAL_TLS_SERVER_CA_CERT_DATA: the data is not a PEM file holding a certificate"):
        options({**CLOUD, "TEMPORAL_TLS_SERVER_CA_CERT_DATA": "not a certificate"})
    with pytest.raises(SettingsError, match="Cannot specify both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_CERT_DATA"):
        load_settings({**CLOUD, "TEMPORAL_TLS_CLIENT_CERT_PATH": pems["cert"], "TEMPORAL_TLS_CLIENT_CERT_DATA": CERT.decode()})


def test_an_api_key_implies_tls_with_the_system_roots():
    assert options({"TEMPORAL_ADDRESS": "us-east-1.aws.api.temporal.io:7233", "TEMPORAL_API_KEY": "key-123"}) == {
        "api_key": "key-123",
        "tls": True,
    }
    assert options({"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_TLS": "true"}) == {"tls": TLSConfig()}
    assert options({"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_TLS": "false"}) == {"tls": False}


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({CERT_VAR: "{cert}"}, f"{CERT_VAR} is set but {KEY_VAR} is not"),
        ({KEY_VAR: "{key}"}, f"{KEY_VAR} is set but {CERT_VAR} is not"),
        ({CERT_VAR: "/nowhere/client.pem", KEY_VAR: "{key}"}, f"{CERT_VAR}: no such file /nowhere/client.pem"),
        ({CA_VAR: "/nowhere/ca.pem"}, f"{CA_VAR}: no such file /nowhere/ca.pem"),
        ({CA_VAR: "{tmp}"}, f"{CA_VAR}: {{tmp}} is a directory, not a PEM file"),
        ({CERT_VAR: "{key}", KEY_VAR: "{key}"}, "is not a PEM file holding a certificate"),
        ({CERT_VAR: "{cert}", KEY_VAR: "{cert}"}, "is not a PEM file holding a private key"),
        ({"TEMPORAL_TLS": "false", "TEMPORAL_API_KEY": "k"}, "TEMPORAL_TLS is false but TEMPORAL_API_KEY is set: an API key is only sent over TLS"),
        ({"TEMPORAL_TLS": "false", CA_VAR: "{ca}"}, f"TEMPORAL_TLS is false but TLS files or a server name are set ({CA_VAR})"),
    ],
)
def test_bad_tls_settings_are_refused_naming_the_variable(pems, tmp_path, env, says):
    env = {**CLOUD, **{name: value.format(**pems, tmp=tmp_path) for name, value in env.items()}}
    with pytest.raises(SettingsError) as caught:
        options(env)
    assert says.format(tmp=tmp_path) in str(caught.value)


def test_a_bad_tls_file_in_a_profile_is_named_by_its_entry(tmp_path, pems):
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.prod]\naddress = "temporal:7233"\n[profile.prod.tls]\nclient_cert_path = "{pems["cert"]}"\n')
    env = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "prod"}
    with pytest.raises(SettingsError) as caught:
        options(env)
    assert str(caught.value).startswith(
        f"tls.client_cert_path of profile 'prod' in TEMPORAL_CONFIG_FILE {config} is set but tls.client_key_path of profile"
    )
    # The variable that overrides the profile's file is the one to fix.
    with pytest.raises(SettingsError, match=f"{CERT_VAR}: no such file /nowhere/client.pem"):
        options({**env, CERT_VAR: "/nowhere/client.pem", KEY_VAR: pems["key"]})


def test_tls_settings_without_a_server_address_are_refused(pems):
    with pytest.raises(SettingsError, match="TEMPORAL_ADDRESS is not: the embedded dev server takes neither"):
        options({"TEMPORAL_API_KEY": "k"})
    with pytest.raises(SettingsError, match="TEMPORAL_ADDRESS is not: the embedded dev server takes neither"):
        options({"TEMPORAL_TLS": "true"})
    assert options({"TEMPORAL_TLS": "false"}) == {"tls": False}
    # envconfig would take any other value, "off" too, as "TLS on".
    for value in ("maybe", "off", "no"):
        with pytest.raises(SettingsError, match=f"TEMPORAL_TLS must be true or false \\(got '{value}'\\)"):
            load_settings({"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_TLS": value})


def test_the_api_key_never_shows_in_the_settings_repr():
    assert "key-123" not in repr(load_settings({"TEMPORAL_API_KEY": "key-123"}))


async def test_connect_client_passes_tls_api_key_and_the_encrypting_converter(monkeypatch, pems):
    seen: dict = {}

    async def fake_connect(target, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs, target=target)
        return "client"

    monkeypatch.setattr(client_module.Client, "connect", staticmethod(fake_connect))
    settings = load_settings(
        {
            **CLOUD,
            "TEMPORAL_API_KEY": "key-123",
            CA_VAR: pems["ca"],
            "COMPLAINTS_ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",
        }
    )
    assert await connect_client(settings.client_address, settings.namespace, settings=settings) == "client"
    assert seen["target"] == "complaints.a1b2c.tmprl.cloud:7233" and seen["namespace"] == "complaints.a1b2c"
    assert seen["api_key"] == "key-123" and seen["tls"] == TLSConfig(server_root_ca_cert=CA)
    codec = seen["data_converter"].payload_codec
    assert isinstance(codec, EncryptionCodec) and codec.keyring is not None and codec.keyring.current_id == "k1"


async def test_the_worker_exits_2_with_one_line_for_a_bad_setting(tmp_path: Path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),  # no temporal.toml of the developer's
        "COMPLAINTS_DATA_DIR": str(tmp_path / "data"),
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "COMPLAINTS_ENCRYPTION_KEYS": "off",  # past the keys check (tests/security/test_worker_settings.py)
        CERT_VAR: str(tmp_path / "missing.pem"),
        KEY_VAR: str(tmp_path / "missing.key"),
        "LOG_FORMAT": "console",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    text = (out + err).decode()
    assert process.returncode == 2, text
    assert "worker not started: a setting is invalid" in text and f"{CERT_VAR}: no such file {tmp_path}/missing.pem" in text
    assert "Traceback" not in text


async def test_the_cli_says_which_setting_is_wrong(monkeypatch, capsys):
    import starter

    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")
    monkeypatch.setenv("COMPLAINTS_ENCRYPTION_KEYS", "k1:c2hvcnQ=")
    assert await starter.amain(["show", "C1"]) == 2
    assert "error: COMPLAINTS_ENCRYPTION_KEYS, entry 1 (k1): the key is 5 bytes; AES-256-GCM needs 32" in capsys.readouterr().err


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def __getattr__(self, level: str):  # type: ignore[no-untyped-def]
        return lambda event, **fields: self.lines.append((level, event, fields))


def test_the_worker_warns_once_when_a_real_server_gets_plain_payloads(monkeypatch):
    import worker
    from codec.keys import keyring_for, parse_keys

    recorded = RecordingLog()
    monkeypatch.setattr(worker, "log", recorded)
    settings = load_settings({"TEMPORAL_ADDRESS": "temporal:7233"})
    worker.log_payload_protection(keyring_for(settings), settings)
    [(level, event, _)] = recorded.lines
    assert level == "warning" and event.startswith("payloads are stored in plain text") and "COMPLAINTS_ENCRYPTION_KEYS" in event

    recorded.lines.clear()
    key = "k7:" + "B" * 43 + "="
    worker.log_payload_protection(parse_keys(key), load_settings({"TEMPORAL_ADDRESS": "temporal:7233", "COMPLAINTS_ENCRYPTION_KEYS": key}))
    [(level, event, fields)] = recorded.lines
    assert (level, event) == ("info", "payloads encrypted") and "key k7" in fields["encryption"]
    assert "B" * 43 not in repr(recorded.lines)
