use std::{
    collections::VecDeque,
    path::Path,
    sync::{Arc, Mutex},
};

use borsh::BorshDeserialize;
use consensus::{CommitCertificate, Digest, Height, ValidatorSet};
use jmt::{
    KeyHash, OwnedValue, Version,
    storage::{LeafNode, Node, NodeKey, TreeReader},
};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::{
    BlockDamage, BlockPart, BlockReader, BlockWriter, CheckpointError, LocalRecords, Root, StateHistory, StoreError,
    StoredKey, TreeWalk, TxLocation, ValueDamage, crash_point, failpoint, schema,
};
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
    /// The last validator set a certificate was checked against on read: sets change rarely,
    /// so block reads seldom walk the state tree for one.
    certifying_set: Mutex<Option<ValidatorSet>>,
    /// Receipts already checked against their header, for the last few heights read: every
    /// `tx_get` of a block's transactions reads that block's receipts, and committed receipts
    /// never change, so each block's are hashed once rather than once per query.
    verified_receipts: Mutex<VecDeque<(Height, Arc<Vec<Receipt>>)>>,
}

/// How many heights' checked receipts [`RocksStore`] keeps.
const VERIFIED_RECEIPTS_KEPT: usize = 4;

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
            // Only the columns the database has: one written before a column was added (the
            // evidence) still opens for an audit.
            let existing = DB::list_cf(&db_options, path).unwrap_or_else(|_| schema::ALL.map(String::from).to_vec());
            let columns = schema::ALL.into_iter().filter(|name| existing.iter().any(|found| found == name));
            DB::open_cf_for_read_only(&db_options, path, columns, false)?
        } else {
            db_options.create_if_missing(true);
            db_options.create_missing_column_families(true);
            DB::open_cf_descriptors(&db_options, path, descriptors)?
        };
        let store = RocksStore {
            db,
            options,
            certifying_set: Mutex::new(None),
            verified_receipts: Mutex::new(VecDeque::new()),
        };
        if store.get_raw(schema::META, schema::META_GENESIS_HASH)?.is_none() {
            if options.read_only {
                return Err(StoreError::Empty);
            }
            store.initialise(genesis)?;
        }
        store.check_identity(genesis)?;
        // A node must not start on a damaged head: it would build on it. An audit opens read-only
        // and reports damage block by block instead.
        if !options.read_only {
            store.check_head(genesis)?;
            if !store.validator_changes_indexed()? {
                store.index_validator_changes()?;
            }
        }
        Ok(store)
    }

    /// Checks the head as every read would, plus what only the head has to answer for: its
    /// receipts, the state tree's root at its height, and (at height 0) the genesis link.
    fn check_head(&self, genesis: &Genesis) -> Result<(), StoreError> {
        let head = self.head()?;
        if head.height == 0 {
            if head.chain_id != genesis.chain_id || head.previous_hash != genesis.hash() {
                return Err(StoreError::CorruptBlock {
                    column: schema::HEADERS,
                    height: 0,
                    damage: BlockDamage::ForeignGenesis,
                });
            }
        } else {
            self.block(head.height)?;
            self.receipts(head.height)?;
        }
        let tree = crate::state::Guarded::new(self);
        let walk = crate::state::StateTree::new(&tree).get_root_hash(head.height);
        let root = Digest(tree.finish(TreeWalk::Root { height: head.height }, walk)?.0);
        if root != head.state_root {
            return Err(StoreError::Corrupt {
                column: schema::TREE_NODES,
                key: StoredKey::Name("root"),
                damage: ValueDamage::StateRoot { height: head.height, expected: head.state_root, found: root },
            });
        }
        Ok(())
    }

    fn initialise(&self, genesis: &Genesis) -> Result<(), StoreError> {
        if self.db.iterator_cf(self.cf(schema::HEADERS)?, IteratorMode::Start).next().is_some() {
            return Err(StoreError::MissingMeta { key: "genesis hash" });
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
        // No block yet, so no change yet: the index is complete from the start.
        batch.put_cf(meta, schema::META_VALIDATOR_CHANGES, []);
        crash_point(failpoint::INITIALISE_BEFORE_WRITE);
        self.write(batch)?;
        crash_point(failpoint::INITIALISE_AFTER_WRITE);
        Ok(())
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
            return Err(StoreError::UnsupportedSchema { found: schema_version });
        }
        let head = self.head_height()?;
        if self.get_raw(schema::HEADERS, &schema::height_key(head))?.is_none() {
            return Err(StoreError::MissingHead { height: head });
        }
        Ok(())
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or(StoreError::MissingColumn { column: name })
    }

    fn get_raw(&self, column: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(column)?, key)?)
    }

    /// The value at a height in a block column, decoded.
    fn get_at<T: BorshDeserialize>(&self, column: &'static str, height: Height) -> Result<Option<T>, StoreError> {
        self.get_raw(column, &schema::height_key(height))?
            .map(|bytes| {
                borsh::from_slice(&bytes).map_err(|error| StoreError::Undecodable {
                    column,
                    key: StoredKey::Height(height),
                    error: error.into(),
                })
            })
            .transpose()
    }

    fn get_decoded<T: BorshDeserialize>(&self, column: &'static str, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.get_raw(column, key)?
            .map(|bytes| {
                borsh::from_slice(&bytes).map_err(|error| StoreError::Undecodable {
                    column,
                    key: StoredKey::Bytes(key.to_vec()),
                    error: error.into(),
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

    /// Writes a consistent copy of the whole database to `path` (a RocksDB checkpoint): every
    /// column family as of one instant, so the copy holds whole blocks only and its head, state
    /// tree and indexes agree, however many commits run meanwhile. `path` must not exist; its
    /// parent must. Table files are hard-linked when `path` is on the store's filesystem (the
    /// copy then costs almost no space until the store compacts them away) and copied
    /// otherwise; the memtables are flushed first, so the copy needs no write-ahead log replay.
    ///
    /// The copy opens as a store of its own ([`RocksStore::open`]); it holds the consensus
    /// safety state as of that instant too. Only a store opened for writing can make one: the
    /// checkpoint must stop the database deleting the files it links while it links them,
    /// which a read-only (or secondary) instance cannot ask of the process that writes.
    pub fn checkpoint(&self, path: &Path) -> Result<(), StoreError> {
        let failed = |error: CheckpointError| StoreError::Checkpoint { path: path.to_path_buf(), error };
        if self.options.read_only {
            return Err(failed(CheckpointError::ReadOnly));
        }
        match std::fs::symlink_metadata(path) {
            Ok(_) => return Err(failed(CheckpointError::Exists)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(failed(CheckpointError::Io(error.into()))),
        }
        // RocksDB writes into `<path>.tmp` and renames it at the end, removing it on failure.
        rocksdb::checkpoint::Checkpoint::new(&self.db)
            .and_then(|checkpoint| checkpoint.create_checkpoint(path))
            .map_err(|error| failed(CheckpointError::Rocks(error)))
    }

    /// Height of the head block (0 before any block).
    pub fn head_height(&self) -> Result<Height, StoreError> {
        let bytes = self.get_raw(schema::META, schema::META_HEAD)?.ok_or(StoreError::MissingMeta { key: "head" })?;
        let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            column: schema::META,
            key: StoredKey::Name("head"),
            damage: ValueDamage::NotAHeight { length: bytes.len() },
        })?;
        Ok(Height::from_be_bytes(bytes))
    }

    /// The validator set that certifies `header`, from the cache when its digest matches.
    fn certifying_set(&self, header: &BlockHeader) -> Result<ValidatorSet, StoreError> {
        let cached = self.certifying_set.lock().ok().and_then(|cached| cached.clone());
        if let Some(set) = cached
            && set.digest() == header.validator_set_digest
        {
            return Ok(set);
        }
        let set = self.validator_set_for(header.height)?;
        if set.digest() != header.validator_set_digest {
            return Err(StoreError::CorruptBlock {
                column: schema::HEADERS,
                height: header.height,
                damage: BlockDamage::ValidatorSet { named: header.validator_set_digest, held: set.digest() },
            });
        }
        if let Ok(mut cached) = self.certifying_set.lock() {
            *cached = Some(set.clone());
        }
        Ok(set)
    }

    /// The header and certificate at a visible height `h >= 1`, checked against each other: the
    /// certificate names the header's hash, height and chain, and its signatures verify against
    /// the validator set the header names, so neither a damaged header nor a damaged certificate
    /// passes. One batch check of 2f+1 signatures.
    fn read_certified_header(&self, height: Height) -> Result<Option<(BlockHeader, CommitCertificate)>, StoreError> {
        let Some(header) = self.get_at::<BlockHeader>(schema::HEADERS, height)? else {
            return Ok(None);
        };
        let certificate: CommitCertificate = self
            .get_at(schema::CERTIFICATES, height)?
            .ok_or(StoreError::MissingBlockPart { height, part: BlockPart::Certificate })?;
        let hash = header.hash();
        if certificate.digest != hash || certificate.height != height || certificate.chain_id != header.chain_id {
            return Err(StoreError::CorruptBlock {
                column: schema::HEADERS,
                height,
                damage: BlockDamage::CertificateForAnotherBlock { hash },
            });
        }
        let set = self.certifying_set(&header)?;
        certificate
            .verify(&header.chain_id, &set, height, &hash)
            .map_err(|error| StoreError::BadCertificate { height, error })?;
        Ok(Some((header, certificate)))
    }

    /// The commit certificate of the block at `height`, checked as [`BlockReader::block`] checks
    /// it but without reading the body: for a caller that needs only the certificate.
    pub fn certificate(&self, height: Height) -> Result<Option<CommitCertificate>, StoreError> {
        if height == 0 || !self.visible(height)? {
            return Ok(None);
        }
        Ok(self.read_certified_header(height)?.map(|(_, certificate)| certificate))
    }

    /// The receipts at a visible height `h >= 1`, checked against the header's receipts root
    /// (one hash per receipt) the first time they are read.
    fn verified_receipts(&self, height: Height) -> Result<Option<Arc<Vec<Receipt>>>, StoreError> {
        let cached = self
            .verified_receipts
            .lock()
            .ok()
            .and_then(|cache| cache.iter().find(|(at, _)| *at == height).map(|(_, receipts)| Arc::clone(receipts)));
        if cached.is_some() {
            return Ok(cached);
        }
        let Some(receipts) = self.get_at::<Vec<Receipt>>(schema::RECEIPTS, height)? else {
            return Ok(None);
        };
        let header =
            self.checked_header(height)?.ok_or(StoreError::MissingBlockPart { height, part: BlockPart::Header })?;
        let hashes: Vec<Digest> = receipts.iter().map(Receipt::hash).collect();
        let receipts_root = crate::merkle::root(&hashes);
        if receipts_root != header.receipts_root {
            return Err(StoreError::CorruptBlock {
                column: schema::RECEIPTS,
                height,
                damage: BlockDamage::Root {
                    root: Root::Receipts,
                    expected: header.receipts_root,
                    found: receipts_root,
                },
            });
        }
        let receipts = Arc::new(receipts);
        if let Ok(mut cache) = self.verified_receipts.lock() {
            if cache.len() >= VERIFIED_RECEIPTS_KEPT {
                cache.pop_front();
            }
            cache.push_back((height, Arc::clone(&receipts)));
        }
        Ok(Some(receipts))
    }

    /// The header at a visible height, decoded and checked against the hash index.
    fn checked_header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        let Some(header) = self.get_at::<BlockHeader>(schema::HEADERS, height)? else {
            return Ok(None);
        };
        // Each committed header's hash is indexed at its height in the same batch, so a header
        // whose hash is not indexed there (or a damaged index entry) is corrupt.
        let corrupt = |damage| StoreError::CorruptBlock { column: schema::HEADERS, height, damage };
        if header.height != height {
            return Err(corrupt(BlockDamage::WrongHeight { found: header.height }));
        }
        let hash = header.hash();
        match self.get_raw(schema::BLOCK_HASHES, &hash.0)? {
            Some(indexed) if indexed == schema::height_key(height) => Ok(Some(header)),
            _ => Err(corrupt(BlockDamage::HashNotIndexed { hash })),
        }
    }

    /// Whether [`schema::VALIDATOR_CHANGES`] is complete (a database written before it existed,
    /// opened read-only, has no index and is scanned instead).
    fn validator_changes_indexed(&self) -> Result<bool, StoreError> {
        Ok(self.db.cf_handle(schema::VALIDATOR_CHANGES).is_some()
            && self.get_raw(schema::META, schema::META_VALIDATOR_CHANGES)?.is_some())
    }

    /// Indexes every validator-set change up to the head in one write, once, for a database
    /// from before the index (one header read per height).
    fn index_validator_changes(&self) -> Result<(), StoreError> {
        let head = self.head_height()?;
        let changes = super::scan_validator_set_changes(self, head)?;
        let column = self.cf(schema::VALIDATOR_CHANGES)?;
        let mut batch = WriteBatch::default();
        for height in &changes {
            batch.put_cf(column, schema::height_key(*height), []);
        }
        batch.put_cf(self.cf(schema::META)?, schema::META_VALIDATOR_CHANGES, []);
        self.write(batch)?;
        Ok(())
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
        self.header(head)?.ok_or(StoreError::MissingHead { height: head })
    }

    fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        if !self.visible(height)? {
            return Ok(None);
        }
        self.checked_header(height)
    }

    /// One batch check of 2f+1 signatures; the body is not read.
    fn certified_header(&self, height: Height) -> Result<Option<(BlockHeader, CommitCertificate)>, StoreError> {
        if height == 0 || !self.visible(height)? {
            return Ok(None);
        }
        self.read_certified_header(height)
    }

    /// Checks the block against itself before returning it: the certificate against the header
    /// (see `read_certified_header`), and the body against the header's transaction root. Cost: one
    /// hash per transaction and a batch check of 2f+1 signatures.
    fn block(&self, height: Height) -> Result<Option<CertifiedBlock>, StoreError> {
        if height == 0 || !self.visible(height)? {
            return Ok(None);
        }
        let (header, certificate) = self
            .read_certified_header(height)?
            .ok_or(StoreError::MissingBlockPart { height, part: BlockPart::Header })?;
        let transactions: Vec<SignedTransaction> = self
            .get_at(schema::BODIES, height)?
            .ok_or(StoreError::MissingBlockPart { height, part: BlockPart::Body })?;
        let block = Block { header, transactions };
        let tx_root = block.compute_tx_root();
        if tx_root != block.header.tx_root {
            return Err(StoreError::CorruptBlock {
                column: schema::BODIES,
                height,
                damage: BlockDamage::Root { root: Root::Transactions, expected: block.header.tx_root, found: tx_root },
            });
        }
        Ok(Some(CertifiedBlock { block, certificate }))
    }

    /// Checks the receipts against the header's receipts root (one hash per receipt, once per
    /// height while it is among the last few read).
    fn receipts(&self, height: Height) -> Result<Option<Vec<Receipt>>, StoreError> {
        if height == 0 || !self.visible(height)? {
            return Ok(None);
        }
        Ok(self.verified_receipts(height)?.map(|receipts| receipts.as_ref().clone()))
    }

    fn height_of(&self, hash: &Digest) -> Result<Option<Height>, StoreError> {
        let Some(bytes) = self.get_raw(schema::BLOCK_HASHES, &hash.0)? else {
            return Ok(None);
        };
        let corrupt = |damage| StoreError::Corrupt {
            column: schema::BLOCK_HASHES,
            key: StoredKey::Bytes(hash.0.to_vec()),
            damage,
        };
        let bytes: [u8; 8] =
            bytes.as_slice().try_into().map_err(|_| corrupt(ValueDamage::NotAHeight { length: bytes.len() }))?;
        let height = Height::from_be_bytes(bytes);
        if !self.visible(height)? {
            return Ok(None);
        }
        // The header there must have this hash: one header read and hash.
        match self.checked_header(height)? {
            Some(header) if header.hash() == *hash => Ok(Some(height)),
            _ => Err(corrupt(ValueDamage::HashIndexedElsewhere { height })),
        }
    }

    /// Checks that the block's (checked) receipt at the location names this transaction.
    fn tx_location(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, StoreError> {
        let location: Option<TxLocation> = self.get_decoded(schema::TX_INDEX, &tx_hash.0)?;
        let Some(location) = location else { return Ok(None) };
        if location.height == 0 || !self.visible(location.height)? {
            return Ok(None);
        }
        let receipts = self.verified_receipts(location.height)?;
        match receipts.as_ref().and_then(|receipts| receipts.get(location.index as usize)) {
            Some(receipt) if receipt.tx_hash == *tx_hash => Ok(Some(location)),
            _ => Err(StoreError::Corrupt {
                column: schema::TX_INDEX,
                key: StoredKey::Bytes(tx_hash.0.to_vec()),
                damage: ValueDamage::TxIndexedElsewhere { location },
            }),
        }
    }

    /// From [`schema::VALIDATOR_CHANGES`]: two header reads per change instead of one per height.
    /// Each entry is checked against the headers on either side, so a damaged entry is an error;
    /// a missing one would leave a proof that fails to verify, never one that verifies wrongly.
    fn validator_set_changes(&self, up_to: Height) -> Result<Vec<Height>, StoreError> {
        if !self.validator_changes_indexed()? {
            return super::scan_validator_set_changes(self, up_to);
        }
        let up_to = up_to.min(self.head_height()?);
        let mut changes = Vec::new();
        for entry in self.db.iterator_cf(self.cf(schema::VALIDATOR_CHANGES)?, IteratorMode::Start) {
            let (key, _) = entry?;
            let corrupt = |damage| StoreError::Corrupt {
                column: schema::VALIDATOR_CHANGES,
                key: StoredKey::Bytes(key.to_vec()),
                damage,
            };
            let height = <[u8; 8]>::try_from(key.as_ref())
                .map(Height::from_be_bytes)
                .map_err(|_| corrupt(ValueDamage::NotAHeight { length: key.len() }))?;
            if height > up_to {
                break;
            }
            let digest = |height| self.checked_header(height).map(|header| header.map(|h| h.validator_set_digest));
            match (height.checked_sub(1).map(digest).transpose()?, digest(height)?) {
                (Some(Some(before)), Some(after)) if before != after => changes.push(height),
                _ => return Err(corrupt(ValueDamage::NoValidatorChange { height })),
            }
        }
        Ok(changes)
    }
}

impl BlockWriter for RocksStore {
    fn commit(&self, block: &Block, certificate: &CommitCertificate, execution: Execution) -> Result<(), StoreError> {
        let header = &block.header;
        let head = self.head()?;
        super::check_commit(&head, block, certificate, &execution)?;
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
        if header.validator_set_digest != head.validator_set_digest {
            batch.put_cf(self.cf(schema::VALIDATOR_CHANGES)?, key, []);
        }
        self.put_state_writes(&mut batch, &execution.writes, &execution.tree_update)?;
        // The head moves in the same batch: a crash leaves either all of this block or none.
        batch.put_cf(self.cf(schema::META)?, schema::META_HEAD, key);
        crash_point(failpoint::COMMIT_BEFORE_WRITE);
        self.write(batch)?;
        crash_point(failpoint::COMMIT_AFTER_WRITE);
        Ok(())
    }

    fn rewrite_derived(&self, height: Height, execution: &Execution) -> Result<(), StoreError> {
        // `block` checks the certificate against the header and the body against the header,
        // without the hash index, so it reads back even when that index entry is the damage.
        let certified = self.block(height)?.ok_or(StoreError::MissingBlock { height })?;
        super::check_derived(&certified, execution)?;
        let receipts = &execution.receipts;
        let key = schema::height_key(height);
        let mut batch = WriteBatch::default();
        // The tree's version only: the latest-state column holds later blocks' writes.
        self.put_state_writes(&mut batch, &std::collections::BTreeMap::new(), &execution.tree_update)?;
        batch.put_cf(self.cf(schema::RECEIPTS)?, key, encode(&receipts.to_vec()));
        let tx_index = self.cf(schema::TX_INDEX)?;
        for (index, receipt) in receipts.iter().enumerate() {
            batch.put_cf(tx_index, receipt.tx_hash.0, encode(&TxLocation { height, index: index as u32 }));
        }
        batch.put_cf(self.cf(schema::BLOCK_HASHES)?, certified.block.hash().0, key);
        self.write(batch)
    }

    fn rewrite_genesis_tree(&self, genesis: &Genesis) -> Result<(), StoreError> {
        let tree_update = super::genesis_tree(self, genesis)?;
        let mut batch = WriteBatch::default();
        self.put_state_writes(&mut batch, &std::collections::BTreeMap::new(), &tree_update)?;
        self.write(batch)
    }

    fn rewrite_block(&self, certified: &CertifiedBlock) -> Result<(), StoreError> {
        let block = &certified.block;
        let height = block.header.height;
        let head = self.head_height()?;
        if height == 0 || height >= head {
            return Err(StoreError::NotRewritable { height, head });
        }
        // The next header as its certificate proves it: what it links to is this block's hash.
        let (next, _) = self
            .read_certified_header(height + 1)?
            .ok_or(StoreError::MissingBlockPart { height: height + 1, part: BlockPart::Header })?;
        super::check_rewrite(certified, &next, &self.validator_set_for(height)?)?;
        let key = schema::height_key(height);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(schema::HEADERS)?, key, encode(&block.header));
        batch.put_cf(self.cf(schema::BODIES)?, key, encode(&block.transactions));
        batch.put_cf(self.cf(schema::CERTIFICATES)?, key, encode(&certified.certificate));
        batch.put_cf(self.cf(schema::BLOCK_HASHES)?, block.hash().0, key);
        self.write(batch)
    }
}

impl LocalRecords for RocksStore {
    /// Saves the consensus core's safety state, synced, before any vote that depends on it
    /// leaves the node. Its checksum goes in the same batch.
    fn save_safety_state(&self, state: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        let safety = self.cf(schema::SAFETY)?;
        batch.put_cf(safety, schema::SAFETY_STATE, state);
        batch.put_cf(safety, schema::SAFETY_CHECKSUM, Digest::of(state).0);
        let mut write_options = WriteOptions::default();
        write_options.set_sync(true);
        crash_point(failpoint::SAFETY_BEFORE_WRITE);
        self.db.write_opt(batch, &write_options)?;
        crash_point(failpoint::SAFETY_AFTER_WRITE);
        Ok(())
    }

    /// The last saved safety state, if any.
    ///
    /// A damaged state could still decode, to votes this validator never cast, and let it sign
    /// twice; so it is checked against its checksum. (A state saved before checksums existed
    /// has none and is taken as it is.)
    fn load_safety_state(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(state) = self.get_raw(schema::SAFETY, schema::SAFETY_STATE)? else {
            return Ok(None);
        };
        if let Some(checksum) = self.get_raw(schema::SAFETY, schema::SAFETY_CHECKSUM)?
            && checksum != Digest::of(&state).0
        {
            return Err(StoreError::Corrupt {
                column: schema::SAFETY,
                key: StoredKey::Name("state"),
                damage: ValueDamage::SafetyChecksum,
            });
        }
        Ok(Some(state))
    }

    /// Saves one piece of evidence of misbehaviour under `key` ([`schema::evidence_key`]) unless
    /// one is stored there already, keeping at most `keep` pieces: past that, the lowest keys
    /// (the oldest heights) are deleted in the same write. Returns whether `evidence` is now
    /// stored (false for a duplicate, or for one older than every kept piece).
    fn save_evidence(&self, key: &[u8], evidence: &[u8], keep: usize) -> Result<bool, StoreError> {
        let column = self.cf(schema::EVIDENCE)?;
        if self.db.get_cf(column, key)?.is_some() {
            return Ok(false);
        }
        // Evidence is rare and bounded, so counting it on each save is cheap.
        let mut keys = Vec::new();
        for entry in self.db.iterator_cf(column, IteratorMode::Start) {
            keys.push(entry?.0);
        }
        let excess = (keys.len() + 1).saturating_sub(keep);
        if excess > 0 && keys.get(excess - 1).is_none_or(|last_dropped| **last_dropped > *key) {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        for old in keys.iter().take(excess) {
            batch.delete_cf(column, old);
        }
        batch.put_cf(column, key, evidence);
        let mut write_options = WriteOptions::default();
        write_options.set_sync(self.options.sync_writes);
        self.db.write_opt(batch, &write_options)?;
        Ok(true)
    }

    /// Every stored piece of evidence, oldest height first.
    fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        // A database opened read-only from before evidence was kept has no such column.
        let Some(column) = self.db.cf_handle(schema::EVIDENCE) else { return Ok(Vec::new()) };
        let mut pieces = Vec::new();
        for entry in self.db.iterator_cf(column, IteratorMode::Start) {
            pieces.push(entry?.1.into_vec());
        }
        Ok(pieces)
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
                let value: Option<Vec<u8>> = borsh::from_slice(&value).map_err(|error| StoreError::Undecodable {
                    column: schema::TREE_VALUES,
                    key: StoredKey::Bytes(key.to_vec()),
                    error: error.into(),
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

#[cfg(test)]
mod checkpoint_tests {
    use consensus::{ChainId, SigningKey};

    use super::*;
    use crate::{GenesisAccount, Params, ValidatorInfo, audit::audit_chain, build_block};

    fn validator() -> SigningKey {
        SigningKey::from_seed([7; 32])
    }

    fn genesis() -> Genesis {
        let validators =
            vec![ValidatorInfo { name: "v0".into(), public_key: validator().public_key(), peer_id: "peer0".into() }];
        let accounts: Vec<GenesisAccount> = Vec::new();
        Genesis {
            chain_id: ChainId::new("checkpoint").expect("chain id"),
            genesis_time_ms: 1,
            validators,
            accounts,
            params: Params::default(),
        }
    }

    /// Commits one empty block on the head, certified by the one validator.
    fn commit_block(store: &RocksStore) {
        let head = store.head().expect("head");
        let (block, execution) = build_block(
            store,
            &head,
            validator().public_key(),
            head.timestamp_ms + 10,
            Vec::new(),
            crate::SignatureCheck::All,
        )
        .expect("block");
        let key = validator();
        let certificate = CommitCertificate::sign(&genesis().chain_id, head.height + 1, 0, block.hash(), &[(0, &key)]);
        store.commit(&block, &certificate, execution).expect("commit");
    }

    #[test]
    fn a_checkpoint_is_a_store_of_its_own_frozen_at_that_instant() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RocksStore::open(&dir.path().join("live"), &genesis(), StoreOptions::default()).expect("open");
        for _ in 0..3 {
            commit_block(&store);
        }
        store.save_safety_state(b"votes").expect("safety state");
        let copy_path = dir.path().join("copy");
        store.checkpoint(&copy_path).expect("checkpoint");
        commit_block(&store);
        assert_eq!(store.head_height().expect("head"), 4);

        let copy = RocksStore::open(&copy_path, &genesis(), StoreOptions::default()).expect("the copy opens");
        assert_eq!(copy.head_height().expect("head"), 3);
        assert_eq!(copy.head().expect("head"), store.header(3).expect("read").expect("header"));
        assert_eq!(copy.load_safety_state().expect("read"), Some(b"votes".to_vec()));
        assert_eq!(audit_chain(&copy, &genesis(), |_| {}).expect("the copy audits").blocks, 3);
        // The copy goes on as a store of its own, and so does the original.
        commit_block(&copy);
        commit_block(&store);
        assert_eq!(copy.head_height().expect("head"), 4);
        assert_eq!(store.head_height().expect("head"), 5);
    }

    #[test]
    fn checkpoints_taken_while_blocks_commit_each_hold_a_whole_chain() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RocksStore::open(&dir.path().join("live"), &genesis(), StoreOptions::default()).expect("open");
        let copies: Vec<std::path::PathBuf> = (0..4).map(|index| dir.path().join(format!("copy{index}"))).collect();
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                for _ in 0..40 {
                    commit_block(&store);
                }
            });
            for path in &copies {
                store.checkpoint(path).expect("checkpoint");
            }
            writer.join().expect("writer");
        });
        for path in &copies {
            // Opening for writing checks the head block, its receipts and the state root.
            let copy = RocksStore::open(path, &genesis(), StoreOptions::default()).expect("the copy opens");
            let head = copy.head_height().expect("head");
            assert_eq!(audit_chain(&copy, &genesis(), |_| {}).expect("the copy audits").blocks, head);
        }
    }

    #[test]
    fn an_existing_path_or_a_read_only_store_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let live = dir.path().join("live");
        let store = RocksStore::open(&live, &genesis(), StoreOptions::default()).expect("open");
        commit_block(&store);
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).expect("dir");
        std::fs::write(existing.join("keep"), b"mine").expect("file");
        let error = store.checkpoint(&existing).expect_err("the path exists");
        assert!(matches!(&error, StoreError::Checkpoint { path, .. } if *path == existing), "{error}");
        assert!(error.to_string().contains("already exists"), "{error}");
        assert_eq!(std::fs::read_dir(&existing).expect("dir").count(), 1);
        assert_eq!(std::fs::read(existing.join("keep")).expect("file"), b"mine");
        let missing_parent = dir.path().join("no").join("such");
        assert!(matches!(store.checkpoint(&missing_parent), Err(StoreError::Checkpoint { .. })));
        assert!(!dir.path().join("no").exists());
        drop(store);

        let options = StoreOptions { sync_writes: false, read_only: true };
        let read_only = RocksStore::open(&live, &genesis(), options).expect("open read-only");
        let error = read_only.checkpoint(&dir.path().join("copy")).expect_err("read-only");
        assert!(error.to_string().contains("read-only"), "{error}");
        assert!(!dir.path().join("copy").exists());
    }
}
