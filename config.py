"""Where cases live: every setting comes from the environment (see CONTRACT.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TASK_QUEUE = "complaints"
DEFAULT_NAMESPACE = "default"
# The embedded dev server listens here when TEMPORAL_ADDRESS is not set.
EMBEDDED_TEMPORAL_PORT = 7233
EMBEDDED_TEMPORAL_UI_PORT = 8233
# The deadline policies shipped beside this module (installed with it as package data).
DEFAULT_POLICIES_PATH = Path(__file__).resolve().parent / "policies" / "policies.toml"


# Workflows a worker keeps in memory. Escalations of many cases can fall due
# together; a case not in the cache replays its history before it can escalate
# (bench/escalations.py: with 1,000 promises due at once, a cache of 500 made
# the worker spend about 3x the CPU). About 0.25 MiB per cached case.
DEFAULT_WORKFLOW_CACHE = 2_000


class SettingsError(ValueError):
    """A setting from the environment cannot be used; the message names the variable and what would be valid."""


# TLS settings: the project's variable, then the name the `temporal` CLI and SDKs' environment configuration use.
TLS_CERT_VARS = ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_CLIENT_CERT_PATH")
TLS_KEY_VARS = ("TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CLIENT_KEY_PATH")
TLS_CA_VARS = ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_CA_CERT_PATH")


@dataclass(frozen=True)
class Settings:
    temporal_address: str | None
    namespace: str
    task_queue: str
    database_url: str | None
    data_dir: Path
    log_format: str
    # The deadline policies file (activities/policies.py); COMPLAINTS_POLICIES overrides it.
    policies_path: Path = DEFAULT_POLICIES_PATH
    # Workflows the worker keeps cached (COMPLAINTS_WORKFLOW_CACHE).
    workflow_cache: int = DEFAULT_WORKFLOW_CACHE
    # Payload encryption keys (COMPLAINTS_ENCRYPTION_KEYS, see codec/keys.py); None: the default for the stack.
    encryption_keys: str | None = field(default=None, repr=False)
    # Client security for a real Temporal server (stack/client.py connect_options; README "Customer data and security").
    # tls: TEMPORAL_TLS true/false; None = on when a certificate, CA or API key is given.
    tls: bool | None = None
    tls_cert: Path | None = None  # TEMPORAL_TLS_CERT: client certificate (PEM) for mTLS
    tls_key: Path | None = None  # TEMPORAL_TLS_KEY: its private key (PEM)
    tls_ca: Path | None = None  # TEMPORAL_TLS_CA: CA bundle to verify the server with (default: system roots)
    tls_server_name: str | None = None  # TEMPORAL_TLS_SERVER_NAME: SNI / name to verify the server as
    api_key: str | None = field(default=None, repr=False)  # TEMPORAL_API_KEY: sent as a bearer token; implies TLS

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


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    return Settings(
        temporal_address=env.get("TEMPORAL_ADDRESS") or None,
        namespace=env.get("TEMPORAL_NAMESPACE") or DEFAULT_NAMESPACE,
        task_queue=env.get("COMPLAINTS_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
        database_url=env.get("DATABASE_URL") or None,
        data_dir=Path(env.get("COMPLAINTS_DATA_DIR") or "data").resolve(),
        # "console" for people, "json" for log shippers; auto picks by whether stderr is a terminal.
        log_format=env.get("LOG_FORMAT") or "auto",
        policies_path=Path(env["COMPLAINTS_POLICIES"]).resolve() if env.get("COMPLAINTS_POLICIES") else DEFAULT_POLICIES_PATH,
        workflow_cache=_positive_int(env, "COMPLAINTS_WORKFLOW_CACHE", DEFAULT_WORKFLOW_CACHE),
        encryption_keys=env.get("COMPLAINTS_ENCRYPTION_KEYS") or None,
        tls=_flag(env, "TEMPORAL_TLS"),
        tls_cert=_path(env, TLS_CERT_VARS),
        tls_key=_path(env, TLS_KEY_VARS),
        tls_ca=_path(env, TLS_CA_VARS),
        tls_server_name=env.get("TEMPORAL_TLS_SERVER_NAME") or None,
        api_key=env.get("TEMPORAL_API_KEY") or None,
    )


def _flag(env, name: str) -> bool | None:  # type: ignore[no-untyped-def]
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false (got {env.get(name)!r})")


def _path(env, names: tuple[str, ...]) -> Path | None:  # type: ignore[no-untyped-def]
    """The first of `names` that is set (the project's name, then the temporal CLI's); both set must agree."""
    given = [(name, env[name]) for name in names if env.get(name)]
    if not given:
        return None
    if len({value for _, value in given}) > 1:
        raise SettingsError(f"{given[0][0]} and {given[1][0]} name different files; set one of them")
    return Path(given[0][1]).expanduser()


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
