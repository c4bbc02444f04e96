use consensus::{ChainId, SigningKey};

use super::*;
use crate::state::keys;
use crate::{Address, GenesisAccount, Params, Role, ValidatorInfo};

fn genesis() -> Genesis {
    let validators = (0..4u8)
        .map(|i| ValidatorInfo {
            name: format!("v{i}"),
            public_key: SigningKey::from_seed([i + 1; 32]).public_key(),
            peer_id: format!("peer{i}"),
        })
        .collect();
    Genesis {
        chain_id: ChainId::new("unit").expect("chain id"),
        genesis_time_ms: 1,
        validators,
        accounts: vec![GenesisAccount { address: Address([1; 20]), balance: 10, roles: vec![Role::Transact] }],
        params: Params::default(),
    }
}

fn open(dir: &tempfile::TempDir) -> RocksStore {
    RocksStore::open(dir.path(), &genesis(), StoreOptions::default()).expect("open")
}

#[test]
fn a_corrupted_value_is_an_error_not_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let headers = store.cf(schema::HEADERS).expect("cf");
    store.db.put_cf(headers, schema::height_key(0), b"\x01garbage").expect("write");
    let error = store.head().expect_err("corrupt header");
    assert!(matches!(error, StoreError::Corrupt { column: "headers", .. }), "{error}");

    let state = store.cf(schema::STATE).expect("cf");
    store.db.put_cf(state, keys::PARAMS, b"\xff").expect("write");
    let error = crate::execute(
        &store,
        crate::BlockInput { chain_id: &genesis().chain_id, height: 1, timestamp_ms: 2, transactions: &[] },
    )
    .err()
    .expect("corrupt params");
    assert!(matches!(error, crate::ExecutionError::Store(StoreError::Corrupt { column: "state", .. })), "{error}");
}

#[test]
fn a_torn_write_above_the_head_is_invisible() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let genesis_header = store.head().expect("head");
    let mut next = genesis_header.clone();
    next.height = 1;
    // Only part of a block reached the disk: the head never moved.
    store.db.put_cf(store.cf(schema::HEADERS).expect("cf"), schema::height_key(1), encode(&next)).expect("write");
    store.db.put_cf(store.cf(schema::BLOCK_HASHES).expect("cf"), next.hash().0, schema::height_key(1)).expect("write");
    drop(store);
    let store = open(&dir);
    assert_eq!(store.head().expect("head"), genesis_header);
    assert_eq!(store.header(1).expect("read"), None);
    assert_eq!(store.height_of(&next.hash()).expect("read"), None);
}

#[test]
fn a_missing_head_block_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    store.db.put_cf(store.cf(schema::META).expect("cf"), schema::META_HEAD, schema::height_key(9)).expect("write");
    drop(store);
    let error = RocksStore::open(dir.path(), &genesis(), StoreOptions::default()).err().expect("refused");
    assert_eq!(error, StoreError::Inconsistent("the head block 9 is missing".to_string()));
}

#[test]
fn an_invalid_genesis_never_initialises_a_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bad = genesis();
    bad.validators.clear();
    let error = RocksStore::open(dir.path(), &bad, StoreOptions::default()).err().expect("refused");
    assert!(matches!(error, StoreError::Genesis(_)), "{error}");
    // Nothing was recorded, so a valid genesis can still initialise the same folder.
    RocksStore::open(dir.path(), &genesis(), StoreOptions::default()).expect("opens");
}
