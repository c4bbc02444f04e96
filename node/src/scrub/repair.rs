//! Repairing what a block implies besides itself (its receipts, its transactions' index entries,
//! its hash's index entry, the state tree's nodes and values it wrote) from the block itself: re-executing it on the state before it, read
//! from the versioned tree and proven against the certified state root of the height before.
//! The block's own parts (header, body, certificate) are not repaired here: those come from
//! peers (the scrub asks; `driver::sync` checks and writes the copy).

use consensus::Height;
use ledger::{BlockWriter, Genesis, StateHistory, StoreError, store::StateAfter, store::schema};
use tracing::debug;

/// The columns only a peer's certified copy of the block repairs
/// ([`ledger::BlockWriter::rewrite_block`]).
pub const FROM_PEERS: [&str; 3] = [schema::HEADERS, schema::BODIES, schema::CERTIFICATES];

/// The columns [`rederive`] can write again (the tree's for the version of the height
/// re-executed; [`state_path`] writes the older versions a proof reads).
pub const DERIVED: [&str; 5] =
    [schema::RECEIPTS, schema::TX_INDEX, schema::BLOCK_HASHES, schema::TREE_VALUES, schema::TREE_NODES];

/// Why the derived values of a block could not be written again.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The block itself does not read back (or is missing): it must come from peers first.
    #[error("the block does not read back intact: {0}")]
    Block(String),
    /// Re-executing it failed or did not reproduce its header.
    #[error("re-executing the block: {0}")]
    Execution(#[from] ledger::BlockError),
    /// The store refused or failed the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Re-executes the block at `height` (≥ 1) on the state after `height - 1` and writes its
/// receipts and index entries again ([`BlockWriter::rewrite_derived`], which checks them
/// against the certified header before writing).
pub fn rederive<S: StateHistory + BlockWriter + Sync>(store: &S, height: Height) -> Result<(), RepairError> {
    let certified = match store.block(height) {
        Ok(Some(certified)) => certified,
        Ok(None) => return Err(RepairError::Block(format!("no block at height {height}"))),
        Err(error) => return Err(RepairError::Block(error.to_string())),
    };
    let state = StateAfter { store, height: height - 1 };
    // Every root in the header must come out again, so the receipts are the certified ones.
    let execution = ledger::validate::check_execution(&state, &certified.block, ledger::SignatureCheck::All)?;
    store.rewrite_derived(height, &execution)?;
    Ok(())
}

/// Writes again, oldest first, the versions of the state tree that a proof of `key` at `height`
/// reads (the genesis's from `genesis`, a block's by re-executing it), until that proof
/// verifies: for damage to what an older block wrote and no block has written since. Oldest
/// first, because re-executing a block reads the versions before it. Returns the versions
/// written; a version that cannot be written (its block is damaged too) is skipped.
pub fn state_path<S: StateHistory + BlockWriter + Sync>(
    store: &S,
    genesis: &Genesis,
    key: &[u8],
    height: Height,
) -> Vec<Height> {
    let mut written = Vec::new();
    for version in ledger::state::versions_on_path(store, key, height) {
        if version > height {
            continue;
        }
        let result = match version {
            0 => store.rewrite_genesis_tree(genesis).map_err(RepairError::from),
            version => rederive(store, version),
        };
        match result {
            Ok(()) => written.push(version),
            Err(error) => debug!(version, %error, "scrub: cannot write this state-tree version again"),
        }
        if store.state_proof(key, height).is_ok() {
            break;
        }
    }
    written
}
