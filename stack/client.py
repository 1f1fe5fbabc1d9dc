"""The one place a Temporal client is made: worker, CLI, demo and benchmark all use connect_client.

Every client gets the same data converter (data_converter_for): temporalio's
pydantic converter, so payloads are the plain JSON of docs/contract.md, with the
encryption codec of codec/ in front of Temporal, so customer data is stored
encrypted when keys are configured (codec/keys.py says which). Decoding
passes plain payloads through, so a case started from the `temporal` CLI with
hand-written JSON still works.

For a real server, connect_options turns the connection profile that
temporalio.envconfig loaded (config.py: TEMPORAL_* variables over a TOML
profile, as the `temporal` CLI reads them) into Client.connect arguments,
after the checks envconfig leaves out: a missing or non-PEM certificate file,
or a certificate without its key, is a SettingsError naming the variable.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import DataSource

from config import DEFAULT_NAMESPACE, Settings, SettingsError, load_settings
from identity.interceptors import SigningInterceptor
from identity.setup import signer_for
from tracing import temporal_interceptors


def data_converter_for(settings: Settings, *, create_key: bool = True) -> DataConverter:
    """The pydantic converter with the encryption codec for the keys these settings give (codec/keys.py).

    create_key: for the embedded stack, make the data dir's key file if it is
    missing. The process that runs the stack makes it (stack.running_stack:
    worker, demo); connect_client only reads it (create_key=False), so a client
    started elsewhere never invents a key the worker lacks.
    """
    from codec import keyring_for, make_data_converter

    return make_data_converter(keyring_for(settings, create=create_key))


class TlsFile(NamedTuple):
    """One of a profile's TLS files, and the names a message can give it."""

    field: str  # envconfig.ClientConfigTLS's
    key: str  # the config file's, without its _path / _data
    kind: str  # the PEM block it holds

    @property
    def variables(self) -> tuple[str, str]:
        return f"TEMPORAL_TLS_{self.key.upper()}_PATH", f"TEMPORAL_TLS_{self.key.upper()}_DATA"

    def name(self, settings: Settings, source: DataSource | None = None) -> str:
        entry = f"tls.{self.key}_path" if source is None or isinstance(source, Path) else f"tls.{self.key}_data"
        return settings.temporal_setting(entry, *self.variables)


TLS_FILES = (
    TlsFile("client_cert", "client_cert", "CERTIFICATE"),
    TlsFile("client_private_key", "client_key", "PRIVATE KEY"),
    TlsFile("server_root_ca_cert", "server_ca_cert", "CERTIFICATE"),
)
CLIENT_CERT, CLIENT_KEY, _ = TLS_FILES


def connect_options(settings: Settings) -> dict[str, Any]:
    """Client.connect's `tls`, `api_key` and `rpc_metadata` for these settings (no network; reads the certificate files).

    envconfig decides them as the `temporal` CLI does: TLS is on when TEMPORAL_TLS
    is true, or when a client certificate, a CA, a server name or an API key is
    given (Temporal Cloud takes an API key only over TLS), unless TEMPORAL_TLS is
    false. Without any of them: plain gRPC, as for a local server. The address
    and namespace are connect_client's arguments, not part of these.
    """
    profile = settings.temporal
    tls = profile.tls
    name = settings.temporal_setting
    sources = {file: source for file in TLS_FILES if (source := getattr(tls, file.field, None)) is not None}
    given = [file.name(settings, source) for file, source in sources.items()]
    if tls is not None and tls.server_name:
        given.append(name("tls.server_name", "TEMPORAL_TLS_SERVER_NAME"))
    if (profile.api_key or given or (tls is not None and tls.disabled is False)) and settings.embedded_temporal:
        raise SettingsError(
            "TLS or API-key settings (TEMPORAL_TLS*, TEMPORAL_API_KEY or the config profile) are set but TEMPORAL_ADDRESS "
            "is not: the embedded dev server takes neither; set TEMPORAL_ADDRESS to the server they are for"
        )
    if tls is not None and tls.disabled:
        switch = name("tls.disabled", "TEMPORAL_TLS")
        tls_off = f"{switch} is false" if switch == "TEMPORAL_TLS" else f"{switch} is true"
        if profile.api_key:
            raise SettingsError(f"{tls_off} but {name('api_key', 'TEMPORAL_API_KEY')} is set: an API key is only sent over TLS")
        if given:
            raise SettingsError(f"{tls_off} but TLS files or a server name are set ({', '.join(given)}): unset them or {switch}")
    if tls is not None and not tls.disabled:
        if (CLIENT_CERT in sources) != (CLIENT_KEY in sources):
            given_file, missing = (CLIENT_CERT, CLIENT_KEY) if CLIENT_CERT in sources else (CLIENT_KEY, CLIENT_CERT)
            named = given_file.name(settings, sources[given_file])
            # Name the missing one as the given one was set: a variable beside a variable, an entry beside an entry.
            wanted = missing.variables[0] if named in given_file.variables else missing.name(settings)
            raise SettingsError(f"{named} is set but {wanted} is not: mTLS needs the client certificate and its private key")
        read = {file.field: _read_pem(source, file.name(settings, source), file.kind) for file, source in sources.items()}
        # What was checked is what is sent: envconfig would read the files again.
        profile = replace(profile, tls=replace(tls, **read))
    options: dict[str, Any] = dict(profile.to_client_connect_config())
    options.pop("target_host", None)
    options.pop("namespace", None)
    return options


def _read_pem(source: DataSource, setting: str, kind: str) -> bytes:
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise SettingsError(f"{setting}: no such file {source}") from None
        except IsADirectoryError:
            raise SettingsError(f"{setting}: {source} is a directory, not a PEM file") from None
        except OSError as error:
            raise SettingsError(f"{setting}: cannot read {source}: {error.strerror or error}") from None
        what = str(source)
    else:
        data = source.encode() if isinstance(source, str) else source
        what = "the data"
    if b"-----BEGIN" not in data or kind.encode() not in data:
        raise SettingsError(f"{setting}: {what} is not a PEM file holding a {kind.lower()} (no '-----BEGIN ...{kind}-----')")
    return data


async def connect_client(
    address: str, namespace: str = DEFAULT_NAMESPACE, *, settings: Settings | None = None, **kwargs: Any
) -> Client:
    """Connect to the Temporal frontend at `address` ("host:port") in `namespace`.

    settings (default: load_settings() from the environment) give the encryption
    keys, TLS, API key and gRPC metadata (connect_options); `address` and
    `namespace` win over the profile's, since for the embedded stack they are the
    dev server's. Extra keyword arguments go to Client.connect (identity,
    interceptors, ...) and win over the settings' tls / api_key; the client signs each message's actor
    assertion with the settings' signing key, if any (identity/setup.py); the data
    converter is always data_converter_for(settings), reading (never making)
    the embedded stack's key file.
    """
    settings = settings if settings is not None else load_settings()
    options = {**connect_options(settings), **kwargs}
    signer = signer_for(settings)
    if signer is not None:  # every message carries its actor's assertion (identity/interceptors.py)
        options["interceptors"] = [SigningInterceptor(signer), *options.get("interceptors", [])]
    # A trace goes on through Temporal when tracing is on (tracing.py).
    options["interceptors"] = [*options.get("interceptors", []), *temporal_interceptors()]
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=data_converter_for(settings, create_key=False),
        **options,
    )
