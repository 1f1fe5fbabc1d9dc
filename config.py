"""Where cases live: every setting comes from the environment (README, "Settings").

The Temporal connection (address, namespace, TLS, API key) is read by
temporalio.envconfig, as the `temporal` CLI reads it: the TEMPORAL_*
variables over a profile of a TOML config file (TEMPORAL_CONFIG_FILE,
TEMPORAL_PROFILE, default ~/.config/temporalio/temporal.toml), so one set of
settings serves the CLI and the engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.envconfig import ClientConfigProfile

DEFAULT_TASK_QUEUE = "complaints"
DEFAULT_NAMESPACE = "default"
# The embedded dev server listens here when no address is configured (TEMPORAL_ADDRESS or a profile's).
EMBEDDED_TEMPORAL_PORT = 7233
EMBEDDED_TEMPORAL_UI_PORT = 8233
# The deadline policies shipped beside this module (installed with it as package data).
DEFAULT_POLICIES_PATH = Path(__file__).resolve().parent / "policies" / "policies.toml"


# Workflows a worker keeps in memory. Escalations of many cases can fall due
# together; a case not in the cache replays its history before it can escalate
# (bench/escalations/: with 1,000 promises due at once, a cache of 500 made
# the worker spend about 3x the CPU). About 0.25 MiB per cached case.
DEFAULT_WORKFLOW_CACHE = 2_000


class SettingsError(ValueError):
    """A setting from the environment cannot be used; the message names the variable and what would be valid."""


# The TEMPORAL_TLS values envconfig understands: it takes any other value, even "off", as "TLS on".
TLS_FLAG_VALUES = ("true", "false", "1", "0")


@dataclass(frozen=True)
class Settings:
    temporal_address: str | None
    namespace: str
    task_queue: str
    database_url: str | None
    data_dir: Path
    log_format: str
    # The schema owner's connection (DATABASE_OWNER_URL): migrations run as it, and DATABASE_URL's role gets
    # only what the worker needs (activities/db.py prepare_database). None: DATABASE_URL's role does both.
    database_owner_url: str | None = field(default=None, repr=False)
    # The deadline policies file (activities/policies.py); COMPLAINTS_POLICIES overrides it.
    policies_path: Path = DEFAULT_POLICIES_PATH
    # Workflows the worker keeps cached (COMPLAINTS_WORKFLOW_CACHE).
    workflow_cache: int = DEFAULT_WORKFLOW_CACHE
    # Payload encryption keys (COMPLAINTS_ENCRYPTION_KEYS, see codec/keys.py); None: the default for the stack.
    encryption_keys: str | None = field(default=None, repr=False)
    # Signed actors (identity/setup.py): COMPLAINTS_IDENTITY, COMPLAINTS_TRUSTED_ISSUERS, COMPLAINTS_SIGNING_KEY,
    # COMPLAINTS_SIGNING_COMMAND.
    identity_mode: str | None = None
    trusted_issuers: str | None = None
    signing_key_path: str | None = None
    signing_command: str | None = field(default=None, repr=False)
    # The connection's TLS, API key and gRPC metadata for a real server, as envconfig loaded them
    # (stack/client.py connect_options checks and reads them; README "Customer data and security").
    # Not in the repr: it holds the API key.
    temporal: ClientConfigProfile = field(default_factory=ClientConfigProfile, repr=False)
    # The TEMPORAL_* variables that are set, so that an error names the variable the user set rather than
    # the profile entry it overrode.
    temporal_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def client_address(self) -> str:
        """The address clients use: the real server's, or the embedded dev server's."""
        return self.temporal_address or f"127.0.0.1:{EMBEDDED_TEMPORAL_PORT}"

    def temporal_setting(self, entry: str, *variables: str) -> str:
        """The name of a connection setting for an error: the first of `variables` that is set, else the
        profile's `entry` ("tls.client_cert_path") and the file it is in."""
        for variable in variables:
            if variable in self.temporal_env:
                return variable
        return f"{entry} of {_profile_source(self.temporal_env)}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    # An empty variable is unset, as for the project's own: Compose passes `${VAR:-}` through as "", which
    # envconfig would read as a setting (TEMPORAL_TLS="" turns TLS on).
    temporal_env = {name: value for name, value in env.items() if name.startswith("TEMPORAL_") and value}
    temporal = load_temporal_profile(temporal_env)
    return Settings(
        temporal_address=temporal.address or None,
        namespace=temporal.namespace or DEFAULT_NAMESPACE,
        task_queue=env.get("COMPLAINTS_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
        database_url=env.get("DATABASE_URL") or None,
        database_owner_url=env.get("DATABASE_OWNER_URL") or None,
        data_dir=Path(env.get("COMPLAINTS_DATA_DIR") or "data").resolve(),
        # "console" for people, "json" for log shippers; auto picks by whether stderr is a terminal.
        log_format=env.get("LOG_FORMAT") or "auto",
        policies_path=Path(env["COMPLAINTS_POLICIES"]).resolve() if env.get("COMPLAINTS_POLICIES") else DEFAULT_POLICIES_PATH,
        workflow_cache=_positive_int(env, "COMPLAINTS_WORKFLOW_CACHE", DEFAULT_WORKFLOW_CACHE),
        encryption_keys=env.get("COMPLAINTS_ENCRYPTION_KEYS") or None,
        identity_mode=env.get("COMPLAINTS_IDENTITY") or None,
        trusted_issuers=env.get("COMPLAINTS_TRUSTED_ISSUERS") or None,
        signing_key_path=env.get("COMPLAINTS_SIGNING_KEY") or None,
        signing_command=env.get("COMPLAINTS_SIGNING_COMMAND") or None,
        temporal=temporal,
        temporal_env=temporal_env,
    )


def load_temporal_profile(temporal_env: Mapping[str, str]) -> ClientConfigProfile:
    """The connection profile the `temporal` CLI would use with these TEMPORAL_* variables.

    A config file that does not exist is no error (most set-ups have none): the
    variables alone then make the profile. Certificate files are only named
    here; connect_options reads them.
    """
    tls = temporal_env.get("TEMPORAL_TLS")
    if tls is not None and tls.lower() not in TLS_FLAG_VALUES:
        raise SettingsError(f"TEMPORAL_TLS must be true or false (got {tls!r})")
    try:
        return ClientConfigProfile.load(override_env_vars=temporal_env)
    except RuntimeError as error:  # envconfig's ConfigError: bad TOML, an unknown profile, a _PATH and a _DATA for one file
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise SettingsError(f"cannot load the Temporal connection settings ({_profile_source(temporal_env)}): {reason}") from None


def _profile_source(temporal_env: Mapping[str, str]) -> str:
    """Which profile of which file, as the variables choose them, for messages."""
    file = temporal_env.get("TEMPORAL_CONFIG_FILE")
    where = f"TEMPORAL_CONFIG_FILE {file}" if file else "the temporal CLI's default config file"
    if file and not Path(file).exists():
        where += " (no such file)"
    return f"profile {temporal_env.get('TEMPORAL_PROFILE', 'default')!r} in {where}"


def _positive_int(env, name: str, default: int) -> int:  # type: ignore[no-untyped-def]
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1 (got {raw!r})")
    return value
