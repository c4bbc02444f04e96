//! Persistent storage: the [`BlockReader`] / [`BlockWriter`] traits and their RocksDB
//! implementation, [`RocksStore`]. Only this module touches RocksDB.
//!
//! Reads check what they return against what commits to it (a body against its header's
//! transaction root, a header against the hash index and its certificate, a state value against
//! the header's state root), so damaged data is an error, never an answer.

mod error;
mod mem;
mod rocks;
pub mod schema;

pub use error::{
    BlockDamage, BlockPart, CheckpointError, IoError, Mismatch, Root, StoreError, StoredKey, TreeWalk, ValueDamage,
};
pub use mem::MemStore;
pub use rocks::{RocksStore, StoreOptions};

use std::{collections::BTreeMap, sync::Arc};

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{CommitCertificate, Digest, Height, ValidatorSet};
use jmt::storage::TreeUpdateBatch;
use serde::{Deserialize, Serialize};

use crate::{
    Block, BlockHeader, CertifiedBlock, Execution, Genesis, GenesisError, Receipt, ValidatorSchedule,
    state::{StateProof, StateReader, StateTree, decode_value, key_hash, keys},
};

/// Every crash point of the store, by name (compiled in only with the `failpoints` feature).
///
/// A test arms one with `FAILPOINTS="NAME=return"` (fail-rs syntax, e.g. `3*off->return` to
/// pass three times first) in the environment of a `stele start` built with the feature; the
/// process then prints `failpoint NAME: aborting` to stderr and aborts there (SIGABRT), like a
/// power cut: nothing after that point runs. `before_write` fires with the batch built but not
/// written; `after_write` once the synced write returned, before the caller sends votes,
/// notifies subscribers or starts the next height.
pub const FAILPOINTS: &[&str] = &[
    failpoint::INITIALISE_BEFORE_WRITE,
    failpoint::INITIALISE_AFTER_WRITE,
    failpoint::COMMIT_BEFORE_WRITE,
    failpoint::COMMIT_AFTER_WRITE,
    failpoint::SAFETY_BEFORE_WRITE,
    failpoint::SAFETY_AFTER_WRITE,
];

/// The names in [`FAILPOINTS`].
pub mod failpoint {
    /// Initialising an empty database from the genesis, before its one write.
    pub const INITIALISE_BEFORE_WRITE: &str = "store::initialise::before_write";
    /// Initialising an empty database, after its write.
    pub const INITIALISE_AFTER_WRITE: &str = "store::initialise::after_write";
    /// Committing a block (block, certificate, receipts, indexes, state, head in one batch),
    /// before the write.
    pub const COMMIT_BEFORE_WRITE: &str = "store::commit::before_write";
    /// Committing a block, after the write, before subscribers hear of it.
    pub const COMMIT_AFTER_WRITE: &str = "store::commit::after_write";
    /// Saving the consensus safety state, before the write (the vote it covers is not sent).
    pub const SAFETY_BEFORE_WRITE: &str = "store::save_safety_state::before_write";
    /// Saving the consensus safety state, after the write, before the vote leaves the node.
    pub const SAFETY_AFTER_WRITE: &str = "store::save_safety_state::after_write";
}

/// Aborts the process here if the crash point `name` is armed (see [`FAILPOINTS`]).
#[cfg(feature = "failpoints")]
pub(crate) fn crash_point(name: &'static str) {
    // `eval` runs fail-rs's other actions (panic, sleep, print...) itself and yields a value
    // only for `return`, which here means a crash.
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Without the `failpoints` feature a crash point is nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn crash_point(_name: &'static str) {}

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
    /// The header and certificate of the committed block at a height (≥ 1), without its body:
    /// for a caller that compares or proves headers (peers comparing their chains). Checked as
    /// [`BlockReader::block`] checks them.
    fn certified_header(&self, height: Height) -> Result<Option<(BlockHeader, CommitCertificate)>, StoreError> {
        Ok(self.block(height)?.map(|certified| (certified.block.header, certified.certificate)))
    }
    /// The receipts of the block at a height.
    fn receipts(&self, height: Height) -> Result<Option<Vec<Receipt>>, StoreError>;
    /// The height of the block with this hash.
    fn height_of(&self, hash: &Digest) -> Result<Option<Height>, StoreError>;
    /// Where a transaction was committed.
    fn tx_location(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, StoreError>;

    /// The heights from 1 to `up_to` (at most the head) whose header names another validator
    /// set than the header before it, in increasing order: where each validator-set change
    /// took effect.
    ///
    /// The default reads every header up to `up_to`; [`RocksStore`] answers from an index
    /// written with each block instead.
    fn validator_set_changes(&self, up_to: Height) -> Result<Vec<Height>, StoreError>
    where
        Self: Sized,
    {
        scan_validator_set_changes(self, up_to)
    }
}

/// [`BlockReader::validator_set_changes`] by reading every header from the genesis.
pub(crate) fn scan_validator_set_changes(store: &impl BlockReader, up_to: Height) -> Result<Vec<Height>, StoreError> {
    let up_to = up_to.min(store.head()?.height);
    let header =
        |height: Height| store.header(height)?.ok_or(StoreError::MissingBlockPart { height, part: BlockPart::Header });
    let mut previous = header(0)?.validator_set_digest;
    let mut changes = Vec::new();
    for height in 1..=up_to {
        let digest = header(height)?.validator_set_digest;
        if digest != previous {
            changes.push(height);
            previous = digest;
        }
    }
    Ok(changes)
}

/// Appends to the chain.
pub trait BlockWriter {
    /// Commits the next block, its certificate and its execution in one atomic write.
    ///
    /// Checks that the block extends the head and that `execution` matches its header, so a
    /// caller cannot store a block with the wrong state. The certificate is the caller's to
    /// verify (the store does not know which set signs).
    fn commit(&self, block: &Block, certificate: &CommitCertificate, execution: Execution) -> Result<(), StoreError>;

    /// Writes again what the committed block at `height` implies besides itself, from the
    /// caller's re-execution of it on the state before it: its receipts, its transactions'
    /// index entries, its hash's index entry, and the state tree's nodes and values of version
    /// `height`, in one atomic write. For repairing those values when they are damaged; the
    /// latest-state column and everything else are left alone.
    ///
    /// The block must read back intact (its certificate then vouches for its header), the
    /// receipts must reproduce the header's receipts root and name the block's transactions in
    /// order, and the tree's new root node must hash to the header's state root
    /// ([`StoreError::ExecutionMismatch`] otherwise), so only what the certified block commits
    /// to is ever written.
    fn rewrite_derived(&self, height: Height, execution: &Execution) -> Result<(), StoreError>;

    /// Writes again the header, body and certificate of a committed block below the head, and
    /// its hash's index entry, from a copy (a peer's): for repairing a damaged block.
    ///
    /// The copy must be the block the chain holds there: its hash is what the next block's
    /// (certified) header links to, its body reproduces its transaction root, and its
    /// certificate verifies under the validator set in force at its height
    /// ([`StoreError::ExecutionMismatch`] otherwise). Nothing else is written.
    fn rewrite_block(&self, certified: &CertifiedBlock) -> Result<(), StoreError>;

    /// Writes again the state tree's nodes and values of version 0, built anew from `genesis`:
    /// for repairing damage to what the genesis wrote and no block has written since.
    ///
    /// The genesis must give the stored genesis header, state root included
    /// ([`StoreError::ExecutionMismatch`] otherwise); nothing else is written.
    fn rewrite_genesis_tree(&self, genesis: &Genesis) -> Result<(), StoreError>;
}

/// What a node keeps about itself beside the chain: the consensus core's safety state and the
/// evidence of misbehaviour it saw. Not part of the chain (no peer has the same), so never
/// audited or served; kept by the store so that one write path and one crash model hold for
/// everything a node must not lose.
pub trait LocalRecords {
    /// Saves the consensus core's safety state, durably, before any vote that depends on it
    /// leaves the node.
    fn save_safety_state(&self, state: &[u8]) -> Result<(), StoreError>;
    /// The last saved safety state, if any; a damaged one is an error, never a state.
    fn load_safety_state(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Saves one piece of evidence under `key` ([`schema::evidence_key`]) unless one is stored
    /// there already, keeping at most `keep` pieces (the lowest keys, the oldest heights, go
    /// first). Returns whether `evidence` is now stored (false for a duplicate, or for one older
    /// than every kept piece).
    fn save_evidence(&self, key: &[u8], evidence: &[u8], keep: usize) -> Result<bool, StoreError>;
    /// Every stored piece of evidence, oldest height first.
    fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError>;
}

/// The checks of [`BlockWriter::rewrite_block`], given the header of the block after it (as
/// the store vouches for it) and the validator set in force at its height.
pub(crate) fn check_rewrite(
    certified: &CertifiedBlock,
    next: &BlockHeader,
    validators: &ValidatorSet,
) -> Result<(), StoreError> {
    let block = &certified.block;
    let height = block.header.height;
    let mismatch = |mismatch: Mismatch| StoreError::ExecutionMismatch { height, mismatch };
    if next.previous_hash != block.hash() {
        return Err(mismatch(Mismatch::NotTheChainsBlock { expected: next.previous_hash, found: block.hash() }));
    }
    let tx_root = block.compute_tx_root();
    if tx_root != block.header.tx_root {
        return Err(mismatch(Mismatch::Root {
            root: Root::Transactions,
            expected: block.header.tx_root,
            found: tx_root,
        }));
    }
    certified
        .certificate
        .verify(&block.header.chain_id, validators, height, &block.hash())
        .map_err(|error| mismatch(Mismatch::Certificate(error)))
}

/// The state after the block at `height` of a store, as execution reads it: each value through
/// [`StateHistory::state_at`] (a proof against that height's certified state root), tree nodes
/// as stored (each version keeps its own). For re-executing a block below the head, say to
/// re-derive its receipts ([`BlockWriter::rewrite_derived`]).
pub struct StateAfter<'a, S> {
    /// The store.
    pub store: &'a S,
    /// The height whose state is read.
    pub height: Height,
}

impl<S: StateHistory> jmt::storage::TreeReader for StateAfter<'_, S> {
    fn get_node_option(&self, node_key: &jmt::storage::NodeKey) -> anyhow::Result<Option<jmt::storage::Node>> {
        self.store.get_node_option(node_key)
    }

    fn get_value_option(
        &self,
        max_version: jmt::Version,
        key_hash: jmt::KeyHash,
    ) -> anyhow::Result<Option<jmt::OwnedValue>> {
        self.store.get_value_option(max_version, key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(jmt::storage::NodeKey, jmt::storage::LeafNode)>> {
        self.store.get_rightmost_leaf()
    }
}

impl<S: StateHistory> StateReader for StateAfter<'_, S> {
    fn latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.state_at(key, self.height)
    }
}

/// The tree nodes a block's execution wrote, as a tree reader: enough to hash the new root.
struct NewNodes<'a>(&'a jmt::storage::NodeBatch);

impl jmt::storage::TreeReader for NewNodes<'_> {
    fn get_node_option(&self, node_key: &jmt::storage::NodeKey) -> anyhow::Result<Option<jmt::storage::Node>> {
        Ok(self.0.nodes().get(node_key).cloned())
    }

    fn get_value_option(&self, _: jmt::Version, _: jmt::KeyHash) -> anyhow::Result<Option<jmt::OwnedValue>> {
        Ok(None)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(jmt::storage::NodeKey, jmt::storage::LeafNode)>> {
        Ok(None)
    }
}

/// The genesis's tree nodes and values, built anew, checked to give the stored genesis header
/// (the check of [`BlockWriter::rewrite_genesis_tree`]).
pub(crate) fn genesis_tree(store: &impl BlockReader, genesis: &Genesis) -> Result<TreeUpdateBatch, StoreError> {
    // Built on an empty tree: the stored one may be what is damaged.
    let empty = jmt::storage::NodeBatch::default();
    let (header, _, tree_update) = genesis_state(genesis, &NewNodes(&empty))?;
    let stored = store.header(0)?.ok_or(StoreError::MissingBlockPart { height: 0, part: BlockPart::Header })?;
    if header != stored {
        return Err(StoreError::ExecutionMismatch { height: 0, mismatch: Mismatch::GenesisHeader });
    }
    Ok(tree_update)
}

/// The checks of [`BlockWriter::rewrite_derived`]: the receipts and the tree's new root are the
/// certified block's.
pub(crate) fn check_derived(certified: &CertifiedBlock, execution: &Execution) -> Result<(), StoreError> {
    let block = &certified.block;
    let height = block.header.height;
    let receipts = &execution.receipts;
    let mismatch = |mismatch: Mismatch| StoreError::ExecutionMismatch { height, mismatch };
    let new_nodes = NewNodes(&execution.tree_update.node_batch);
    let root = crate::state::StateTree::new(&new_nodes).get_root_hash_option(height).ok().flatten();
    match root.map(|root| Digest(root.0)) {
        None => return Err(mismatch(Mismatch::NoStateRoot)),
        Some(found) if found != block.header.state_root => {
            return Err(mismatch(Mismatch::Root { root: Root::State, expected: block.header.state_root, found }));
        }
        Some(_) => {}
    }
    let hashes: Vec<Digest> = receipts.iter().map(Receipt::hash).collect();
    let receipts_root = crate::merkle::root(&hashes);
    if receipts_root != block.header.receipts_root {
        return Err(mismatch(Mismatch::Root {
            root: Root::Receipts,
            expected: block.header.receipts_root,
            found: receipts_root,
        }));
    }
    if receipts.len() != block.transactions.len()
        || receipts.iter().zip(&block.transactions).any(|(receipt, tx)| receipt.tx_hash != tx.hash())
    {
        return Err(mismatch(Mismatch::ReceiptsForOtherTransactions));
    }
    Ok(())
}

/// Reads of past states, proofs and validator sets, the same for every store.
pub trait StateHistory: StateReader + BlockReader + Sized {
    /// The value of a state key after the block at `height`, from the versioned tree, checked
    /// against the state root of that height's header (see [`StateHistory::state_proof`]).
    fn state_at(&self, key: &[u8], height: Height) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.state_proof(key, height)?.value)
    }

    /// A proof of a state key's value (or absence) against the state root of `height`.
    ///
    /// The proof is verified against the header's state root before it is returned, so a
    /// damaged tree value or tree node is an error, never a value: one walk from the root to
    /// the leaf and about four hashes per level of the tree.
    fn state_proof(&self, key: &[u8], height: Height) -> Result<StateProof, StoreError> {
        check_height(self, height)?;
        let tree = crate::state::Guarded::new(self);
        let (value, proof) = {
            let walk = StateTree::new(&tree).get_with_proof(key_hash(key), height);
            tree.finish(TreeWalk::Proof { key: key.to_vec(), height }, walk)?
        };
        let header = self.header(height)?.ok_or(StoreError::MissingBlockPart { height, part: BlockPart::Header })?;
        let state_proof = StateProof { key: key.to_vec(), value, height, proof };
        state_proof.verify(&header.state_root).map_err(|reason| StoreError::Corrupt {
            column: schema::TREE_VALUES,
            key: StoredKey::Bytes(key.to_vec()),
            damage: ValueDamage::Unproven { height, reason },
        })?;
        Ok(state_proof)
    }

    /// The validator schedule after the block at `height`.
    fn validator_schedule_at(&self, height: Height) -> Result<ValidatorSchedule, StoreError> {
        let bytes = self
            .state_at(keys::VALIDATORS, height)?
            .ok_or_else(|| StoreError::MissingState { key: keys::VALIDATORS.to_vec(), height: Some(height) })?;
        decode_value(keys::VALIDATORS, &bytes)
    }

    /// The validator set that certifies the block at `height` (known up to head + 1).
    fn validator_set_for(&self, height: Height) -> Result<ValidatorSet, StoreError> {
        let schedule = self.validator_schedule_at(height.saturating_sub(1))?;
        schedule.set_at(height).map_err(|error| StoreError::InvalidValidatorSet { height, error: Arc::new(error) })
    }
}

fn check_height(store: &(impl BlockReader + ?Sized), height: Height) -> Result<(), StoreError> {
    let head = store.head()?.height;
    if height > head {
        return Err(StoreError::AboveHead { height, head });
    }
    Ok(())
}

/// What a store commits: the block must extend the head and its execution must reproduce
/// every root in its header; the certificate must name this block.
pub(crate) fn check_commit(
    head: &BlockHeader,
    block: &Block,
    certificate: &CommitCertificate,
    execution: &Execution,
) -> Result<(), StoreError> {
    let header = &block.header;
    if header.height != head.height + 1 || header.previous_hash != head.hash() {
        return Err(StoreError::NotNextBlock { height: header.height, head: head.height });
    }
    let mismatch = |mismatch: Mismatch| StoreError::ExecutionMismatch { height: header.height, mismatch };
    let compare = |root, expected: Digest, found: Digest| {
        if expected == found { Ok(()) } else { Err(mismatch(Mismatch::Root { root, expected, found })) }
    };
    compare(Root::State, header.state_root, execution.state_root)?;
    compare(Root::Transactions, header.tx_root, execution.tx_root)?;
    if execution.tx_hashes.len() != block.transactions.len() {
        return Err(mismatch(Mismatch::TransactionCount {
            expected: block.transactions.len(),
            found: execution.tx_hashes.len(),
        }));
    }
    compare(Root::Receipts, header.receipts_root, execution.receipts_root)?;
    compare(Root::ValidatorSet, header.validator_set_digest, execution.validator_set_digest)?;
    if certificate.digest != header.hash() || certificate.height != header.height {
        return Err(mismatch(Mismatch::CertificateForAnotherBlock {
            height: certificate.height,
            digest: certificate.digest,
        }));
    }
    Ok(())
}

/// State writes of a genesis.
pub(crate) type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The genesis header, state writes and tree nodes of an empty store.
pub(crate) fn genesis_state(
    genesis: &Genesis,
    tree: &impl jmt::storage::TreeReader,
) -> Result<(BlockHeader, Writes, TreeUpdateBatch), StoreError> {
    genesis.validate().map_err(StoreError::Genesis)?;
    let writes = genesis.state_writes();
    let (root, tree_update) = StateTree::new(tree)
        .put_value_set(writes.iter().map(|(key, value)| (key_hash(key), value.clone())), 0)
        .map_err(|error| StoreError::tree(TreeWalk::Update { height: 0 }, error))?;
    // `validate` has checked this set already; the same message if it ever fails here.
    let validator_set = ValidatorSchedule::starting(0, genesis.validators.clone())
        .set_at(0)
        .map_err(|error| StoreError::Genesis(GenesisError::Validators(error.to_string())))?;
    let header = genesis_header(genesis, Digest(root.0), &validator_set);
    Ok((header, writes, tree_update))
}

/// The header of height 0: it commits to the genesis document (as its previous hash), the
/// genesis state and the first validator set.
pub fn genesis_header(genesis: &Genesis, state_root: Digest, validator_set: &ValidatorSet) -> BlockHeader {
    BlockHeader {
        chain_id: genesis.chain_id.clone(),
        height: 0,
        previous_hash: genesis.hash(),
        timestamp_ms: genesis.genesis_time_ms,
        proposer: validator_set.members()[0],
        tx_root: Digest::ZERO,
        receipts_root: Digest::ZERO,
        state_root,
        validator_set_digest: validator_set.digest(),
    }
}
