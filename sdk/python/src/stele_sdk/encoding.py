"""0x-hex and the subset of borsh Stele uses, decoded as strictly as the node decodes.

Borsh: integers little-endian; ``Vec<T>``, ``String`` and ``&[u8]`` prefixed with a ``u32``
length; fixed arrays as their bytes; ``Option`` as a 0/1 byte then the value; enums as a one-byte
variant index then the fields. Decoding refuses short input, trailing bytes, unknown variants,
Option tags other than 0 and 1, and text that is not UTF-8, as the Rust ``borsh`` crate does.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Callable, List, Optional, TypeVar, Union

from .errors import DecodeError, InvalidInput

__all__ = ["Reader", "Writer", "from_hex", "sha3_256", "to_hex"]

T = TypeVar("T")
BytesLike = Union[bytes, bytearray, memoryview]

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


def sha3_256(*parts: bytes) -> bytes:
    """sha3-256 of the concatenation of ``parts`` (Stele's ``Digest::of_parts``)."""
    hasher = hashlib.sha3_256()
    for part in parts:
        hasher.update(part)
    return hasher.digest()


def to_hex(data: BytesLike) -> str:
    """``0x`` followed by lowercase hex."""
    return "0x" + bytes(data).hex()


def from_hex(text: str, length: Optional[int] = None, what: str = "value") -> bytes:
    """Bytes from hex with or without ``0x`` (the node's rule); ``length`` checks the size."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what}: expected a hex string, got {type(text).__name__}")
    digits = text[2:] if text.startswith("0x") else text
    if len(digits) % 2 != 0 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise InvalidInput(f"{what}: invalid hex {text!r}")
    data = bytes.fromhex(digits)
    if length is not None and len(data) != length:
        raise InvalidInput(f"{what}: expected {length} bytes of hex, got {len(data)}")
    return data


def check_u64(value: object, what: str) -> int:
    """``value`` as a u64, or :class:`InvalidInput`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise InvalidInput(f"{what} must be an integer from 0 to 2^64 - 1, got {value!r}")
    return value


class Writer:
    """Appends borsh values to a buffer."""

    def __init__(self) -> None:
        self._parts: List[bytes] = []

    def u8(self, value: int) -> "Writer":
        self._parts.append(struct.pack("<B", value))
        return self

    def u32(self, value: int) -> "Writer":
        self._parts.append(struct.pack("<I", value))
        return self

    def u64(self, value: int) -> "Writer":
        self._parts.append(struct.pack("<Q", value))
        return self

    def fixed(self, data: bytes) -> "Writer":
        """A fixed-size array: the bytes alone."""
        self._parts.append(bytes(data))
        return self

    def vec_u8(self, data: bytes) -> "Writer":
        """``Vec<u8>`` or ``&[u8]``: u32 length, then the bytes."""
        if len(data) > U32_MAX:
            raise InvalidInput("byte string longer than 2^32 - 1")
        self.u32(len(data))
        self._parts.append(bytes(data))
        return self

    def string(self, text: str) -> "Writer":
        return self.vec_u8(text.encode("utf-8"))

    def raw(self, data: bytes) -> "Writer":
        """Already-encoded bytes."""
        self._parts.append(bytes(data))
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads borsh values from bytes, raising :class:`DecodeError` on anything malformed."""

    def __init__(self, data: BytesLike) -> None:
        self._data = bytes(data)
        self._offset = 0

    def _take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._data):
            raise DecodeError(f"unexpected end of input at byte {self._offset} (wanted {count} more)")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def u32(self) -> int:
        return int(struct.unpack("<I", self._take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self._take(8))[0])

    def fixed(self, size: int) -> bytes:
        return self._take(size)

    def vec_u8(self) -> bytes:
        return self._take(self.u32())

    def string(self) -> str:
        raw = self.vec_u8()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DecodeError(f"invalid UTF-8 in a string: {error}") from None

    def vec(self, item: Callable[["Reader"], T]) -> List[T]:
        count = self.u32()
        # Every element takes at least one byte, so a length beyond the input is malformed.
        if count > len(self._data) - self._offset:
            raise DecodeError(f"a sequence of {count} items cannot fit in the remaining input")
        return [item(self) for _ in range(count)]

    def option(self, item: Callable[["Reader"], T]) -> Optional[T]:
        tag = self.u8()
        if tag == 0:
            return None
        if tag == 1:
            return item(self)
        raise DecodeError(f"invalid Option tag {tag}")

    def finish(self) -> None:
        """Refuses trailing bytes (borsh ``from_slice``)."""
        if self._offset != len(self._data):
            raise DecodeError(f"{len(self._data) - self._offset} trailing bytes after the value")
