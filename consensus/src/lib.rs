//! How Stele validators agree, and what they sign.
//!
//! This crate owns the primitives every other crate reuses when it checks a signature: the
//! sha3-256 [`Digest`], ed25519 [`PublicKey`] / [`Signature`] / [`SigningKey`], the ordered
//! [`ValidatorSet`] with its Byzantine quorum, domain-separated [`Vote`]s and the
//! [`CommitCertificate`] that proves a block was decided. The PBFT state machine that produces
//! those certificates lands here too, as a pure state machine.
//!
//! Must not depend on: tokio, rocksdb, libp2p, jsonrpsee, or any workspace crate. CI checks this
//! with `cargo tree -p consensus -e normal`. Nothing here reads a clock, a socket or a file.
//!
//! Invariants:
//! - every byte string a validator signs starts with a domain tag and the chain id, so a
//!   signature can never be replayed on another chain or as another kind of message;
//! - a [`PublicKey`] value is always a valid, non-weak curve point (checked on decode);
//! - [`CommitCertificate::verify`] accepts only 2f+1 (or more) distinct members' valid
//!   signatures over exactly the expected (chain, height, digest).

mod certificate;
mod chain_id;
mod digest;
mod error;
pub mod hex;
mod keys;
mod validator_set;
mod vote;

pub use certificate::{CertificateError, CommitCertificate, VoteSignature};
pub use chain_id::ChainId;
pub use digest::Digest;
pub use error::Error;
pub use keys::{BatchError, KeyError, PublicKey, Signature, SigningKey, verify_batch};
pub use validator_set::{VALIDATOR_SET_MAX, ValidatorIndex, ValidatorSet, ValidatorSetError};
pub use vote::{Height, View, Vote, VoteKind};
