"""Customer data protection for Temporal payloads: an AES-GCM payload codec, its keys and a codec server.

    codec.keys        COMPLAINTS_ENCRYPTION_KEYS / the data dir's key file -> KeyRing (`python -m codec.keys` makes a key)
    codec.encryption  EncryptionCodec, make_data_converter (stack/client.py) and for_workers (worker.py)
    codec.server      the codec server for the Temporal UI and CLI (`starter.py codec-server`, `python -m codec.server`)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Loaded on first use, so `python -m codec.keys` / `python -m codec.server` run their module only once.
_EXPORTS = {
    "EncryptionCodec": "codec.encryption",
    "make_data_converter": "codec.encryption",
    "for_workers": "codec.encryption",
    "EncryptionKeyError": "codec.keys",
    "KeyRing": "codec.keys",
    "keyring_for": "codec.keys",
    "parse_keys": "codec.keys",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codec' has no attribute {name!r}")
    return getattr(import_module(module), name)
