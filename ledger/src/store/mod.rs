//! Persistent storage: the [`BlockReader`] / [`BlockWriter`] traits and their RocksDB
//! implementation, [`RocksStore`]. Only this module touches RocksDB.

mod rocks;
pub mod schema;

pub use rocks::{RocksStore, StoreOptions};

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{CommitCertificate, Digest, Height};
use serde::{Deserialize, Serialize};

use crate::{Block, BlockHeader, CertifiedBlock, Execution, Receipt};

/// A storage failure. Reads of damaged data are errors, never wrong data and never panics.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum StoreError {
    /// RocksDB itself failed (I/O, checksum mismatch on disk, lock held, ...).
    #[error("rocksdb: {0}")]
    Rocks(String),
    /// A stored value does not decode.
    #[error("corrupt value in column {column} at key {key}: {reason}")]
    Corrupt {
        /// Column family.
        column: &'static str,
        /// Key, as hex.
        key: String,
        /// Decoding error.
        reason: String,
    },
    /// The database belongs to another chain or genesis.
    #[error("this database belongs to another network: its {field} is {found}, the genesis says {expected}")]
    ForeignDatabase {
        /// What differs.
        field: &'static str,
        /// What the genesis says.
        expected: String,
        /// What the database holds.
        found: String,
    },
    /// Stored data contradicts itself (a missing block below the head, a missing state key...).
    #[error("inconsistent database: {0}")]
    Inconsistent(String),
    /// A commit that does not extend the head.
    #[error("block {height} does not extend the head {head}")]
    NotNextBlock {
        /// Height of the block offered.
        height: Height,
        /// Current head height.
        head: Height,
    },
    /// A commit whose execution does not match its header.
    #[error("block {height} does not match its execution: {reason}")]
    ExecutionMismatch {
        /// Height of the block offered.
        height: Height,
        /// Which root differs.
        reason: String,
    },
    /// The state tree failed.
    #[error("state tree: {0}")]
    Tree(String),
    /// The genesis cannot initialise a database.
    #[error("invalid genesis: {0}")]
    Genesis(String),
}

impl From<rocksdb::Error> for StoreError {
    fn from(error: rocksdb::Error) -> Self {
        StoreError::Rocks(error.into_string())
    }
}

/// Where a committed transaction is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxLocation {
    /// Height of its block.
    pub height: Height,
    /// Position in the block.
    pub index: u32,
}

/// Reads the chain.
pub trait BlockReader {
    /// The head (highest committed) header; the genesis header before any block.
    fn head(&self) -> Result<BlockHeader, StoreError>;
    /// The header at a height, if committed.
    fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError>;
    /// The block at a height, with its certificate, if committed (height ≥ 1).
    fn block(&self, height: Height) -> Result<Option<CertifiedBlock>, StoreError>;
    /// The receipts of the block at a height.
    fn receipts(&self, height: Height) -> Result<Option<Vec<Receipt>>, StoreError>;
    /// The height of the block with this hash.
    fn height_of(&self, hash: &Digest) -> Result<Option<Height>, StoreError>;
    /// Where a transaction was committed.
    fn tx_location(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, StoreError>;
}

/// Appends to the chain.
pub trait BlockWriter {
    /// Commits the next block, its certificate and its execution in one atomic write.
    ///
    /// Checks that the block extends the head and that `execution` matches its header, so a
    /// caller cannot store a block with the wrong state. The certificate is the caller's to
    /// verify (the store does not know which set signs).
    fn commit(&self, block: &Block, certificate: &CommitCertificate, execution: Execution) -> Result<(), StoreError>;
}
