//! Why a node refuses a transaction: the one error that admission (a mempool, from a client or
//! a peer) gives and that JSON-RPC reports to the client, each refusal with its own code.

use consensus::Digest;

use crate::{Role, StoreError, TxError};

/// Which cap on transactions behind a nonce gap refused one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueLimit {
    /// The pool's most transactions behind a gap for one account (`mempool.max_queued_per_account`).
    Account,
    /// The pool's most transactions behind a gap in all (`mempool.max_queued`).
    Count,
    /// The pool's most bytes behind a gap in all (`mempool.max_queued_bytes`).
    Bytes,
}

impl std::fmt::Display for QueueLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueueLimit::Account => "this account already has as many transactions waiting behind a gap as are kept",
            QueueLimit::Count => "the pool already holds as many transactions waiting behind a gap as it keeps",
            QueueLimit::Bytes => "the pool already holds as many bytes waiting behind a gap as it keeps",
        })
    }
}

/// Why a transaction was not admitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum AdmitError {
    /// Undecodable, too large, for another chain, a bad field or a bad signature.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The signer lacks the role the payload needs.
    #[error("permission denied: the signer lacks the {0} role")]
    PermissionDenied(Role),
    /// The nonce was already used.
    #[error("nonce {found} is too low: the account's next nonce is {expected}")]
    NonceTooLow {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        found: u64,
    },
    /// The nonce is further ahead than the pool keeps.
    #[error("nonce {found} is too high: at most {max} is accepted now")]
    NonceTooHigh {
        /// Highest nonce accepted now.
        max: u64,
        /// The transaction's nonce.
        found: u64,
    },
    /// The same transaction is already pending.
    #[error("transaction {0} is already pending")]
    Duplicate(Digest),
    /// Another transaction with this account and nonce is pending.
    #[error("another transaction with nonce {0} is pending for this account")]
    NonceTaken(u64),
    /// The pool is at a limit; try again after the next block.
    #[error("mempool full: {0}")]
    Full(&'static str),
    /// The transaction would wait behind a nonce gap and a cap on such transactions is reached;
    /// submitting the missing nonces first gets it in.
    #[error("nonce {found} would wait behind a nonce gap (the account's next executable nonce is {next}) and {limit}")]
    QueueFull {
        /// The nonce that would make the account's next transaction ready.
        next: u64,
        /// The transaction's nonce.
        found: u64,
        /// The cap reached.
        limit: QueueLimit,
    },
    /// Reading the state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
