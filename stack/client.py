"""The one place a Temporal client is made: worker, CLI, demo and benchmark all use connect_client.

Every client gets the same data converter (data_converter_for): temporalio's
pydantic converter, so payloads are the plain JSON of CONTRACT.md, with the
encryption codec of codec/ in front of Temporal, so customer data is stored
encrypted when keys are configured (codec/keys.py says which). Decoding
passes plain payloads through, so a case started from the `temporal` CLI with
hand-written JSON still works.

For a real server, connect_options turns the TLS and API-key settings
(TEMPORAL_TLS*, TEMPORAL_API_KEY; config.py) into Client.connect arguments,
reading the certificate files; a missing file, or a certificate without its
key, is a SettingsError naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from config import DEFAULT_NAMESPACE, Settings, SettingsError, load_settings


def data_converter_for(settings: Settings, *, create_key: bool = True) -> DataConverter:
    """The pydantic converter with the encryption codec for the keys these settings give (codec/keys.py).

    create_key: for the embedded stack, make the data dir's key file if it is
    missing. The process that runs the stack makes it (stack.running_stack:
    worker, demo); connect_client only reads it (create_key=False), so a client
    started elsewhere never invents a key the worker lacks.
    """
    from codec import keyring_for, make_data_converter

    return make_data_converter(keyring_for(settings, create=create_key))


def connect_options(settings: Settings) -> dict[str, Any]:
    """Client.connect's `tls` and `api_key` for these settings (no network; reads the certificate files).

    TLS is on when TEMPORAL_TLS is true, or when a client certificate, a CA or an
    API key is given (Temporal Cloud takes an API key only over TLS), unless
    TEMPORAL_TLS is false. Without any of them: plain gRPC, as for a local server.
    """
    wants_tls = any((settings.tls_cert, settings.tls_key, settings.tls_ca, settings.tls_server_name, settings.api_key))
    if (wants_tls or settings.tls) and settings.embedded_temporal:
        raise SettingsError(
            "TLS or API-key settings (TEMPORAL_TLS*, TEMPORAL_API_KEY) are set but TEMPORAL_ADDRESS is not: "
            "the embedded dev server takes neither; set TEMPORAL_ADDRESS to the server they are for"
        )
    if settings.tls is False:
        if settings.api_key:
            raise SettingsError("TEMPORAL_TLS is false but TEMPORAL_API_KEY is set: an API key is only sent over TLS")
        if wants_tls:
            raise SettingsError(
                "TEMPORAL_TLS is false but TLS files or a server name are set (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, "
                "TEMPORAL_TLS_CA, TEMPORAL_TLS_SERVER_NAME): unset them or TEMPORAL_TLS"
            )
        return {"tls": False}
    if settings.tls_cert and not settings.tls_key:
        raise SettingsError(
            "TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not: mTLS needs the client certificate and its private key"
        )
    if settings.tls_key and not settings.tls_cert:
        raise SettingsError(
            "TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not: mTLS needs the client certificate and its private key"
        )
    options: dict[str, Any] = {}
    if settings.api_key:
        options["api_key"] = settings.api_key
    if not (wants_tls or settings.tls):
        return options
    if settings.tls_cert or settings.tls_ca or settings.tls_server_name:
        options["tls"] = TLSConfig(
            client_cert=_read_pem(settings.tls_cert, "TEMPORAL_TLS_CERT", "CERTIFICATE"),
            client_private_key=_read_pem(settings.tls_key, "TEMPORAL_TLS_KEY", "PRIVATE KEY"),
            server_root_ca_cert=_read_pem(settings.tls_ca, "TEMPORAL_TLS_CA", "CERTIFICATE"),
            domain=settings.tls_server_name,
        )
    else:
        options["tls"] = True  # the system's root CAs verify the server
    return options


def _read_pem(path: Path | None, variable: str, kind: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"{variable}: no such file {path}") from None
    except IsADirectoryError:
        raise SettingsError(f"{variable}: {path} is a directory, not a PEM file") from None
    except OSError as error:
        raise SettingsError(f"{variable}: cannot read {path}: {error.strerror or error}") from None
    if b"-----BEGIN" not in data or kind.encode() not in data:
        raise SettingsError(f"{variable}: {path} is not a PEM file holding a {kind.lower()} (no '-----BEGIN ...{kind}-----')")
    return data


async def connect_client(
    address: str, namespace: str = DEFAULT_NAMESPACE, *, settings: Settings | None = None, **kwargs: Any
) -> Client:
    """Connect to the Temporal frontend at `address` ("host:port") in `namespace`.

    settings (default: load_settings() from the environment) give the encryption
    keys, TLS and API key. Extra keyword arguments go to Client.connect (identity,
    interceptors, ...) and win over the settings' tls / api_key; the data
    converter is always data_converter_for(settings), reading (never making)
    the embedded stack's key file.
    """
    settings = settings if settings is not None else load_settings()
    options = {**connect_options(settings), **kwargs}
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=data_converter_for(settings, create_key=False),
        **options,
    )
