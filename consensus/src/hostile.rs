//! Signatures a Byzantine client or validator crafts to make honest nodes disagree, for the
//! attack tests. Compiled only with the `hostile` feature, which only test builds enable (the
//! crate's own dev-dependency, and those of `ledger` and `node`): a release build has none of it.
//!
//! Each one satisfies the cofactored (ZIP-215) equation but, for some, not the cofactorless one
//! that ed25519-dalek's batch check used, so a rule mixing the two gave batch-dependent verdicts.

use curve25519_dalek::{EdwardsPoint, Scalar, constants::EIGHT_TORSION};
use sha2::{Digest as _, Sha512};

use crate::{Signature, SigningKey};

/// The RFC 8032 secret scalar and nonce prefix of a key.
fn expand(key: &SigningKey) -> (Scalar, [u8; 32]) {
    let expanded: [u8; 64] = Sha512::digest(*key.seed()).into();
    let mut clamped = [0u8; 32];
    clamped.copy_from_slice(&expanded[..32]);
    clamped[0] &= 248;
    clamped[31] &= 127;
    clamped[31] |= 64;
    let mut prefix = [0u8; 32];
    prefix.copy_from_slice(&expanded[32..]);
    (Scalar::from_bytes_mod_order(clamped), prefix)
}

fn wide_scalar(parts: &[&[u8]]) -> Scalar {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    let wide: [u8; 64] = hasher.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn assemble(r_bytes: [u8; 32], s: Scalar) -> Signature {
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&r_bytes);
    signature[32..].copy_from_slice(&s.to_bytes());
    Signature(signature)
}

/// Signs `message` as RFC 8032 does, but with `R = r*B + T_r` and, when `key_torsion` is not 0,
/// for the torsioned key `A + T_k` (whose bytes are returned), where `T_i` is the i-th of the 8
/// torsion points (0 is the identity). With `key_torsion` 0 the returned key is `key`'s own.
pub fn sign_torsioned(key: &SigningKey, message: &[u8], r_torsion: usize, key_torsion: usize) -> ([u8; 32], Signature) {
    let (secret, prefix) = expand(key);
    let nonce = wide_scalar(&[&prefix, message]);
    let key_bytes = (EdwardsPoint::mul_base(&secret) + EIGHT_TORSION[key_torsion % 8]).compress().to_bytes();
    let r_bytes = (EdwardsPoint::mul_base(&nonce) + EIGHT_TORSION[r_torsion % 8]).compress().to_bytes();
    let s = nonce + wide_scalar(&[&r_bytes, &key_bytes, message]) * secret;
    (key_bytes, assemble(r_bytes, s))
}

/// A signature by `key` whose R is a torsion point written non-canonically (y + p, for y = 0,
/// an order-4 point, or y = 1, the identity), with or without the sign bit: `s = k*a`.
pub fn sign_with_non_canonical_r(key: &SigningKey, message: &[u8], y: u8, sign: bool) -> Signature {
    let (secret, _) = expand(key);
    let mut r_bytes = [0xff; 32];
    r_bytes[0] = 0xed + (y & 1);
    r_bytes[31] = if sign { 0xff } else { 0x7f };
    let s = wide_scalar(&[&r_bytes, &key.public_key().to_bytes(), message]) * secret;
    assemble(r_bytes, s)
}

/// The same signature with `s + l`: the same scalar, encoded non-canonically.
pub fn with_non_canonical_s(signature: Signature) -> Signature {
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = signature;
    let mut carry = 0u16;
    for (index, byte) in ORDER.iter().enumerate() {
        let sum = u16::from(out.0[32 + index]) + u16::from(*byte) + carry;
        out.0[32 + index] = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// The encodings of the 8 small-order points, which no public key may have.
pub fn small_order_points() -> [[u8; 32]; 8] {
    EIGHT_TORSION.map(|point| point.compress().to_bytes())
}
