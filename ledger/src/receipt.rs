use borsh::{BorshDeserialize, BorshSerialize};
use consensus::Digest;
use serde::{Deserialize, Serialize};

use crate::Role;

/// Why an included transaction had no effect beyond consuming its nonce.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Failure {
    /// The signer lacks the role the payload needs.
    #[error("permission denied: the signer lacks the {required} role")]
    PermissionDenied {
        /// Role needed.
        required: Role,
    },
    /// A transfer of more than the signer holds.
    #[error("insufficient balance: has {balance}, needs {needed}")]
    InsufficientBalance {
        /// Balance held.
        balance: u64,
        /// Amount asked.
        needed: u64,
    },
    /// A mint or transfer that would overflow the receiver's balance or the total supply.
    #[error("balance overflow")]
    BalanceOverflow,
    /// Deleting a record that does not exist.
    #[error("record not found")]
    RecordNotFound,
    /// Adding a validator whose key is already in the (scheduled) set.
    #[error("the validator is already in the set")]
    ValidatorExists,
    /// Removing a validator that is not in the (scheduled) set.
    #[error("the validator is not in the set")]
    ValidatorNotFound,
    /// The change would leave an invalid set (empty, or too large).
    #[error("the validator set would become invalid: {0}")]
    InvalidValidatorSet(String),
}

/// The outcome of one included transaction.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    /// Hash of the transaction.
    pub tx_hash: Digest,
    /// `None` on success; otherwise why it had no effect (its nonce is consumed either way).
    pub failure: Option<Failure>,
}

impl Receipt {
    /// Whether the transaction took effect.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }

    /// sha3-256 of the encoding: the leaf of the receipts root.
    pub fn hash(&self) -> Digest {
        Digest::of(&borsh::to_vec(self).expect("encoding to a Vec cannot fail"))
    }
}
