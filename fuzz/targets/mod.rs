//! The fuzz targets' logic, in one place for two callers: the libFuzzer binaries in
//! `fuzz/fuzz_targets/` (coverage-guided runs on demand, `cargo +nightly fuzz run <target>`) and
//! `node/tests/fuzz_corpus.rs` (the committed corpus and a bounded random run in the normal
//! `cargo test --workspace`), so both exercise exactly the same code.
//!
//! Each target takes arbitrary bytes, decodes them with the node's real decoders and, when that
//! succeeds, runs the real validation against a fixed in-memory chain ([`fixture`]); it panics
//! only when an invariant breaks (a decoded value that re-encodes to other bytes, two checks of
//! one thing that disagree, a forged certificate that verifies, ...). It returns how deep the
//! input got, so tests can check that the corpus reaches full validation.
//!
//! Included from two crates by path, so modules refer to each other with `super::`.

pub mod block;
pub mod consensus_message;
pub mod fixture;
pub mod p2p;
pub mod rpc_params;
pub mod seeds;
pub mod transaction;
pub mod tx_proof;

/// How far an input got.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Depth {
    /// Refused by the decoder (or, for RPC, by the request parser).
    Undecodable,
    /// Decoded, then refused by validation.
    Rejected,
    /// Decoded and accepted by every check.
    Accepted,
}

/// A target: bytes in, how deep they got; panics on a broken invariant.
pub type Target = fn(&[u8]) -> Depth;

/// Every target by name; its corpus is `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("transaction", transaction::run),
    ("block", block::run),
    ("consensus_message", consensus_message::run),
    ("p2p", p2p::run),
    ("rpc_params", rpc_params::run),
    ("tx_proof", tx_proof::run),
];

/// Decodes exactly one borsh value, as every Stele decoder does (trailing bytes refused), and
/// checks that it re-encodes to the very same bytes: hashes are taken over encodings, so two
/// encodings of one value would give one transaction or block two identities.
pub fn decode_canonical<T: borsh::BorshDeserialize + borsh::BorshSerialize>(data: &[u8]) -> Option<T> {
    let value: T = borsh::from_slice(data).ok()?;
    let encoded = borsh::to_vec(&value).expect("encoding to a Vec cannot fail");
    assert!(encoded == data, "a decoded value re-encodes to other bytes: {}", hex(&encoded));
    Some(value)
}

/// 0x hex, for panic messages.
pub fn hex(bytes: &[u8]) -> String {
    consensus::hex::encode(bytes)
}
