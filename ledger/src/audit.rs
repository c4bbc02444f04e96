//! The audit of a stored chain (`stele audit`): every block re-validated from the genesis
//! ([`crate::validate`]) on a fresh in-memory state, and the stored state compared with the
//! re-executed one.

use consensus::{Digest, Height};

use crate::{
    StateReader,
    validate::{apply_certified_block, check_receipts},
};

/// What a successful audit covered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AuditReport {
    /// Blocks verified (heights 1 to the head).
    pub blocks: Height,
    /// Transactions re-executed.
    pub transactions: u64,
    /// Hash of the head header.
    pub head_hash: Digest,
}

/// The first thing that did not verify.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("height {height}: {reason}")]
pub struct AuditFailure {
    /// Where.
    pub height: Height,
    /// What.
    pub reason: String,
}

/// Re-verifies a stored chain from its genesis: the genesis header, then for every block its
/// link, transaction root, certificate against the validator set in force, re-execution
/// (receipts and every root) on a fresh in-memory state, and finally the stored latest state
/// against the re-executed one. `progress` is called after each block. Reads only.
pub fn audit_chain<S: crate::BlockReader + StateReader>(
    store: &S,
    genesis: &crate::Genesis,
    mut progress: impl FnMut(Height),
) -> Result<AuditReport, AuditFailure> {
    let fail = |height: Height, reason: String| AuditFailure { height, reason };
    let replica = crate::MemStore::new(genesis).map_err(|error| fail(0, error.to_string()))?;
    // A damaged head header names its height; report it there rather than at genesis.
    let head = store.head().map_err(|error| fail(error.height().unwrap_or(0), format!("reading the head: {error}")))?;
    let stored_genesis = store.header(0).map_err(|error| fail(0, error.to_string()))?;
    let expected_genesis = crate::BlockReader::head(&replica).map_err(|error| fail(0, error.to_string()))?;
    if stored_genesis.as_ref() != Some(&expected_genesis) {
        return Err(fail(0, "the genesis header does not match the genesis".to_string()));
    }
    let mut transactions = 0;
    for height in 1..=head.height {
        let certified = store
            .block(height)
            .map_err(|error| fail(height, error.to_string()))?
            .ok_or_else(|| fail(height, "block missing".to_string()))?;
        apply_certified_block(&replica, &certified).map_err(|error| fail(height, error.to_string()))?;
        let stored = store
            .receipts(height)
            .map_err(|error| fail(height, error.to_string()))?
            .ok_or_else(|| fail(height, "receipts missing".to_string()))?;
        let computed = crate::BlockReader::receipts(&replica, height)
            .map_err(|error| fail(height, error.to_string()))?
            .unwrap_or_default();
        check_receipts(height, &stored, &computed).map_err(|error| fail(height, error.to_string()))?;
        transactions += certified.block.transactions.len() as u64;
        progress(height);
    }
    for (key, value) in replica.state_entries() {
        let stored = store.latest(&key).map_err(|error| fail(head.height, error.to_string()))?;
        if stored.as_ref() != Some(&value) {
            return Err(fail(
                head.height,
                format!("stored state value of key {} differs from re-execution", consensus::hex::encode(&key)),
            ));
        }
    }
    Ok(AuditReport { blocks: head.height, transactions, head_hash: head.hash() })
}
