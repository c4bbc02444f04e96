use std::path::Path;

use borsh::BorshDeserialize;
use consensus::{CommitCertificate, Digest, Height};
use jmt::{
    KeyHash, OwnedValue, Version,
    storage::{LeafNode, Node, NodeKey, TreeReader},
};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::{BlockReader, BlockWriter, StateHistory, StoreError, TxLocation, schema};
use crate::{
    Block, BlockHeader, CertifiedBlock, Execution, Genesis, Receipt, SignedTransaction, encode, state::StateReader,
};

/// How to open a store.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// fsync every commit before it returns (the default; turning it off risks losing the last
    /// blocks on power loss, never consistency).
    pub sync_writes: bool,
    /// Open without writing anything, even while a node has the database open (for audits).
    pub read_only: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { sync_writes: true, read_only: false }
    }
}

/// The RocksDB ledger store: blocks, certificates, receipts, indexes, the versioned state tree
/// and the consensus safety state of one chain.
pub struct RocksStore {
    db: DB,
    options: StoreOptions,
}

impl RocksStore {
    /// Opens the store at `path` for this genesis, creating and initialising it if empty.
    ///
    /// Refuses a database of another chain or genesis, of another schema, or whose head block is
    /// missing, with an error that says which.
    pub fn open(path: &Path, genesis: &Genesis, options: StoreOptions) -> Result<Self, StoreError> {
        let mut db_options = Options::default();
        db_options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let descriptors = schema::ALL.iter().map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = if options.read_only {
            DB::open_cf_for_read_only(&db_options, path, schema::ALL, false)?
        } else {
            db_options.create_if_missing(true);
            db_options.create_missing_column_families(true);
            DB::open_cf_descriptors(&db_options, path, descriptors)?
        };
        let store = RocksStore { db, options };
        if store.get_raw(schema::META, schema::META_GENESIS_HASH)?.is_none() {
            if options.read_only {
                return Err(StoreError::Inconsistent("the database is empty (no genesis)".to_string()));
            }
            store.initialise(genesis)?;
        }
        store.check_identity(genesis)?;
        Ok(store)
    }

    fn initialise(&self, genesis: &Genesis) -> Result<(), StoreError> {
        if self.db.iterator_cf(self.cf(schema::HEADERS)?, IteratorMode::Start).next().is_some() {
            return Err(StoreError::Inconsistent("blocks are stored but the genesis hash is not".to_string()));
        }
        let (header, writes, tree_update) = super::genesis_state(genesis, self)?;
        let mut batch = WriteBatch::default();
        self.put_state_writes(&mut batch, &writes, &tree_update)?;
        batch.put_cf(self.cf(schema::HEADERS)?, schema::height_key(0), encode(&header));
        batch.put_cf(self.cf(schema::BLOCK_HASHES)?, header.hash().0, schema::height_key(0));
        let meta = self.cf(schema::META)?;
        batch.put_cf(meta, schema::META_CHAIN_ID, genesis.chain_id.as_str());
        batch.put_cf(meta, schema::META_GENESIS_HASH, genesis.hash().0);
        batch.put_cf(meta, schema::META_SCHEMA, schema::SCHEMA_VERSION.to_be_bytes());
        batch.put_cf(meta, schema::META_HEAD, schema::height_key(0));
        self.write(batch)
    }

    fn check_identity(&self, genesis: &Genesis) -> Result<(), StoreError> {
        let meta = |key| self.get_raw(schema::META, key);
        let chain_id = meta(schema::META_CHAIN_ID)?.unwrap_or_default();
        if chain_id != genesis.chain_id.as_str().as_bytes() {
            return Err(StoreError::ForeignDatabase {
                field: "chain id",
                expected: genesis.chain_id.to_string(),
                found: String::from_utf8_lossy(&chain_id).into_owned(),
            });
        }
        let genesis_hash = meta(schema::META_GENESIS_HASH)?.unwrap_or_default();
        if genesis_hash != genesis.hash().0 {
            return Err(StoreError::ForeignDatabase {
                field: "genesis hash",
                expected: genesis.hash().to_string(),
                found: consensus::hex::encode(&genesis_hash),
            });
        }
        let schema_version = meta(schema::META_SCHEMA)?.unwrap_or_default();
        if schema_version != schema::SCHEMA_VERSION.to_be_bytes() {
            return Err(StoreError::Inconsistent(format!(
                "schema version {} is not the supported {}",
                consensus::hex::encode(&schema_version),
                schema::SCHEMA_VERSION
            )));
        }
        let head = self.head_height()?;
        if self.get_raw(schema::HEADERS, &schema::height_key(head))?.is_none() {
            return Err(StoreError::Inconsistent(format!("the head block {head} is missing")));
        }
        Ok(())
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or_else(|| StoreError::Inconsistent(format!("column family {name} is missing")))
    }

    fn get_raw(&self, column: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(column)?, key)?)
    }

    fn get_decoded<T: BorshDeserialize>(&self, column: &'static str, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.get_raw(column, key)?
            .map(|bytes| {
                borsh::from_slice(&bytes).map_err(|error| StoreError::Corrupt {
                    column,
                    key: consensus::hex::encode(key),
                    reason: error.to_string(),
                })
            })
            .transpose()
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut write_options = WriteOptions::default();
        write_options.set_sync(self.options.sync_writes);
        Ok(self.db.write_opt(batch, &write_options)?)
    }

    fn put_state_writes(
        &self,
        batch: &mut WriteBatch,
        writes: &std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>,
        tree_update: &jmt::storage::TreeUpdateBatch,
    ) -> Result<(), StoreError> {
        let state = self.cf(schema::STATE)?;
        for (key, value) in writes {
            match value {
                Some(value) => batch.put_cf(state, key, value),
                None => batch.delete_cf(state, key),
            }
        }
        let nodes = self.cf(schema::TREE_NODES)?;
        for (node_key, node) in tree_update.node_batch.nodes() {
            batch.put_cf(nodes, encode(node_key), encode(node));
        }
        let values = self.cf(schema::TREE_VALUES)?;
        for ((version, key_hash), value) in tree_update.node_batch.values() {
            batch.put_cf(values, schema::tree_value_key(*key_hash, *version), encode(value));
        }
        Ok(())
    }

    /// Height of the head block (0 before any block).
    pub fn head_height(&self) -> Result<Height, StoreError> {
        let bytes = self
            .get_raw(schema::META, schema::META_HEAD)?
            .ok_or_else(|| StoreError::Inconsistent("no head recorded".to_string()))?;
        let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            column: schema::META,
            key: "head".to_string(),
            reason: format!("{} bytes, expected 8", bytes.len()),
        })?;
        Ok(Height::from_be_bytes(bytes))
    }

    /// Saves the consensus core's safety state, synced, before any vote that depends on it
    /// leaves the node.
    pub fn save_safety_state(&self, state: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(schema::SAFETY)?, schema::SAFETY_STATE, state);
        let mut write_options = WriteOptions::default();
        write_options.set_sync(true);
        Ok(self.db.write_opt(batch, &write_options)?)
    }

    /// The last saved safety state, if any.
    pub fn load_safety_state(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(schema::SAFETY, schema::SAFETY_STATE)
    }

    /// Whether the header at `height` exists and is at or below the head; reads above the head
    /// never see a write that was not committed with its head update.
    fn visible(&self, height: Height) -> Result<bool, StoreError> {
        Ok(height <= self.head_height()?)
    }
}

impl BlockReader for RocksStore {
    fn head(&self) -> Result<BlockHeader, StoreError> {
        let head = self.head_height()?;
        self.header(head)?.ok_or_else(|| StoreError::Inconsistent(format!("the head block {head} is missing")))
    }

    fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        if !self.visible(height)? {
            return Ok(None);
        }
        self.get_decoded(schema::HEADERS, &schema::height_key(height))
    }

    fn block(&self, height: Height) -> Result<Option<CertifiedBlock>, StoreError> {
        if height == 0 || !self.visible(height)? {
            return Ok(None);
        }
        let key = schema::height_key(height);
        let missing = |what: &str| StoreError::Inconsistent(format!("block {height} has no {what}"));
        let header: BlockHeader = self.get_decoded(schema::HEADERS, &key)?.ok_or_else(|| missing("header"))?;
        let transactions: Vec<SignedTransaction> =
            self.get_decoded(schema::BODIES, &key)?.ok_or_else(|| missing("body"))?;
        let certificate: CommitCertificate =
            self.get_decoded(schema::CERTIFICATES, &key)?.ok_or_else(|| missing("certificate"))?;
        Ok(Some(CertifiedBlock { block: Block { header, transactions }, certificate }))
    }

    fn receipts(&self, height: Height) -> Result<Option<Vec<Receipt>>, StoreError> {
        if height == 0 || !self.visible(height)? {
            return Ok(None);
        }
        self.get_decoded(schema::RECEIPTS, &schema::height_key(height))
    }

    fn height_of(&self, hash: &Digest) -> Result<Option<Height>, StoreError> {
        let Some(bytes) = self.get_raw(schema::BLOCK_HASHES, &hash.0)? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            column: schema::BLOCK_HASHES,
            key: hash.to_string(),
            reason: format!("{} bytes, expected 8", bytes.len()),
        })?;
        let height = Height::from_be_bytes(bytes);
        Ok(self.visible(height)?.then_some(height))
    }

    fn tx_location(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, StoreError> {
        let location: Option<TxLocation> = self.get_decoded(schema::TX_INDEX, &tx_hash.0)?;
        match location {
            Some(location) if self.visible(location.height)? => Ok(Some(location)),
            _ => Ok(None),
        }
    }
}

impl BlockWriter for RocksStore {
    fn commit(&self, block: &Block, certificate: &CommitCertificate, execution: Execution) -> Result<(), StoreError> {
        let header = &block.header;
        super::check_commit(&self.head()?, block, certificate, &execution)?;
        let hash = header.hash();
        let key = schema::height_key(header.height);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(schema::HEADERS)?, key, encode(header));
        batch.put_cf(self.cf(schema::BODIES)?, key, encode(&block.transactions));
        batch.put_cf(self.cf(schema::CERTIFICATES)?, key, encode(certificate));
        batch.put_cf(self.cf(schema::RECEIPTS)?, key, encode(&execution.receipts));
        batch.put_cf(self.cf(schema::BLOCK_HASHES)?, hash.0, key);
        let tx_index = self.cf(schema::TX_INDEX)?;
        for (index, tx_hash) in execution.tx_hashes.iter().enumerate() {
            let location = TxLocation { height: header.height, index: index as u32 };
            batch.put_cf(tx_index, tx_hash.0, encode(&location));
        }
        self.put_state_writes(&mut batch, &execution.writes, &execution.tree_update)?;
        // The head moves in the same batch: a crash leaves either all of this block or none.
        batch.put_cf(self.cf(schema::META)?, schema::META_HEAD, key);
        self.write(batch)
    }
}

impl StateHistory for RocksStore {}

impl StateReader for RocksStore {
    fn latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(schema::STATE, key)
    }
}

impl TreeReader for RocksStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.get_decoded(schema::TREE_NODES, &encode(node_key))?)
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        let column = self.cf(schema::TREE_VALUES)?;
        let seek = schema::tree_value_key(key_hash, max_version);
        let mut iterator = self.db.iterator_cf(column, IteratorMode::From(&seek, Direction::Reverse));
        match iterator.next().transpose()? {
            Some((key, value)) if key.len() == 40 && key[..32] == key_hash.0 => {
                let value: Option<Vec<u8>> = borsh::from_slice(&value).map_err(|error| StoreError::Corrupt {
                    column: schema::TREE_VALUES,
                    key: consensus::hex::encode(&key),
                    reason: error.to_string(),
                })?;
                Ok(value)
            }
            _ => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only the tree-restore path asks for this; Stele syncs by replaying blocks instead.
        anyhow::bail!("the store does not support restoring the state tree from chunks")
    }
}

#[cfg(test)]
#[path = "rocks_test.rs"]
mod tests;
