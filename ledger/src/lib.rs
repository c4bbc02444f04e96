//! What a Stele chain *is*: transactions, blocks, receipts, the state and its Merkle root,
//! deterministic execution, the RocksDB store, and the pure checks an audit runs.
//!
//! Depends on `consensus` for digests, keys and certificates; never on networking, an async
//! runtime or RPC. Only [`store`] touches RocksDB.
//!
//! Invariants:
//! - execution is a pure function of (state after the parent, block): same input, same writes,
//!   receipts and roots on every node;
//! - a block commits atomically (one RocksDB `WriteBatch` that also moves the head), and reads
//!   never see anything above the head;
//! - transfers conserve the total supply; each executed transaction consumes exactly its
//!   account's next nonce;
//! - stored bytes that fail to decode are reported as [`StoreError::Undecodable`], never served.

mod address;
mod admission;
pub mod audit;
mod block;
mod execute;
mod genesis;
pub mod merkle;
mod params;
pub mod proof;
mod propose;
mod receipt;
mod role;
pub mod state;
pub mod store;
mod transaction;
pub mod validate;

pub use address::Address;
pub use admission::{AdmitError, QueueLimit};
pub use block::{Block, BlockHeader, CertifiedBlock};
pub use execute::{BlockInput, Execution, ExecutionError, SignatureCheck, execute, verify_signatures};
pub use genesis::{Genesis, GenesisAccount, GenesisError};
pub use params::Params;
pub use propose::build_block;
pub use receipt::{Failure, Receipt};
pub use role::{Role, Roles};
pub use state::{Account, StateProof, StateReader, ValidatorInfo, ValidatorSchedule};
pub use store::{
    BlockReader, BlockWriter, LocalRecords, MemStore, RocksStore, StateHistory, StoreError, StoreOptions, TxLocation,
};
pub use transaction::{Payload, SignedTransaction, Transaction, TxError};
pub use validate::BlockError;

/// Every error this crate returns, for callers that handle them alike.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A transaction is unacceptable.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// A block is unacceptable.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// Executing a block failed.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The genesis is unusable.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
}

/// Borsh-encodes an in-memory value (which cannot fail).
pub(crate) fn encode<T: borsh::BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("encoding an in-memory value to a Vec cannot fail")
}
