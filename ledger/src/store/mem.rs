use std::{
    collections::{BTreeMap, HashMap},
    sync::{RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use consensus::{CommitCertificate, Digest, Height};
use jmt::{
    KeyHash, OwnedValue, Version,
    storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch},
};

use super::{BlockPart, BlockReader, BlockWriter, LocalRecords, StateHistory, StoreError, TxLocation, Writes};
use crate::{Block, BlockHeader, CertifiedBlock, Execution, Genesis, Receipt, state::StateReader};

/// An in-memory store with the same behaviour as [`super::RocksStore`] (checked by one
/// conformance suite): for tests and simulations that need many fast, throwaway chains.
pub struct MemStore {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    head: Height,
    headers: BTreeMap<Height, BlockHeader>,
    bodies: BTreeMap<Height, (Block, CommitCertificate)>,
    receipts: BTreeMap<Height, Vec<Receipt>>,
    hashes: HashMap<Digest, Height>,
    tx_index: HashMap<Digest, TxLocation>,
    state: HashMap<Vec<u8>, Vec<u8>>,
    nodes: HashMap<NodeKey, Node>,
    values: BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
    safety_state: Option<Vec<u8>>,
    evidence: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Inner {
    fn apply(&mut self, writes: &Writes, tree_update: &TreeUpdateBatch) {
        for (key, value) in writes {
            match value {
                Some(value) => self.state.insert(key.clone(), value.clone()),
                None => self.state.remove(key),
            };
        }
        for (node_key, node) in tree_update.node_batch.nodes() {
            self.nodes.insert(node_key.clone(), node.clone());
        }
        for ((version, key_hash), value) in tree_update.node_batch.values() {
            self.values.insert((*key_hash, *version), value.clone());
        }
    }
}

impl MemStore {
    /// A store holding the genesis state of `genesis`.
    pub fn new(genesis: &Genesis) -> Result<Self, StoreError> {
        let store = MemStore { inner: RwLock::new(Inner::default()) };
        let (header, writes, tree_update) = super::genesis_state(genesis, &store)?;
        let mut inner = store.write();
        inner.apply(&writes, &tree_update);
        inner.hashes.insert(header.hash(), 0);
        inner.headers.insert(0, header);
        drop(inner);
        Ok(store)
    }

    // A panic while holding the lock cannot leave a half-applied commit visible (commits apply
    // under one write guard), so a poisoned lock's data is still consistent.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MemStore {
    /// Every latest state entry (for audits comparing a store against a re-execution).
    pub fn state_entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.read().state.iter().map(|(key, value)| (key.clone(), value.clone())).collect()
    }
}

impl BlockReader for MemStore {
    fn head(&self) -> Result<BlockHeader, StoreError> {
        let inner = self.read();
        inner.headers.get(&inner.head).cloned().ok_or(StoreError::MissingHead { height: inner.head })
    }

    fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        Ok(self.read().headers.get(&height).cloned())
    }

    fn block(&self, height: Height) -> Result<Option<CertifiedBlock>, StoreError> {
        Ok(self
            .read()
            .bodies
            .get(&height)
            .map(|(block, certificate)| CertifiedBlock { block: block.clone(), certificate: certificate.clone() }))
    }

    fn receipts(&self, height: Height) -> Result<Option<Vec<Receipt>>, StoreError> {
        Ok(self.read().receipts.get(&height).cloned())
    }

    fn height_of(&self, hash: &Digest) -> Result<Option<Height>, StoreError> {
        Ok(self.read().hashes.get(hash).copied())
    }

    fn tx_location(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, StoreError> {
        Ok(self.read().tx_index.get(tx_hash).copied())
    }
}

impl BlockWriter for MemStore {
    fn commit(&self, block: &Block, certificate: &CommitCertificate, execution: Execution) -> Result<(), StoreError> {
        let mut inner = self.write();
        let head = inner.headers.get(&inner.head).cloned().ok_or(StoreError::MissingHead { height: inner.head })?;
        super::check_commit(&head, block, certificate, &execution)?;
        let height = block.header.height;
        inner.apply(&execution.writes, &execution.tree_update);
        for (index, tx_hash) in execution.tx_hashes.iter().enumerate() {
            inner.tx_index.insert(*tx_hash, TxLocation { height, index: index as u32 });
        }
        inner.hashes.insert(block.hash(), height);
        inner.headers.insert(height, block.header.clone());
        inner.bodies.insert(height, (block.clone(), certificate.clone()));
        inner.receipts.insert(height, execution.receipts);
        inner.head = height;
        Ok(())
    }

    fn rewrite_derived(&self, height: Height, execution: &Execution) -> Result<(), StoreError> {
        let certified = self.block(height)?.ok_or(StoreError::MissingBlock { height })?;
        super::check_derived(&certified, execution)?;
        let receipts = &execution.receipts;
        let mut inner = self.write();
        // The tree's version only: the latest state holds later blocks' writes.
        for (node_key, node) in execution.tree_update.node_batch.nodes() {
            inner.nodes.insert(node_key.clone(), node.clone());
        }
        for ((version, key_hash), value) in execution.tree_update.node_batch.values() {
            inner.values.insert((*key_hash, *version), value.clone());
        }
        for (index, receipt) in receipts.iter().enumerate() {
            inner.tx_index.insert(receipt.tx_hash, TxLocation { height, index: index as u32 });
        }
        inner.hashes.insert(certified.block.hash(), height);
        inner.receipts.insert(height, receipts.to_vec());
        Ok(())
    }

    fn rewrite_genesis_tree(&self, genesis: &Genesis) -> Result<(), StoreError> {
        let tree_update = super::genesis_tree(self, genesis)?;
        // No state writes: the latest state holds later blocks' writes.
        self.write().apply(&Writes::new(), &tree_update);
        Ok(())
    }

    fn rewrite_block(&self, certified: &CertifiedBlock) -> Result<(), StoreError> {
        let height = certified.block.header.height;
        let head = self.head()?.height;
        if height == 0 || height >= head {
            return Err(StoreError::NotRewritable { height, head });
        }
        let next = self
            .header(height + 1)?
            .ok_or(StoreError::MissingBlockPart { height: height + 1, part: BlockPart::Header })?;
        super::check_rewrite(certified, &next, &self.validator_set_for(height)?)?;
        let mut inner = self.write();
        inner.hashes.insert(certified.block.hash(), height);
        inner.headers.insert(height, certified.block.header.clone());
        inner.bodies.insert(height, (certified.block.clone(), certified.certificate.clone()));
        Ok(())
    }
}

impl LocalRecords for MemStore {
    fn save_safety_state(&self, state: &[u8]) -> Result<(), StoreError> {
        self.write().safety_state = Some(state.to_vec());
        Ok(())
    }

    fn load_safety_state(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().safety_state.clone())
    }

    fn save_evidence(&self, key: &[u8], evidence: &[u8], keep: usize) -> Result<bool, StoreError> {
        let mut inner = self.write();
        if inner.evidence.contains_key(key) {
            return Ok(false);
        }
        let excess = (inner.evidence.len() + 1).saturating_sub(keep);
        let dropped: Vec<Vec<u8>> = inner.evidence.keys().take(excess).cloned().collect();
        if excess > 0 && dropped.last().is_none_or(|last_dropped| last_dropped.as_slice() > key) {
            return Ok(false);
        }
        for old in dropped {
            inner.evidence.remove(&old);
        }
        inner.evidence.insert(key.to_vec(), evidence.to_vec());
        Ok(true)
    }

    fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.read().evidence.values().cloned().collect())
    }
}

impl StateReader for MemStore {
    fn latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().state.get(key).cloned())
    }
}

impl StateHistory for MemStore {}

impl TreeReader for MemStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.read().nodes.get(node_key).cloned())
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        let inner = self.read();
        let found = inner.values.range((key_hash, 0)..=(key_hash, max_version)).next_back();
        Ok(found.and_then(|(_, value)| value.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("the store does not support restoring the state tree from chunks")
    }
}
