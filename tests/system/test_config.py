"""Settings from the environment: defaults, overrides and a clear error for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import DEFAULT_NAMESPACE, DEFAULT_WORKFLOW_CACHE, SettingsError, load_settings
from stack.client import connect_options
from tests.support.settings import no_user_config_file  # noqa: F401 (autouse)

PROFILES = """
[profile.default]
address = "localhost:7233"

[profile.cloud]
address = "complaints.a1b2c.tmprl.cloud:7233"
namespace = "complaints.a1b2c"
api_key = "profile-key"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES)
    return path


def test_the_workflow_cache_defaults_and_can_be_set():
    assert load_settings({}).workflow_cache == DEFAULT_WORKFLOW_CACHE
    assert load_settings({"COMPLAINTS_WORKFLOW_CACHE": "750"}).workflow_cache == 750


@pytest.mark.parametrize("raw", ["0", "-3", "lots", "1.5"])
def test_a_bad_workflow_cache_is_refused_by_name(raw):
    with pytest.raises(ValueError, match=f"COMPLAINTS_WORKFLOW_CACHE must be a whole number of at least 1 \\(got '{raw}'\\)"):
        load_settings({"COMPLAINTS_WORKFLOW_CACHE": raw})


def test_without_an_address_the_embedded_dev_server_is_used():
    settings = load_settings({})
    assert settings.embedded_temporal and settings.client_address == "127.0.0.1:7233"
    assert settings.namespace == DEFAULT_NAMESPACE
    # Compose passes an unset `${VAR:-}` on as an empty variable: still unset.
    assert load_settings({"TEMPORAL_ADDRESS": "", "TEMPORAL_NAMESPACE": "", "TEMPORAL_TLS": ""}).embedded_temporal
    # No config file is no error: most set-ups have none.
    assert load_settings({"TEMPORAL_CONFIG_FILE": "/nowhere/temporal.toml"}).embedded_temporal


def test_a_profile_gives_the_address_namespace_and_api_key(config_file):
    settings = load_settings({"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "cloud"})
    assert not settings.embedded_temporal
    assert (settings.client_address, settings.namespace) == ("complaints.a1b2c.tmprl.cloud:7233", "complaints.a1b2c")
    assert connect_options(settings) == {"api_key": "profile-key", "tls": True}
    assert "profile-key" not in repr(settings)
    # Without TEMPORAL_PROFILE, the file's default profile, as for the temporal CLI.
    assert load_settings({"TEMPORAL_CONFIG_FILE": str(config_file)}).client_address == "localhost:7233"


def test_a_variable_overrides_the_profile_as_for_the_temporal_cli(config_file):
    env = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "cloud"}
    settings = load_settings({**env, "TEMPORAL_ADDRESS": "temporal.internal:7233", "TEMPORAL_API_KEY": "env-key"})
    assert (settings.client_address, settings.namespace) == ("temporal.internal:7233", "complaints.a1b2c")
    assert connect_options(settings) == {"api_key": "env-key", "tls": True}
    with pytest.raises(SettingsError, match="TEMPORAL_TLS is false but TEMPORAL_API_KEY is set"):
        connect_options(load_settings({**env, "TEMPORAL_TLS": "false", "TEMPORAL_API_KEY": "env-key"}))
    with pytest.raises(SettingsError, match="TEMPORAL_TLS is false but api_key of profile 'cloud' in TEMPORAL_CONFIG_FILE"):
        connect_options(load_settings({**env, "TEMPORAL_TLS": "false"}))


def test_a_profile_that_cannot_be_loaded_is_refused_by_name(config_file, tmp_path):
    with pytest.raises(SettingsError, match=f"profile 'staging' in TEMPORAL_CONFIG_FILE {config_file}\\): Profile 'staging' not found"):
        load_settings({"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "staging"})
    with pytest.raises(SettingsError, match="TEMPORAL_CONFIG_FILE /nowhere/temporal.toml \\(no such file\\)\\): Profile 'cloud' not found"):
        load_settings({"TEMPORAL_CONFIG_FILE": "/nowhere/temporal.toml", "TEMPORAL_PROFILE": "cloud"})
    broken = tmp_path / "broken.toml"
    broken.write_text("[profile.default\naddress = ")
    with pytest.raises(SettingsError, match="cannot load the Temporal connection settings .*TOML parse error") as caught:
        load_settings({"TEMPORAL_CONFIG_FILE": str(broken)})
    assert "\n" not in str(caught.value)
