use consensus::{ChainId, CommitCertificate, SigningKey};
use ledger::{
    BlockReader, BlockWriter, Genesis, GenesisAccount, MemStore, Params, RocksStore, StoreOptions, ValidatorInfo,
    build_block,
};

use super::*;

fn validator() -> SigningKey {
    SigningKey::from_seed([9; 32])
}

fn genesis() -> Genesis {
    let validators =
        vec![ValidatorInfo { name: "v0".into(), public_key: validator().public_key(), peer_id: "peer0".into() }];
    let accounts: Vec<GenesisAccount> = Vec::new();
    Genesis {
        chain_id: ChainId::new("scrub").expect("chain id"),
        genesis_time_ms: 1,
        validators,
        accounts,
        params: Params::default(),
    }
}

/// Commits `count` empty blocks, each certified by the one validator.
fn commit_blocks<S: StateHistory + BlockWriter + Sync>(store: &S, count: u64) {
    for _ in 0..count {
        let head = store.head().expect("head");
        let (block, execution) = build_block(
            store,
            &head,
            validator().public_key(),
            head.timestamp_ms + 10,
            Vec::new(),
            ledger::SignatureCheck::All,
        )
        .expect("block");
        let certificate =
            CommitCertificate::sign(&genesis().chain_id, head.height + 1, 0, block.hash(), &[(0, &validator())]);
        store.commit(&block, &certificate, execution).expect("commit");
    }
}

fn settings(blocks_per_second: u32) -> ChecksConfig {
    ChecksConfig {
        enabled: true,
        blocks_per_second,
        pass_interval: Duration::from_secs(3600),
        state_sample_interval: 1,
        repair: false,
        ..ChecksConfig::default()
    }
}

#[test]
fn each_step_checks_at_most_the_budget_and_a_pass_ends_at_the_head() {
    let store = Arc::new(MemStore::new(&genesis()).expect("store"));
    commit_blocks(store.as_ref(), 10);
    let metrics = Arc::new(Metrics::default());
    let scrubber = Scrubber::new(store.clone(), genesis(), settings(3), metrics.clone(), None);
    assert!(scrubber.begin_pass_if_due(1_000));
    let steps: Vec<Step> = (0..4).map(|_| scrubber.step().expect("step")).collect();
    assert_eq!(
        steps.iter().map(|step| (step.checked, step.pass_completed)).collect::<Vec<_>>(),
        vec![(3, false), (3, false), (3, false), (1, true)]
    );
    let status = scrubber.handle().status();
    assert_eq!((status.height, status.passes, status.errors), (10, 1, 0));
    assert!(status.damaged.is_empty());
    assert_eq!(status.next_pass_ms, Some(1_000 + 3_600_000), "the next pass is due an interval after this one began");
    assert_eq!(metrics.scrub_blocks.get(), 10);
    assert_eq!(metrics.scrub_passes.get(), 1);
    // Between passes nothing is read, until the next is due.
    assert!(!scrubber.begin_pass_if_due(1_000 + 3_599_999));
    assert_eq!(scrubber.step().expect("step").checked, 0);
    commit_blocks(store.as_ref(), 2);
    assert!(scrubber.begin_pass_if_due(1_000 + 3_600_000));
    assert_eq!(scrubber.handle().status().height, 0);
    assert_eq!(scrubber.step().expect("step"), Step { checked: 3, pass_completed: false });
}

#[test]
fn progress_is_saved_and_a_new_scrubber_resumes_from_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(PROGRESS_FILE);
    let store = Arc::new(MemStore::new(&genesis()).expect("store"));
    commit_blocks(store.as_ref(), 8);
    let first = Scrubber::new(store.clone(), genesis(), settings(5), Arc::new(Metrics::default()), Some(file.clone()));
    assert!(first.begin_pass_if_due(1));
    assert_eq!(first.step().expect("step").checked, 5);
    drop(first);
    let metrics = Arc::new(Metrics::default());
    let second = Scrubber::new(store, genesis(), settings(5), metrics.clone(), Some(file.clone()));
    assert_eq!(second.handle().status().height, 5, "resumed where the first stopped");
    assert_eq!(metrics.scrub_height.get(), 5);
    assert!(second.begin_pass_if_due(2));
    assert_eq!(second.step().expect("step"), Step { checked: 3, pass_completed: true });
    // A file that does not parse is ignored: the scrub starts again.
    std::fs::write(&file, b"{not json").expect("write");
    let store = Arc::new(MemStore::new(&genesis()).expect("store"));
    let third = Scrubber::new(store, genesis(), settings(5), Arc::new(Metrics::default()), Some(file));
    assert_eq!(third.handle().status(), ScrubStatus { enabled: true, ..ScrubStatus::default() });
}

/// Flips the last byte of a stored value, as a failing disk would.
fn tamper(path: &Path, column: &str, key: &[u8]) {
    tamper_byte(path, column, key, usize::MAX);
}

/// Flips one byte of a stored value (`index`, or the last one if beyond it).
fn tamper_byte(path: &Path, column: &str, key: &[u8], index: usize) {
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, schema::ALL).expect("open");
    let family = db.cf_handle(column).expect("column family");
    let mut value = db.get_cf(family, key).expect("read").expect("value present");
    let index = index.min(value.len() - 1);
    value[index] ^= 0x01;
    db.put_cf(family, key, value).expect("write");
}

#[test]
fn damage_is_reported_once_with_its_height_and_column_and_cleared_when_intact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    let options = StoreOptions { sync_writes: false, read_only: false };
    let pristine = dir.path().join("pristine");
    {
        let store = RocksStore::open(&path, &genesis(), options).expect("open");
        commit_blocks(&store, 7);
        store.checkpoint(&pristine).expect("checkpoint");
    }
    let block_hash = {
        let store = RocksStore::open(&path, &genesis(), options).expect("open");
        store.header(5).expect("read").expect("header").hash()
    };
    tamper(&path, schema::BODIES, &schema::height_key(2));
    tamper(&path, schema::CERTIFICATES, &schema::height_key(3));
    tamper(&path, schema::RECEIPTS, &schema::height_key(4));
    tamper(&path, schema::BLOCK_HASHES, &block_hash.0);
    let store = Arc::new(RocksStore::open(&path, &genesis(), options).expect("damage below the head opens"));
    let metrics = Arc::new(Metrics::default());
    let scrubber = Scrubber::new(store, genesis(), settings(100), metrics.clone(), None);
    assert!(scrubber.begin_pass_if_due(1));
    assert_eq!(scrubber.step().expect("step"), Step { checked: 7, pass_completed: true });
    let status = scrubber.handle().status();
    let found: Vec<(Height, &str)> =
        status.damaged.iter().map(|damage| (damage.height, damage.column.as_str())).collect();
    assert_eq!(
        found,
        vec![(2, schema::BODIES), (3, schema::CERTIFICATES), (4, schema::RECEIPTS), (5, schema::BLOCK_HASHES)]
    );
    assert_eq!(status.errors, 4);
    assert_eq!(metrics.scrub_errors.get(), 4);
    assert!(
        scrubber.handle().damaged()[0].starts_with("height 2, column bodies: "),
        "{:?}",
        scrubber.handle().damaged()
    );

    // The next pass finds the same damage: it is not counted again.
    assert!(scrubber.begin_pass_if_due(u64::MAX));
    assert!(scrubber.step().expect("step").pass_completed);
    assert_eq!(scrubber.handle().status().errors, 4);
    drop(scrubber);

    // Put back intact (as a repair would): the next pass clears it and counts it repaired.
    let store = Arc::new(RocksStore::open(&pristine, &genesis(), options).expect("open the copy"));
    let scrubber = Scrubber::new(store, genesis(), settings(100), metrics, None);
    {
        let mut status = scrubber.handle.lock();
        status.damaged = found_damage();
        status.errors = 4;
    }
    assert!(scrubber.begin_pass_if_due(1));
    assert!(scrubber.step().expect("step").pass_completed);
    let status = scrubber.handle().status();
    assert!(status.damaged.is_empty(), "{:?}", status.damaged);
    assert_eq!((status.errors, status.repaired), (4, 4));
}

fn found_damage() -> Vec<ScrubDamage> {
    [(2, schema::BODIES), (3, schema::CERTIFICATES), (4, schema::RECEIPTS), (5, schema::BLOCK_HASHES)]
        .into_iter()
        .map(|(height, column)| ScrubDamage { height, column: column.to_string(), reason: "damaged".to_string() })
        .collect()
}

#[test]
fn with_repair_on_receipts_and_indexes_are_re_derived_from_the_block_and_the_rest_stays_damaged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    let options = StoreOptions { sync_writes: false, read_only: false };
    let block_hash = {
        let store = RocksStore::open(&path, &genesis(), options).expect("open");
        commit_blocks(&store, 7);
        store.header(5).expect("read").expect("header").hash()
    };
    tamper(&path, schema::BODIES, &schema::height_key(2));
    tamper(&path, schema::RECEIPTS, &schema::height_key(4));
    tamper(&path, schema::BLOCK_HASHES, &block_hash.0);
    let last_block = ledger::state::key_hash(ledger::state::keys::LAST_BLOCK);
    tamper(&path, schema::TREE_VALUES, &schema::tree_value_key(last_block, 6));
    let store = Arc::new(RocksStore::open(&path, &genesis(), options).expect("open"));
    assert!(store.receipts(4).is_err() && store.height_of(&block_hash).is_err());
    assert!(store.state_proof(ledger::state::keys::LAST_BLOCK, 6).is_err());
    let scrubber = Scrubber::new(
        store.clone(),
        genesis(),
        ChecksConfig { repair: true, ..settings(100) },
        Arc::new(Metrics::default()),
        None,
    );
    assert!(scrubber.begin_pass_if_due(1));
    assert!(scrubber.step().expect("step").pass_completed);
    let status = scrubber.handle().status();
    let found: Vec<(Height, &str)> =
        status.damaged.iter().map(|damage| (damage.height, damage.column.as_str())).collect();
    assert_eq!(found, vec![(2, schema::BODIES)], "a body needs its peers");
    assert_eq!((status.errors, status.repaired), (4, 3));
    assert_eq!(store.receipts(4).expect("repaired"), Some(Vec::new()));
    assert_eq!(store.height_of(&block_hash).expect("repaired"), Some(5));
    assert!(store.state_proof(ledger::state::keys::LAST_BLOCK, 6).is_ok(), "the state tree's version 6 is repaired");
    // Receipts that are not the certified block's are refused, and nothing is written.
    let mut forged = execution_of(store.as_ref(), 4);
    forged.receipts = vec![ledger::Receipt { tx_hash: consensus::Digest([1; 32]), failure: None }];
    assert!(matches!(store.rewrite_derived(4, &forged), Err(StoreError::ExecutionMismatch { height: 4, .. })));
    assert_eq!(store.receipts(4).expect("intact"), Some(Vec::new()));
}

/// The writer of records in [`with_records`]'s chains.
fn writer() -> SigningKey {
    SigningKey::from_seed([11; 32])
}

/// [`genesis`] with an account that may write records.
fn with_records() -> Genesis {
    let mut genesis = genesis();
    genesis.accounts.push(GenesisAccount {
        address: ledger::Address::of(&writer().public_key()),
        balance: 0,
        roles: vec![ledger::Role::Write],
    });
    genesis
}

#[test]
fn with_repair_on_a_tree_node_an_older_block_wrote_is_written_again_from_that_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    let options = StoreOptions { sync_writes: false, read_only: false };
    // The record's key hash shares its first nibble (4) with the validator schedule's, so block
    // 2 writes the tree node at that nibble, and block 4 replaces it: the schedule's proofs at
    // heights 2 and 3 read block 2's node, later ones (and the checks at start) block 4's.
    let record = b"k41".to_vec();
    {
        let store = RocksStore::open(&path, &with_records(), options).expect("open");
        for height in 1..=7u64 {
            let transactions = match height {
                2 | 4 => vec![
                    ledger::Transaction {
                        chain_id: genesis().chain_id,
                        signer: writer().public_key(),
                        nonce: height / 2 - 1,
                        payload: ledger::Payload::PutRecord { key: record.clone(), value: vec![height as u8] },
                    }
                    .sign(&writer()),
                ],
                _ => Vec::new(),
            };
            let head = store.head().expect("head");
            let (block, execution) = build_block(
                &store,
                &head,
                validator().public_key(),
                head.timestamp_ms + 10,
                transactions,
                ledger::SignatureCheck::All,
            )
            .expect("block");
            let certificate =
                CommitCertificate::sign(&genesis().chain_id, height, 0, block.hash(), &[(0, &validator())]);
            store.commit(&block, &certificate, execution).expect("commit");
        }
        assert!(ledger::state::versions_on_path(&store, ledger::state::keys::VALIDATORS, 3).contains(&2));
    }
    // jmt's node key, borsh-encoded: version, nibble count, then the nibbles' bytes. The node
    // is a tag, then 16 optional children (hash, version, type), so byte 34 is the version of
    // its first child (the record's leaf): the proof then looks for a node that is not there.
    let node_key = [2u64.to_le_bytes().as_slice(), &1u64.to_le_bytes(), &1u32.to_le_bytes(), &[0x40]].concat();
    tamper_byte(&path, schema::TREE_NODES, &node_key, 34);
    let store = Arc::new(RocksStore::open(&path, &with_records(), options).expect("damage below the head opens"));
    // (jmt unwraps its read of a sibling node: without `state::Guarded` this panicked.)
    assert!(store.state_proof(ledger::state::keys::VALIDATORS, 3).is_err());
    assert!(store.state_proof(ledger::state::keys::VALIDATORS, 6).is_ok(), "block 4 replaced that node");
    assert!(store.validator_set_for(3).is_err(), "the schedule in force at 3 is read at 2");
    // Sampled every third height, so no check at height 2 re-derives block 2 as its own.
    let settings = ChecksConfig { repair: true, state_sample_interval: 3, ..settings(100) };
    let scrubber = Scrubber::new(store.clone(), with_records(), settings, Arc::new(Metrics::default()), None);
    assert!(scrubber.begin_pass_if_due(1));
    assert!(scrubber.step().expect("step").pass_completed);
    let status = scrubber.handle().status();
    assert!(status.damaged.is_empty(), "{:?}", status.damaged);
    assert!(status.errors >= 1 && status.repaired == status.errors, "{status:?}");
    for height in 2..=3 {
        assert!(store.state_proof(ledger::state::keys::VALIDATORS, height).is_ok(), "at {height}");
    }
    assert!(store.validator_set_for(3).is_ok());
}

#[test]
fn both_stores_rewrite_the_genesis_tree_only_from_their_own_genesis() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions { sync_writes: false, read_only: false };
    let rocks = RocksStore::open(&dir.path().join("data"), &genesis(), options).expect("open");
    let mem = MemStore::new(&genesis()).expect("store");
    let other = Genesis { genesis_time_ms: 2, ..genesis() };
    for store in [&rocks as &dyn BlockWriter, &mem] {
        assert!(matches!(store.rewrite_genesis_tree(&other), Err(StoreError::ExecutionMismatch { height: 0, .. })));
        store.rewrite_genesis_tree(&genesis()).expect("the same genesis");
    }
    assert!(rocks.state_proof(ledger::state::keys::VALIDATORS, 0).is_ok());
    assert!(mem.state_proof(ledger::state::keys::VALIDATORS, 0).is_ok());
}

/// The block at `height` re-executed on the state before it.
fn execution_of<S: StateHistory + BlockReader + Sync>(store: &S, height: Height) -> ledger::Execution {
    let block = store.block(height).expect("read").expect("block").block;
    ledger::validate::check_execution(
        &ledger::store::StateAfter { store, height: height - 1 },
        &block,
        ledger::SignatureCheck::All,
    )
    .expect("executes")
}

#[test]
#[ignore = "a measurement, not a check"]
fn measure_the_cost_of_a_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions { sync_writes: false, read_only: false };
    let store = RocksStore::open(&dir.path().join("data"), &genesis(), options).expect("open");
    commit_blocks(&store, 400);
    for sample in [false, true] {
        let started = std::time::Instant::now();
        for height in 1..=400 {
            assert!(check_height(&store, height, sample).is_empty());
        }
        eprintln!("state sampled {sample}: {:?} per block", started.elapsed() / 400);
    }
}

#[test]
fn both_stores_rewrite_only_the_certified_blocks_receipts() {
    let memory = MemStore::new(&genesis()).expect("store");
    commit_blocks(&memory, 3);
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions { sync_writes: false, read_only: false };
    let rocks = RocksStore::open(&dir.path().join("data"), &genesis(), options).expect("open");
    commit_blocks(&rocks, 3);
    let mut forged = execution_of(&memory, 2);
    forged.receipts = vec![ledger::Receipt { tx_hash: consensus::Digest([1; 32]), failure: None }];
    assert!(matches!(memory.rewrite_derived(2, &forged), Err(StoreError::ExecutionMismatch { height: 2, .. })));
    assert!(matches!(rocks.rewrite_derived(2, &forged), Err(StoreError::ExecutionMismatch { height: 2, .. })));
    // Another block's state tree is refused too.
    let other = execution_of(&memory, 3);
    assert!(matches!(memory.rewrite_derived(2, &other), Err(StoreError::ExecutionMismatch { height: 2, .. })));
    assert!(matches!(rocks.rewrite_derived(2, &other), Err(StoreError::ExecutionMismatch { height: 2, .. })));
    assert!(memory.rewrite_derived(9, &other).is_err(), "no block there");
    assert!(rocks.rewrite_derived(9, &other).is_err(), "no block there");
    repair::rederive(&memory, 2).expect("re-derived");
    repair::rederive(&rocks, 2).expect("re-derived");
    assert_eq!(memory.receipts(2).expect("read"), Some(Vec::new()));
    assert_eq!(rocks.receipts(2).expect("read"), Some(Vec::new()));
}

#[test]
fn both_stores_rewrite_a_block_only_with_the_one_the_chain_holds_there() {
    let memory = MemStore::new(&genesis()).expect("store");
    commit_blocks(&memory, 4);
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StoreOptions { sync_writes: false, read_only: false };
    let rocks = RocksStore::open(&dir.path().join("data"), &genesis(), options).expect("open");
    commit_blocks(&rocks, 4);
    for store in [&memory as &dyn BlockWriterAndReader, &rocks] {
        let copy = store.read_block(2);
        store.rewrite(&copy).expect("the chain's own block");
        let mut forged = copy.clone();
        forged.block.header.timestamp_ms += 1;
        assert!(matches!(store.rewrite(&forged), Err(StoreError::ExecutionMismatch { height: 2, .. })));
        let mut unsigned = copy.clone();
        unsigned.certificate = store.read_block(3).certificate;
        assert!(matches!(store.rewrite(&unsigned), Err(StoreError::ExecutionMismatch { height: 2, .. })));
        assert!(store.rewrite(&store.read_block(4)).is_err(), "not the head");
        assert_eq!(store.read_block(2), copy);
    }
}

/// The two stores behind one object, for the test above.
trait BlockWriterAndReader {
    fn read_block(&self, height: Height) -> ledger::CertifiedBlock;
    fn rewrite(&self, certified: &ledger::CertifiedBlock) -> Result<(), StoreError>;
}

impl<S: BlockReader + BlockWriter> BlockWriterAndReader for S {
    fn read_block(&self, height: Height) -> ledger::CertifiedBlock {
        self.block(height).expect("read").expect("block")
    }

    fn rewrite(&self, certified: &ledger::CertifiedBlock) -> Result<(), StoreError> {
        self.rewrite_block(certified)
    }
}
