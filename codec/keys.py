"""Encryption keys for the payload codec: from COMPLAINTS_ENCRYPTION_KEYS, or a key file in the data dir.

Format (the variable and the file alike): comma-separated `<key-id>:<base64 of 32 random bytes>`
entries. The FIRST key encrypts every new payload; every key listed decrypts
(a payload names its key id), so rotation is: put a new key first, keep the
old ones after it for as long as histories written with them are kept.

    COMPLAINTS_ENCRYPTION_KEYS="k2:<base64>,k1:<base64>"

A new entry: `python -m codec.keys k3` (prints `k3:<base64>`), or
`echo "k3:$(openssl rand -base64 32)"`.

Which keys a process uses (keyring_for):

- COMPLAINTS_ENCRYPTION_KEYS set: those keys; the value `off` turns encryption off.
- unset, embedded dev server (no TEMPORAL_ADDRESS): the key file
  <data_dir>/encryption-keys (same format, mode 0600), created with one new
  key by the first process that runs the embedded stack (stack.running_stack:
  the worker, the demo), so `make demo` stores no plain-text customer data;
  every process sharing the data dir (the CLI, the codec server) reads it.
  Without the file a client sends plain JSON, which the worker takes.
- unset, a real server: no key; payloads are stored as plain JSON (the worker
  warns once at start).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from config import SettingsError

KEYS_ENV = "COMPLAINTS_ENCRYPTION_KEYS"
KEY_FILE_NAME = "encryption-keys"
KEY_BYTES = 32  # AES-256-GCM
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# COMPLAINTS_ENCRYPTION_KEYS values that turn encryption off explicitly.
OFF_VALUES = frozenset({"off", "none", "false", "0"})


class EncryptionKeyError(SettingsError):
    """The keys are unusable (a bad entry), or a payload names a key this process does not have."""


@dataclass(frozen=True)
class KeyRing:
    """Keys by id; the first one encrypts. Key bytes never appear in repr or str."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    source: str  # where the keys came from: the variable's name or the key file's path

    def __post_init__(self) -> None:
        if not self.keys:
            raise EncryptionKeyError(f"{self.source}: no keys")

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    @property
    def current_key(self) -> bytes:
        return self.keys[0][1]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.keys)

    def key(self, key_id: str) -> bytes | None:
        for known, key in self.keys:
            if known == key_id:
                return key
        return None

    def describe(self) -> str:
        """For logs: which key encrypts, which others still decrypt, from where (never the key bytes)."""
        older = f"; also decrypts {', '.join(self.ids[1:])}" if len(self.keys) > 1 else ""
        return f"AES-256-GCM, key {self.current_id} from {self.source}{older}"


def new_key_entry(key_id: str | None = None) -> str:
    """A new `<key-id>:<base64>` entry with 32 random bytes; the id defaults to k<yyyymmdd>."""
    key_id = key_id or "k" + datetime.now(timezone.utc).strftime("%Y%m%d")
    _check_key_id(key_id, "the new key")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"


def parse_keys(text: str, source: str = KEYS_ENV) -> KeyRing:
    """Parse `id:base64,id:base64,...` (commas or newlines between entries; # starts a comment line).

    Errors name the source and the entry's position and id, never key material.
    """
    entries = [
        entry.strip()
        for line in text.splitlines()
        if not line.strip().startswith("#")
        for entry in line.split(",")
        if entry.strip()
    ]
    if not entries:
        raise EncryptionKeyError(f"{source} holds no keys; expected `<key-id>:<base64 of {KEY_BYTES} bytes>`, ...")
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        where = f"{source}, entry {position}"
        if not sep or not encoded.strip():
            raise EncryptionKeyError(
                f"{where}: expected `<key-id>:<base64 of {KEY_BYTES} bytes>` (generate one with `python -m codec.keys`)"
            )
        _check_key_id(key_id, where)
        key = _decode_key(encoded.strip())
        if key is None:
            raise EncryptionKeyError(f"{where} ({key_id}): the key is not valid base64")
        if len(key) != KEY_BYTES:
            raise EncryptionKeyError(
                f"{where} ({key_id}): the key is {len(key)} bytes; AES-256-GCM needs {KEY_BYTES} "
                "(generate one with `python -m codec.keys`)"
            )
        if any(known == key_id for known, _ in keys):
            raise EncryptionKeyError(f"{where}: key id {key_id} is listed twice; each key needs its own id")
        keys.append((key_id, key))
    return KeyRing(tuple(keys), source)


def _check_key_id(key_id: str, where: str) -> None:
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise EncryptionKeyError(
            f"{where}: key id {key_id!r} must be 1..64 of letters, digits, '_', '.' or '-', starting with a letter or digit"
        )


def _decode_key(encoded: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional."""
    padded = encoded + "=" * (-len(encoded) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def load_key_file(path: Path, *, create: bool) -> KeyRing | None:
    """The keys of `path`; with create, a missing file is first created with one new key (mode 0600).

    Several processes may race to create it: exactly one file wins (a hard
    link into place fails if the name exists) and every process reads that one.
    """
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as out:
                out.write(
                    "# Payload encryption keys of the embedded stack (codec/keys.py); the first encrypts, all decrypt.\n"
                    "# Keep this file: cases in data/temporal.db cannot be read without it.\n"
                )
                # A random suffix: a key made by another data dir has another id, so a mix-up names it.
                key_id = f"local-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(3)}"
                out.write(new_key_entry(key_id) + "\n")
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process created it first: use theirs
        finally:
            temporary.unlink(missing_ok=True)
    try:
        text = path.read_text()
    except OSError as error:
        raise EncryptionKeyError(f"cannot read the key file {path}: {error.strerror or error}") from None
    return parse_keys(text, source=str(path))


def keyring_for(settings, *, create: bool = True) -> KeyRing | None:  # type: ignore[no-untyped-def]
    """The keys a process with these settings encrypts and decrypts with; None: payloads stay plain JSON.

    create: for the embedded stack, make the data dir's key file if it is missing.
    """
    raw = settings.encryption_keys
    if raw is not None:
        if raw.strip().lower() in OFF_VALUES:
            return None
        return parse_keys(raw, source=KEYS_ENV)
    if settings.embedded_temporal:
        return load_key_file(settings.data_dir / KEY_FILE_NAME, create=create)
    return None


def main(argv: list[str] | None = None) -> int:
    """`python -m codec.keys [KEY_ID]`: print a new key entry for COMPLAINTS_ENCRYPTION_KEYS."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print("usage: python -m codec.keys [KEY_ID]   prints a new `<key-id>:<base64>` entry", file=sys.stderr)
        return 2
    try:
        print(new_key_entry(args[0] if args else None))
    except EncryptionKeyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
