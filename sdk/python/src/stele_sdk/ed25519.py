"""Ed25519 under the node's rule: ZIP-215 verification in pure Python, RFC 8032 signing.

The node (consensus/src/keys.rs) verifies with ed25519-zebra, i.e. the ZIP-215 rules:

* ``s`` must be canonical (``s < l``);
* ``R`` may be any encoding of a curve point: a y coordinate at or above p is reduced, and an
  x of zero with the sign bit set is accepted (curve25519-dalek's decompression);
* the equation is the cofactored one, ``[8][s]B = [8]R + [8][k]A`` with
  ``k = SHA-512(R_bytes || A_bytes || message) mod l`` over the bytes as given.

libsodium and OpenSSL (hence ``cryptography`` and ``pynacl``) check the cofactorless equation
and refuse non-canonical or small-order ``R``, so they reject some signatures the node accepts.
This module therefore never uses them to verify; they only sign (:func:`sign`), whose RFC 8032
signatures verify under both rules.

Public keys follow the node's stricter parsing (``PublicKey::from_bytes``): the bytes must
decompress, the point must not be of small order, and the encoding must be canonical.

Speed is not a goal (proof bundles hold a handful of signatures); correctness is.
"""

from __future__ import annotations

import hashlib
from typing import Final, Optional, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "check_public_key",
    "public_key_of_seed",
    "sign",
    "verify",
    "verify_zip215",
]

P: Final = 2**255 - 19
L: Final = 2**252 + 27742317777372353535851937790883648493
D: Final = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1: Final = pow(2, (P - 1) // 4, P)

# Extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z.
_Point = Tuple[int, int, int, int]

_IDENTITY: Final[_Point] = (0, 1, 1, 0)


def _base_point() -> _Point:
    y = 4 * pow(5, P - 2, P) % P
    decoded = _decompress(y.to_bytes(32, "little"))
    assert decoded is not None
    return decoded


def _add(p1: _Point, p2: _Point) -> _Point:
    # Complete addition for a = -1 (Hisil et al.), valid for every pair of points.
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _negate(point: _Point) -> _Point:
    x, y, z, t = point
    return ((-x) % P, y, z, (-t) % P)


def _multiply(scalar: int, point: _Point) -> _Point:
    result = _IDENTITY
    addend = point
    while scalar > 0:
        if scalar & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        scalar >>= 1
    return result


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % P == 0 and (y - z) % P == 0


def _compress(point: _Point) -> bytes:
    x, y, z, _ = point
    z_inverse = pow(z, P - 2, P)
    x_affine = x * z_inverse % P
    y_affine = y * z_inverse % P
    return (y_affine | ((x_affine & 1) << 255)).to_bytes(32, "little")


def _decompress(encoded: bytes) -> Optional[_Point]:
    """curve25519-dalek's ``CompressedEdwardsY::decompress``: the high bit is the sign of x, the
    other 255 bits are y, reduced mod p when they are not (non-canonical encodings decode); no
    check that x is non-zero when the sign bit is set. ``None`` if y is not on the curve."""
    if len(encoded) != 32:
        return None
    value = int.from_bytes(encoded, "little")
    sign = value >> 255
    y = (value & ((1 << 255) - 1)) % P
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    # x = sqrt(u / v), as sqrt_ratio_i computes it: the non-negative (even) root.
    x_squared = u * pow(v, P - 2, P) % P
    x = pow(x_squared, (P + 3) // 8, P)
    if (x * x - x_squared) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x_squared) % P != 0:
        return None
    if x & 1:
        x = P - x
    if sign:
        x = (-x) % P
    return (x, y, 1, x * y % P)


_B: Final[_Point] = _base_point()


def check_public_key(key: bytes) -> Optional[str]:
    """``None`` if the node accepts these 32 bytes as a public key, else why not
    (``"invalid"``, ``"weak"`` or ``"non_canonical"``, checked in the node's order)."""
    if len(key) != 32:
        return "invalid"
    point = _decompress(key)
    if point is None:
        return "invalid"
    if _is_identity(_multiply(8, point)):
        return "weak"
    if _compress(point) != bytes(key):
        return "non_canonical"
    return None


def verify_zip215(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The ZIP-215 verdict for a key the caller has already accepted (``A`` need only decode)."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    r_bytes, s_bytes = bytes(signature[:32]), bytes(signature[32:])
    s = int.from_bytes(s_bytes, "little")
    if s >= L:
        return False
    big_r = _decompress(r_bytes)
    big_a = _decompress(bytes(public_key))
    if big_r is None or big_a is None:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + bytes(public_key) + bytes(message)).digest(), "little") % L
    # [8](R - ([s]B - [k]A)) == identity
    r_prime = _add(_multiply(s, _B), _negate(_multiply(k, big_a)))
    return _is_identity(_multiply(8, _add(big_r, _negate(r_prime))))


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """What the node decides for (key, message, signature): the key must parse as the node's
    ``PublicKey`` (valid, not small-order, canonical) and the signature must pass ZIP-215."""
    if check_public_key(bytes(public_key)) is not None:
        return False
    return verify_zip215(public_key, message, signature)


def public_key_of_seed(seed: bytes) -> bytes:
    """The 32-byte public key of a 32-byte secret seed (RFC 8032)."""
    private = Ed25519PrivateKey.from_private_bytes(bytes(seed))
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(seed: bytes, message: bytes) -> bytes:
    """The deterministic RFC 8032 signature of ``message`` by the key of ``seed``."""
    return Ed25519PrivateKey.from_private_bytes(bytes(seed)).sign(bytes(message))
