//! [`StoreError`] and the typed reasons its variants carry.
//!
//! Every variant's message is complete on its own (it includes the underlying error's text),
//! because logs, RPC errors and the scrub's report print the message only. An underlying error
//! from another component is also the variant's `#[source]` when it is the variant's one cause;
//! a reason (what does not match, what is damaged) is plain data shown in the message.
//!
//! `StoreError` is `Clone`, `PartialEq` and `Eq` (callers clone it per refused transaction and
//! tests compare it whole), so an underlying error that is none of these is wrapped: see
//! [`IoError`] and [`StoreError::InvalidValidatorSet`].

use std::{fmt, path::PathBuf, sync::Arc};

use consensus::{CertificateError, Digest, Height, ValidatorSetError};
use jmt::storage::NodeKey;

use super::{TxLocation, schema};
use crate::{GenesisError, state::keys};

/// A storage failure. Reads of damaged data are errors, never wrong data and never panics.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum StoreError {
    /// RocksDB itself failed (I/O, checksum mismatch on disk, lock held, ...).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A column family the schema has is not in the database.
    #[error("inconsistent database: column family {column} is missing")]
    MissingColumn {
        /// Column family.
        column: &'static str,
    },
    /// A database opened read-only has no genesis: nothing was ever written to it (or the
    /// process that was initialising it stopped before its one write).
    #[error("the database is empty (no genesis)")]
    Empty,
    /// An entry the store writes when it initialises a database (or commits a block) is not in
    /// the meta column: for the genesis hash, blocks are stored without it.
    #[error("inconsistent database: no {key} recorded")]
    MissingMeta {
        /// The entry, in words ("head", "genesis hash").
        key: &'static str,
    },
    /// The database belongs to another chain or genesis.
    #[error("this database belongs to another network: its {field} is {found}, the genesis says {expected}")]
    ForeignDatabase {
        /// What differs.
        field: &'static str,
        /// What the genesis says, as text (a chain id, or a genesis hash in hex).
        expected: String,
        /// What the database holds, as text (stored bytes that need not be UTF-8, so they are
        /// kept in the same form as `expected` rather than typed).
        found: String,
    },
    /// The database was written with another schema than the one this code reads.
    #[error(
        "inconsistent database: schema version {} is not the supported {}",
        consensus::hex::encode(.found),
        schema::SCHEMA_VERSION
    )]
    UnsupportedSchema {
        /// The stored schema version, as stored (4 big-endian bytes when intact).
        found: Vec<u8>,
    },
    /// The genesis cannot initialise a database.
    #[error("invalid genesis: {0}")]
    Genesis(#[source] GenesisError),
    /// The head recorded in the meta column has no header: the database cannot go on from it.
    #[error("inconsistent database: the head block {height} is missing")]
    MissingHead {
        /// The recorded head height.
        height: Height,
    },
    /// No committed block at a height where one was needed (at or below the head).
    #[error("inconsistent database: no block at height {height}")]
    MissingBlock {
        /// The height.
        height: Height,
    },
    /// A part of a committed block is not stored (the block is at or below the head).
    #[error("inconsistent database: block {height} has no {part}")]
    MissingBlockPart {
        /// Height of the block.
        height: Height,
        /// What is missing.
        part: BlockPart,
    },
    /// A state key that every state holds is missing.
    #[error(
        "inconsistent database: {} is missing from the state{}",
        keys::describe(.key),
        at_height(.height)
    )]
    MissingState {
        /// The state key.
        key: Vec<u8>,
        /// The height whose state was read, or `None` for the latest state.
        height: Option<Height>,
    },
    /// The stored validator schedule gives no valid validator set at a height.
    #[error("inconsistent database: the validator set at {height} is invalid: {error}")]
    InvalidValidatorSet {
        /// The height whose set was asked for.
        height: Height,
        /// Why the keys are not a set (in an `Arc`: `ValidatorSetError` is not `Clone`).
        #[source]
        error: Arc<ValidatorSetError>,
    },
    /// The headers say the validator set changes at a height, but no block early enough to
    /// schedule that change exists.
    #[error(
        "inconsistent database: the validator set changes at {height} without a change block \
         (changes take effect {delay} blocks after theirs)"
    )]
    UnexplainedValidatorChange {
        /// Where the set changes.
        height: Height,
        /// The chain's validator change delay.
        delay: u64,
    },
    /// A read of the state at a height the chain has not reached.
    #[error("height {height} is above the head {head}")]
    AboveHead {
        /// The height asked for.
        height: Height,
        /// The head height.
        head: Height,
    },
    /// A block asked to be rewritten is the genesis, the head or above it: only a block
    /// between them has a successor whose certified header vouches for the copy.
    #[error("block {height} cannot be rewritten: only a block below the head {head} (and above the genesis) can be")]
    NotRewritable {
        /// Height of the block offered.
        height: Height,
        /// Current head height.
        head: Height,
    },
    /// A commit that does not extend the head.
    #[error("block {height} does not extend the head {head}")]
    NotNextBlock {
        /// Height of the block offered.
        height: Height,
        /// Current head height.
        head: Height,
    },
    /// A commit (or a rewrite) whose execution or copy does not match the certified block.
    #[error("block {height} does not match its execution: {mismatch}")]
    ExecutionMismatch {
        /// Height of the block offered.
        height: Height,
        /// What differs.
        mismatch: Mismatch,
    },
    /// A stored value does not decode.
    #[error("{}: does not decode: {error}", corrupt_value(.column, .key))]
    Undecodable {
        /// Column family.
        column: &'static str,
        /// Its key.
        key: StoredKey,
        /// The decoding error.
        #[source]
        error: IoError,
    },
    /// A stored value decodes but contradicts what commits to it or points at it.
    #[error("{}: {damage}", corrupt_value(.column, .key))]
    Corrupt {
        /// Column family.
        column: &'static str,
        /// Its key.
        key: StoredKey,
        /// What does not match.
        damage: ValueDamage,
    },
    /// A stored part of a block (header, body, receipts, hash index entry) decodes but
    /// contradicts what commits to it: damaged on disk, never served.
    #[error("corrupt {column} value of block {height}: {damage}")]
    CorruptBlock {
        /// Column family.
        column: &'static str,
        /// Height of the block.
        height: Height,
        /// What does not match.
        damage: BlockDamage,
    },
    /// A stored commit certificate names its header but does not verify against the validator
    /// set in force: damaged on disk (or the header it is checked with is), never served.
    #[error("corrupt {} value of block {height}: certificate: {error}", schema::CERTIFICATES)]
    BadCertificate {
        /// Height of the block.
        height: Height,
        /// Why it does not verify.
        #[source]
        error: CertificateError,
    },
    /// A walk of the state tree needed a node that is not stored.
    #[error("state tree: {walk}: a tree node is missing: {node_key:?}")]
    TreeNodeMissing {
        /// The walk.
        walk: TreeWalk,
        /// The missing node's key.
        node_key: NodeKey,
    },
    /// A walk of the state tree read a node or a value that does not read back.
    #[error("state tree: {walk}: a tree node or value does not read back: {error}")]
    TreeRead {
        /// The walk.
        walk: TreeWalk,
        /// The failed read (boxed: it is a `StoreError` itself).
        #[source]
        error: Box<StoreError>,
    },
    /// The state tree (the `jmt` crate) refused a walk for a reason of its own.
    #[error("state tree: {walk}: {reason}")]
    Tree {
        /// The walk.
        walk: TreeWalk,
        /// `jmt`'s message: its errors are `anyhow::Error`s, neither typed nor `Clone`, so
        /// their text is all there is to keep.
        reason: String,
    },
    /// A checkpoint (a consistent copy of the whole database, see `RocksStore::checkpoint`)
    /// could not be made at `path`; nothing is left there.
    #[error("cannot make a checkpoint at {}: {error}", path.display())]
    Checkpoint {
        /// Where the checkpoint was to go.
        path: PathBuf,
        /// Why it failed.
        #[source]
        error: CheckpointError,
    },
    /// A task that worked on the store for its caller (on a blocking thread) ended without an
    /// answer: it panicked or was cancelled, so what it was computing is unknown.
    #[error("{task} failed: {message}")]
    TaskFailed {
        /// The task, in words.
        task: &'static str,
        /// The panic or cancellation, as text: a panic's payload is only text, and the
        /// runtime's join error (tokio's, which this crate does not depend on) is neither
        /// `Clone` nor comparable.
        message: String,
    },
}

impl StoreError {
    /// The height of the damaged block, for errors that name one.
    pub fn height(&self) -> Option<Height> {
        match self {
            StoreError::CorruptBlock { height, .. }
            | StoreError::BadCertificate { height, .. }
            | StoreError::Undecodable { key: StoredKey::Height(height), .. } => Some(*height),
            _ => None,
        }
    }

    /// The column family of the damaged value, for errors that name one (the tree-node column
    /// for a failed walk of the state tree).
    pub fn column(&self) -> Option<&'static str> {
        match self {
            StoreError::Undecodable { column, .. }
            | StoreError::Corrupt { column, .. }
            | StoreError::CorruptBlock { column, .. } => Some(*column),
            StoreError::BadCertificate { .. } => Some(schema::CERTIFICATES),
            StoreError::TreeNodeMissing { .. } | StoreError::TreeRead { .. } | StoreError::Tree { .. } => {
                Some(schema::TREE_NODES)
            }
            _ => None,
        }
    }

    /// A failed walk of the state tree: a store error met during it (a reader's errors reach
    /// `jmt` as `anyhow::Error`s) stays typed, anything else is `jmt`'s own.
    pub(crate) fn tree(walk: TreeWalk, error: anyhow::Error) -> StoreError {
        match error.downcast::<StoreError>() {
            Ok(error) => StoreError::TreeRead { walk, error: Box::new(error) },
            Err(error) => StoreError::Tree { walk, reason: error.to_string() },
        }
    }
}

/// Where a damaged value is, as the messages of [`StoreError::Undecodable`] and
/// [`StoreError::Corrupt`] begin: a block's part as [`StoreError::CorruptBlock`] says it.
fn corrupt_value(column: &str, key: &StoredKey) -> String {
    match key {
        StoredKey::Height(height) => format!("corrupt {column} value of block {height}"),
        key => format!("corrupt value in column {column} at {key}"),
    }
}

/// " at height h", or nothing for the latest state.
fn at_height(height: &Option<Height>) -> String {
    height.map(|height| format!(" at height {height}")).unwrap_or_default()
}

/// The key of a stored value, as an error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredKey {
    /// A height, in a column keyed by height (a block's header, body, certificate, receipts).
    Height(Height),
    /// Key bytes (a hash, a state key, an encoded tree key...), shown in hex.
    Bytes(Vec<u8>),
    /// A fixed key, in words ("head", "state"), or what the value is when its key is not at
    /// hand.
    Name(&'static str),
}

impl fmt::Display for StoredKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredKey::Height(height) => write!(formatter, "block {height}"),
            StoredKey::Bytes(bytes) => write!(formatter, "key {}", consensus::hex::encode(bytes)),
            StoredKey::Name(name) => write!(formatter, "key {name}"),
        }
    }
}

/// A part of a block, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlockPart {
    /// Its header.
    #[error("header")]
    Header,
    /// Its body (the transactions).
    #[error("body")]
    Body,
    /// Its commit certificate.
    #[error("certificate")]
    Certificate,
    /// Its receipts.
    #[error("receipts")]
    Receipts,
    /// One transaction with its receipt.
    #[error("transaction or receipt at index {index}")]
    Transaction {
        /// Position in the block.
        index: usize,
    },
}

/// A Merkle root (or digest) a header commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Root {
    /// `state_root`: the state tree after the block.
    #[error("state root")]
    State,
    /// `tx_root`: the block's transactions.
    #[error("transaction root")]
    Transactions,
    /// `receipts_root`: the block's receipts.
    #[error("receipts root")]
    Receipts,
    /// `validator_set_digest`: the validator set that certifies the block.
    #[error("validator set digest")]
    ValidatorSet,
}

/// How an execution (or a copy of a block, or a genesis) differs from the certified block it
/// is offered for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// A root differs from the header's.
    #[error("{root} {found} is not the header's {expected}")]
    Root {
        /// Which root.
        root: Root,
        /// The header's.
        expected: Digest,
        /// What the execution (or the copy) gives.
        found: Digest,
    },
    /// The execution covers another number of transactions than the block holds.
    #[error("transaction root: the block holds {expected} transactions, the execution {found}")]
    TransactionCount {
        /// Transactions in the block.
        expected: usize,
        /// Transaction hashes in the execution.
        found: usize,
    },
    /// The certificate offered with the block certifies another one.
    #[error("certificate is for another block: block {digest} at height {height}")]
    CertificateForAnotherBlock {
        /// The height it certifies.
        height: Height,
        /// The block it certifies.
        digest: Digest,
    },
    /// The re-executed state tree has no root at the block's height.
    #[error("the re-executed state tree has no root at this height")]
    NoStateRoot,
    /// The receipts are not one per transaction of the block, in order.
    #[error("the receipts do not name the block's transactions")]
    ReceiptsForOtherTransactions,
    /// A copy offered for a block below the head is not the block the next (certified) header
    /// links to.
    #[error("not the block the chain holds at this height: its hash is {found}, the next block links to {expected}")]
    NotTheChainsBlock {
        /// The hash the next header links to.
        expected: Digest,
        /// The copy's hash.
        found: Digest,
    },
    /// The copy's certificate does not verify against the validator set in force. (Kept as
    /// data, not as a `#[source]`: it is one of this enum's reasons, and the message shows it.)
    #[error("certificate: {0}")]
    Certificate(CertificateError),
    /// The genesis does not give the stored genesis header.
    #[error("this genesis does not give the stored genesis header")]
    GenesisHeader,
}

/// How a stored part of a block contradicts what commits to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockDamage {
    /// The genesis header (height 0) does not name the genesis the store was opened with.
    #[error("the genesis header does not name this genesis")]
    ForeignGenesis,
    /// The header names another validator set than the state holds for its height.
    #[error("the header names validator set {named}, the state holds {held}")]
    ValidatorSet {
        /// The header's validator set digest.
        named: Digest,
        /// The digest of the set the state holds.
        held: Digest,
    },
    /// The certificate stored with the header names another block.
    #[error("the certificate is for another block than the header {hash} (a damaged header or certificate)")]
    CertificateForAnotherBlock {
        /// The header's hash.
        hash: Digest,
    },
    /// The header records another height than the one it is stored at.
    #[error("the header says height {found}")]
    WrongHeight {
        /// The height in the header.
        found: Height,
    },
    /// The header's hash is not indexed at its height.
    #[error("its hash {hash} is not indexed at this height (a damaged header or {} entry)", schema::BLOCK_HASHES)]
    HashNotIndexed {
        /// The header's hash.
        hash: Digest,
    },
    /// The body or the receipts do not give the header's root.
    #[error("{}: it gives {found}, the header {expected}", does_not_match(.root))]
    Root {
        /// Which root ([`Root::Transactions`] for the body, [`Root::Receipts`] for the receipts).
        root: Root,
        /// The header's.
        expected: Digest,
        /// What the stored part gives.
        found: Digest,
    },
}

/// What does not match when a stored part of a block does not give the header's `root`, in the
/// header's field names.
fn does_not_match(root: &Root) -> &'static str {
    match root {
        Root::State => "the state does not match the header's state_root",
        Root::Transactions => "the body does not match the header's tx_root",
        Root::Receipts => "the receipts do not match the header's receipts_root",
        Root::ValidatorSet => "the validator set does not match the header's validator_set_digest",
    }
}

/// How a stored value (other than a part of a block) contradicts what it points at or what
/// commits to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueDamage {
    /// A value (or key) that holds a height is not 8 bytes long.
    #[error("{length} bytes, expected an 8-byte height")]
    NotAHeight {
        /// Its length.
        length: usize,
    },
    /// A block-hash index entry points at a height whose header has another hash.
    #[error("indexed at height {height}, whose header has another hash")]
    HashIndexedElsewhere {
        /// The height it points at.
        height: Height,
    },
    /// A transaction index entry points at a position whose receipt names another
    /// transaction.
    #[error(
        "indexed at height {} position {}, where the block's receipts name another transaction",
        .location.height,
        .location.index
    )]
    TxIndexedElsewhere {
        /// Where it points.
        location: TxLocation,
    },
    /// A validator-change index entry marks a height where the set does not change.
    #[error("marks height {height}, where the validator set does not change")]
    NoValidatorChange {
        /// The height it marks.
        height: Height,
    },
    /// The consensus safety state does not match the checksum saved with it.
    #[error("the consensus safety state does not match its checksum")]
    SafetyChecksum,
    /// The state tree's root at a height is not the state root of the header there.
    #[error("the state tree's root at height {height} is {found}, the header's state root is {expected}")]
    StateRoot {
        /// The height (the tree's version).
        height: Height,
        /// The header's state root.
        expected: Digest,
        /// The tree's root.
        found: Digest,
    },
    /// A state value read through the tree does not prove against the header's state root.
    #[error(
        "the value at height {height} or a tree node above it is damaged: it does not prove against the \
         header's state root ({reason})"
    )]
    Unproven {
        /// The height whose state was read.
        height: Height,
        /// `jmt`'s message: its proof check returns an `anyhow::Error`, neither typed nor
        /// `Clone`, so its text is all there is to keep.
        reason: String,
    },
}

/// A walk of the state tree, as an error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeWalk {
    /// Reading the root of a version.
    Root {
        /// The version (height).
        height: Height,
    },
    /// Proving a state key.
    Proof {
        /// The state key.
        key: Vec<u8>,
        /// The version (height).
        height: Height,
    },
    /// Writing a new version (executing a block, or building the genesis state at 0).
    Update {
        /// The version (height) written.
        height: Height,
    },
}

impl fmt::Display for TreeWalk {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeWalk::Root { height } => write!(formatter, "root of height {height}"),
            TreeWalk::Proof { key, height } => {
                write!(formatter, "proof of {} at height {height}", consensus::hex::encode(key))
            }
            TreeWalk::Update { height } => write!(formatter, "updating the state tree to height {height}"),
        }
    }
}

/// Why a checkpoint could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The store is open read-only: the checkpoint must stop the database deleting the files
    /// it links while it links them, which only the process that writes can ask.
    #[error("the store is open read-only; only the process that writes it can checkpoint it")]
    ReadOnly,
    /// Something is at the path already (it is left alone).
    #[error("it already exists")]
    Exists,
    /// The path could not be checked.
    #[error(transparent)]
    Io(IoError),
    /// RocksDB could not write the checkpoint.
    #[error(transparent)]
    Rocks(rocksdb::Error),
}

/// An I/O error that can be cloned and compared, as [`StoreError`] must be: `std::io::Error`
/// is neither, so it is shared in an `Arc` and compared by kind and message. Borsh reports a
/// value that does not decode as one.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct IoError(Arc<std::io::Error>);

impl IoError {
    /// The error.
    pub fn get(&self) -> &std::io::Error {
        &self.0
    }
}

impl From<std::io::Error> for IoError {
    fn from(error: std::io::Error) -> Self {
        IoError(Arc::new(error))
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for IoError {}
