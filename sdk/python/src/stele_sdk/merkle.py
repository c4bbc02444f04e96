"""Binary Merkle trees over sha3-256 for transaction and receipt roots (ledger/src/merkle.rs).

A leaf is sha3(0x00 || item digest), an inner node sha3(0x01 || left || right); an odd last
node is promoted unchanged. The published root binds the leaf count:
sha3(0x02 || count as u64 LE || tree root). The empty tree's root is 32 zero bytes. A proof
must carry exactly the siblings its position needs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import List, Sequence

from .encoding import Reader, Writer, sha3_256

__all__ = ["InclusionProof", "path_length", "prove", "root"]


def _leaf(item: bytes) -> bytes:
    return sha3_256(b"\x00", item)


def _inner(left: bytes, right: bytes) -> bytes:
    return sha3_256(b"\x01", left, right)


def _committed(count: int, tree_root: bytes) -> bytes:
    return sha3_256(b"\x02", struct.pack("<Q", count), tree_root)


def root(items: Sequence[bytes]) -> bytes:
    """The root over these item digests."""
    if not items:
        return bytes(32)
    level = [_leaf(item) for item in items]
    while len(level) > 1:
        level = [_inner(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
    return _committed(len(items), level[0])


def path_length(index: int, total: int) -> int:
    """Siblings in the proof of leaf ``index`` of ``total``."""
    length = 0
    while total > 1:
        if index % 2 == 1 or index + 1 < total:
            length += 1
        index //= 2
        total = (total + 1) // 2
    return length


@dataclass(frozen=True)
class InclusionProof:
    """Proof that an item is the ``index``-th of ``total`` leaves under a root."""

    index: int
    total: int
    siblings: List[bytes]

    def verify(self, root_digest: bytes, item: bytes) -> bool:
        """Whether ``item`` is the proven leaf under ``root_digest``."""
        if self.index >= self.total or len(self.siblings) != path_length(self.index, self.total):
            return False
        node = _leaf(item)
        index, total, used = self.index, self.total, 0
        while total > 1:
            if index % 2 == 1:
                node = _inner(self.siblings[used], node)
                used += 1
            elif index + 1 < total:
                node = _inner(node, self.siblings[used])
                used += 1
            index //= 2
            total = (total + 1) // 2
        return _committed(self.total, node) == bytes(root_digest)

    def encode_into(self, writer: Writer) -> None:
        writer.u32(self.index).u32(self.total).u32(len(self.siblings))
        for sibling in self.siblings:
            writer.fixed(sibling)

    @classmethod
    def decode_from(cls, reader: Reader) -> "InclusionProof":
        index = reader.u32()
        total = reader.u32()
        return cls(index, total, reader.vec(lambda r: r.fixed(32)))


def prove(items: Sequence[bytes], index: int) -> InclusionProof:
    """The proof for ``items[index]``."""
    if not 0 <= index < len(items):
        raise IndexError(f"leaf {index} of {len(items)}")
    level = [_leaf(item) for item in items]
    siblings: List[bytes] = []
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            siblings.append(level[sibling])
        level = [_inner(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        position //= 2
    return InclusionProof(index, len(items), siblings)
