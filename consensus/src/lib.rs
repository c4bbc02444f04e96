//! How Stele validators agree, and what they sign.
//!
//! This crate owns the primitives every other crate reuses when it checks a signature: the
//! sha3-256 [`Digest`], ed25519 [`PublicKey`] / [`Signature`] / [`SigningKey`], the ordered
//! [`ValidatorSet`] with its Byzantine quorum, domain-separated [`Vote`]s and the
//! [`CommitCertificate`] that proves a block was decided; and the PBFT state machine,
//! [`Replica`], that produces those certificates.
//!
//! Must not depend on: tokio, rocksdb, libp2p, jsonrpsee, or any workspace crate. CI checks this
//! with `cargo tree -p consensus -e normal`. Nothing here reads a clock, a socket or a file.
//!
//! # The protocol
//!
//! Heights are decided one at a time, each in views `0, 1, 2, ...`; the leader of (height,
//! view) is validator `(height + view) mod n`. With `n` validators and `f = (n - 1) / 3`, a
//! quorum is `2n/3 + 1` (`2f + 1` when `n = 3f + 1`).
//!
//! 1. The leader of view 0 proposes a digest (PRE-PREPARE). Each validator asks its driver to
//!    validate the value (execute the block) and, if valid, signs a PREPARE.
//! 2. A validator holding the proposal and a quorum of matching PREPAREs is *prepared*: it keeps
//!    that prepared certificate and signs a COMMIT.
//! 3. A quorum of matching COMMITs (in any view of the height) decides: the signatures form the
//!    [`CommitCertificate`] stored with the block.
//! 4. A validator whose view timer fires asks for the next view (VIEW-CHANGE, carrying its
//!    highest prepared certificate). Timeouts double per view up to a ceiling. It joins a higher
//!    view as soon as `f + 1` validators ask for views above its own (at least one of them is
//!    honest), and moves past a view only after a quorum asked for it, so one validator cannot
//!    run ahead alone or drag the others into view-change storms.
//! 5. The leader of view `v > 0`, holding a quorum of VIEW-CHANGEs for `v`, sends NEW-VIEW with
//!    them; it must propose the digest of the highest prepared certificate among them, or any
//!    value if there is none. Validators check that justification before they PREPARE.
//!
//! # Why view changes are safe
//!
//! Suppose digest `d` is decided in view `v`. Then a quorum `Q` committed in `v`, so at least
//! `f + 1` honest validators of `Q` were prepared on `d` in `v` and persisted that certificate
//! before committing. Any NEW-VIEW for `v' > v` carries a quorum of VIEW-CHANGEs, which shares
//! at least `f + 1` members with `Q`, one of them honest and reporting a prepared certificate
//! of view `>= v`. By induction on views, every prepared certificate of a view in `[v, v')` is
//! for `d` (a quorum of PREPAREs needs an honest validator that only prepares justified
//! proposals, and honest validators never sign two PREPAREs in one view). So the highest
//! certificate in any justified NEW-VIEW is for `d`, the new leader must re-propose `d`, and no
//! other digest can gather a quorum at that height.
//!
//! # What a driver must do
//!
//! - Feed [`Input`]s: `Restore` with the saved [`SafetyState`] at boot, then `StartHeight` with
//!   the validator set of the next height to decide and the stored certificate of the block
//!   before it (at boot and after each commit); messages
//!   only after [`Message::verify`]; timer firings; proposal and validation answers
//!   ([`Verdict::NotYet`] for a value only early by the node's clock, then [`Verdict::Valid`]
//!   unasked once the clock caught up). A replica restored with a safety state for a later
//!   height than it starts votes at no height below that one (the blocks in between were lost).
//! - Execute [`Output`]s in order. `Persist` must be durable (synced) before any later output
//!   runs: that is what keeps a restarted validator from signing twice. `Decide` carries the
//!   certificate; the driver commits the block (fetching it if it never saw it) before giving
//!   `StartHeight` for the next height.
//!
//! Invariants:
//! - every byte string a validator signs starts with a domain tag and the chain id, so a
//!   signature can never be replayed on another chain or as another kind of message;
//! - a [`PublicKey`] value is always a valid, non-weak curve point (checked on decode);
//! - [`CommitCertificate::verify`] accepts only 2f+1 (or more) distinct members' valid
//!   signatures over exactly the expected (chain, height, digest);
//! - a [`Replica`] never signs two different votes of one kind for one (height, view).

mod certificate;
mod chain_id;
mod digest;
mod error;
pub mod hex;
#[cfg(feature = "hostile")]
pub mod hostile;
mod keys;
mod message;
mod replica;
mod safety;
mod validator_set;
mod vote;
mod vote_keeper;

pub use certificate::{CertificateError, CommitCertificate, PreparedCertificate, VoteSignature};
pub use chain_id::ChainId;
pub use digest::Digest;
pub use error::Error;
pub use keys::{BatchError, KeyError, PublicKey, Signature, SigningKey, verify_batch};
pub use message::{Message, MessageError, SignedViewChange, SignedVote, Verified, ViewChange};
pub use replica::{
    Config, Evidence, FUTURE_HEIGHTS, FUTURE_MESSAGES_MAX, Input, Output, PAST_CERTIFICATES, Replica, Timer,
    VIEW_WINDOW, Verdict,
};
pub use safety::SafetyState;
pub use validator_set::{VALIDATOR_SET_MAX, ValidatorIndex, ValidatorSet, ValidatorSetError};
pub use vote::{Height, View, Vote, VoteKind};
