"""Signing keys and the key files ``stele keys generate`` writes (genesis/src/keyfile.rs).

A key file is JSON, mode 0600::

    {
      "public_key": "0x…",
      "address": "0x…",
      "secret_key": "0x…"      (the 32-byte seed)
    }

Loading refuses a file other users can access, unknown fields, a public key that does not match
the seed and an address that does not match the key, as the node does.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any, Dict, Union

from . import ed25519
from .encoding import to_hex
from .errors import InvalidInput, KeyFileError
from .types import Address, PublicKey

__all__ = ["SigningKey", "generate_key_file", "load_key"]

PathLike = Union[str, "os.PathLike[str]"]


class SigningKey:
    """A secret ed25519 key (its 32-byte seed). Signing is deterministic (RFC 8032)."""

    __slots__ = ("_seed", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
            raise InvalidInput("a signing key seed is 32 bytes")
        self._seed = bytes(seed)
        #: The matching public key.
        self.public_key = PublicKey(ed25519.public_key_of_seed(self._seed))

    @classmethod
    def generate(cls) -> "SigningKey":
        """A fresh key from the operating system's random number generator."""
        return cls(os.urandom(32))

    @property
    def address(self) -> Address:
        """The account this key controls."""
        return Address.of(self.public_key)

    def seed(self) -> bytes:
        """The 32-byte secret seed. Handle with care."""
        return self._seed

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of ``message``."""
        return ed25519.sign(self._seed, message)

    def to_key_file_json(self) -> str:
        """The key file's text, as the node writes it (pretty JSON and a newline)."""
        document = {
            "public_key": str(self.public_key),
            "address": str(self.address),
            "secret_key": to_hex(self._seed),
        }
        return json.dumps(document, indent=2) + "\n"

    def save(self, path: PathLike) -> None:
        """Writes a new key file with mode 0600, refusing to overwrite an existing file."""
        _write_new(os.fspath(path), self.to_key_file_json().encode("utf-8"), 0o600)

    def __repr__(self) -> str:
        return f"SigningKey({self.public_key})"


def generate_key_file(path: PathLike) -> SigningKey:
    """Generates a key and writes it to a new file (mode 0600, never overwriting)."""
    key = SigningKey.generate()
    key.save(path)
    return key


def _write_new(path: str, data: bytes, mode: int) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileError(path, "already exists; refusing to overwrite it") from None
    except OSError as error:
        raise KeyFileError(path, str(error)) from None
    try:
        os.fchmod(descriptor, mode)
        view = memoryview(data)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _reject_duplicates(pairs: Any) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate field `{name}`")
        result[name] = value
    return result


def load_key(path: PathLike) -> SigningKey:
    """Reads a key file, refusing one that other users can access or that does not match."""
    name = os.fspath(path)
    try:
        mode = stat.S_IMODE(os.stat(name).st_mode)
    except OSError as error:
        raise KeyFileError(name, str(error)) from None
    if mode & 0o077:
        raise KeyFileError(
            name, f"other users can access this secret key (mode {mode:o}); run `chmod 600 {name}`"
        )
    try:
        with open(name, encoding="utf-8") as file:
            document = json.loads(file.read(), object_pairs_hook=_reject_duplicates)
    except (OSError, ValueError) as error:
        raise KeyFileError(name, f"not a key file: {error}") from None
    if not isinstance(document, dict):
        raise KeyFileError(name, "not a key file: expected a JSON object")
    expected = {"public_key", "address", "secret_key"}
    if set(document) != expected:
        unknown = sorted(set(document) - expected)
        missing = sorted(expected - set(document))
        raise KeyFileError(name, f"not a key file: unknown fields {unknown}, missing fields {missing}")
    try:
        public_key = PublicKey.parse(document["public_key"])
        address = Address.parse(document["address"])
    except InvalidInput as error:
        raise KeyFileError(name, str(error)) from None
    secret = document["secret_key"]
    if not isinstance(secret, str):
        raise KeyFileError(name, "secret_key: expected a hex string")
    digits = secret[2:] if secret.startswith("0x") else secret
    if len(digits) != 64:
        raise KeyFileError(name, f"secret_key: expected 32 bytes of hex, got {len(digits) // 2}")
    if any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise KeyFileError(name, "secret_key: invalid hex")
    seed = bytes.fromhex(digits)
    key = SigningKey(seed)
    if key.public_key != public_key:
        raise KeyFileError(name, "public_key does not match secret_key")
    if Address.of(public_key) != address:
        raise KeyFileError(name, "address does not match public_key")
    return key
