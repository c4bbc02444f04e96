use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{ChainId, Digest, PublicKey, Signature, SigningKey};

use crate::{Address, Params, Role, ValidatorInfo};

/// What a transaction asks the ledger to do.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Payload {
    /// Move `amount` from the signer to `to`. Needs [`Role::Transact`].
    Transfer {
        /// Receiving account.
        to: Address,
        /// Amount moved.
        amount: u64,
    } = 0,
    /// Create `amount` new units in `to`. Needs [`Role::Mint`].
    Mint {
        /// Receiving account.
        to: Address,
        /// Amount created.
        amount: u64,
    } = 1,
    /// Set a record. Needs [`Role::Write`].
    PutRecord {
        /// Record key (at most `Params::max_key_bytes`).
        key: Vec<u8>,
        /// Record value (at most `Params::max_value_bytes`).
        value: Vec<u8>,
    } = 2,
    /// Delete a record. Needs [`Role::Write`].
    DeleteRecord {
        /// Record key.
        key: Vec<u8>,
    } = 3,
    /// Give a role to an account. Needs [`Role::Admin`].
    GrantRole {
        /// Account receiving the role.
        account: Address,
        /// Role granted.
        role: Role,
    } = 4,
    /// Take a role from an account. Needs [`Role::Admin`].
    RevokeRole {
        /// Account losing the role.
        account: Address,
        /// Role revoked.
        role: Role,
    } = 5,
    /// Add a validator, effective `Params::validator_change_delay` blocks later. Needs
    /// [`Role::Admin`].
    AddValidator {
        /// The new validator.
        validator: ValidatorInfo,
    } = 6,
    /// Remove a validator, effective `Params::validator_change_delay` blocks later. Needs
    /// [`Role::Admin`].
    RemoveValidator {
        /// Consensus key of the validator to remove.
        public_key: PublicKey,
    } = 7,
}

impl Payload {
    /// The role the signer must hold for this payload to execute.
    pub fn required_role(&self) -> Role {
        match self {
            Payload::Transfer { .. } => Role::Transact,
            Payload::Mint { .. } => Role::Mint,
            Payload::PutRecord { .. } | Payload::DeleteRecord { .. } => Role::Write,
            Payload::GrantRole { .. }
            | Payload::RevokeRole { .. }
            | Payload::AddValidator { .. }
            | Payload::RemoveValidator { .. } => Role::Admin,
        }
    }
}

/// The signed part of a transaction.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Transaction {
    /// Chain the transaction is for; other chains reject it.
    pub chain_id: ChainId,
    /// The signer's key; its [`Address`] is the account that pays and whose nonce is used.
    pub signer: PublicKey,
    /// Must equal the signer account's nonce; executing the transaction increments it.
    pub nonce: u64,
    /// What to do.
    pub payload: Payload,
}

/// Domain tag that starts every transaction's signing bytes.
const TX_DOMAIN: &[u8] = b"stele/tx/v1";

impl Transaction {
    /// The bytes the signer signs: a domain tag, then the borsh transaction.
    pub fn signing_bytes(&self) -> Vec<u8> {
        borsh::to_vec(&(TX_DOMAIN, self)).expect("encoding to a Vec cannot fail")
    }

    /// Signs the transaction.
    pub fn sign(self, key: &SigningKey) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes());
        SignedTransaction { transaction: self, signature }
    }

    /// The signer's account.
    pub fn sender(&self) -> Address {
        Address::of(&self.signer)
    }
}

/// A transaction with its signature: what clients submit (as 0x hex of this borsh encoding) and
/// what blocks carry.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SignedTransaction {
    /// The signed content.
    pub transaction: Transaction,
    /// The signer's signature over [`Transaction::signing_bytes`].
    pub signature: Signature,
}

/// Why a transaction is not acceptable, before any state is consulted.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum TxError {
    /// Larger than `Params::max_tx_bytes`.
    #[error("transaction is {size} bytes, the limit is {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// The bytes are not a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// For another chain.
    #[error("transaction is for chain {found}, this is {expected}")]
    WrongChain {
        /// This chain.
        expected: ChainId,
        /// The transaction's chain.
        found: ChainId,
    },
    /// A record key over `Params::max_key_bytes` (or empty).
    #[error("record key is {size} bytes, it must be 1 to {max}")]
    KeySize {
        /// Key size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// A record value over `Params::max_value_bytes`.
    #[error("record value is {size} bytes, the limit is {max}")]
    ValueTooLarge {
        /// Value size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// A validator description that cannot be used.
    #[error("invalid validator: {0}")]
    InvalidValidator(String),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

impl SignedTransaction {
    /// The borsh encoding (what travels as hex and is hashed).
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("encoding to a Vec cannot fail")
    }

    /// Decodes exactly one transaction from `bytes`, refusing more than `max_bytes` before
    /// decoding anything and refusing trailing bytes.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Self, TxError> {
        if bytes.len() > max_bytes {
            return Err(TxError::TooLarge { size: bytes.len(), max: max_bytes });
        }
        borsh::from_slice(bytes).map_err(|error| TxError::Malformed(error.to_string()))
    }

    /// sha3-256 of the encoding: the transaction's identity.
    pub fn hash(&self) -> Digest {
        Digest::of(&self.encode())
    }

    /// Size of the encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(self).expect("length of an in-memory value")
    }

    /// Checks everything that needs no state and no signature check: chain, sizes, fields.
    /// Returns the encoded size it measured, so callers need not encode again.
    pub fn check_stateless(&self, chain_id: &ChainId, params: &Params) -> Result<usize, TxError> {
        let transaction = &self.transaction;
        if &transaction.chain_id != chain_id {
            return Err(TxError::WrongChain { expected: chain_id.clone(), found: transaction.chain_id.clone() });
        }
        let size = self.encoded_len();
        if size > params.max_tx_bytes as usize {
            return Err(TxError::TooLarge { size, max: params.max_tx_bytes as usize });
        }
        let check_key = |key: &[u8]| {
            if key.is_empty() || key.len() > params.max_key_bytes as usize {
                return Err(TxError::KeySize { size: key.len(), max: params.max_key_bytes as usize });
            }
            Ok(())
        };
        match &transaction.payload {
            Payload::PutRecord { key, value } => {
                check_key(key)?;
                if value.len() > params.max_value_bytes as usize {
                    return Err(TxError::ValueTooLarge { size: value.len(), max: params.max_value_bytes as usize });
                }
            }
            Payload::DeleteRecord { key } => check_key(key)?,
            Payload::AddValidator { validator } => validator.validate().map_err(TxError::InvalidValidator)?,
            _ => {}
        }
        Ok(size)
    }

    /// Verifies the signature alone (blocks verify theirs in parallel batches instead).
    pub fn verify_signature(&self) -> Result<(), TxError> {
        self.transaction
            .signer
            .verify(&self.transaction.signing_bytes(), &self.signature)
            .map_err(|_| TxError::BadSignature)
    }
}
