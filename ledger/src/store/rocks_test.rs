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
    assert!(
        matches!(error, StoreError::Undecodable { column: "headers", key: crate::store::StoredKey::Height(0), .. }),
        "{error}"
    );

    let state = store.cf(schema::STATE).expect("cf");
    store.db.put_cf(state, keys::PARAMS, b"\xff").expect("write");
    let error = crate::execute(
        &store,
        crate::BlockInput { chain_id: &genesis().chain_id, height: 1, timestamp_ms: 2, transactions: &[] },
        crate::SignatureCheck::All,
    )
    .err()
    .expect("corrupt params");
    assert!(matches!(error, crate::ExecutionError::Store(StoreError::Undecodable { column: "state", .. })), "{error}");
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
    assert_eq!(error, StoreError::MissingHead { height: 9 });
    assert_eq!(error.to_string(), "inconsistent database: the head block 9 is missing");
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

mod audit_tamper {
    use consensus::CommitCertificate;

    use super::*;
    use crate::{Payload, Receipt, Transaction, audit::audit_chain, build_block};

    fn faucet() -> SigningKey {
        SigningKey::from_seed([50; 32])
    }

    pub(super) fn funded() -> Genesis {
        let mut funded = genesis();
        funded.accounts.push(GenesisAccount {
            address: Address::of(&faucet().public_key()),
            balance: 1_000,
            roles: vec![Role::Transact],
        });
        funded
    }

    /// A three-block chain with two transfers per block.
    pub(super) fn chain(dir: &tempfile::TempDir) -> RocksStore {
        let store = RocksStore::open(dir.path(), &funded(), StoreOptions::default()).expect("open");
        let validators: Vec<SigningKey> = (0..4u8).map(|i| SigningKey::from_seed([i + 1; 32])).collect();
        for height in 1..=3u64 {
            let transactions = (0..2)
                .map(|i| {
                    let nonce = (height - 1) * 2 + i;
                    let payload = Payload::Transfer { to: Address([9; 20]), amount: nonce + 1 };
                    Transaction { chain_id: genesis().chain_id, signer: faucet().public_key(), nonce, payload }
                        .sign(&faucet())
                })
                .collect();
            let head = store.head().expect("head");
            let (block, execution) = build_block(
                &store,
                &head,
                validators[0].public_key(),
                head.timestamp_ms + 10,
                transactions,
                crate::SignatureCheck::All,
            )
            .expect("valid");
            let signers: Vec<(u32, &SigningKey)> =
                validators.iter().take(3).enumerate().map(|(i, k)| (i as u32, k)).collect();
            let certificate = CommitCertificate::sign(&genesis().chain_id, height, 0, block.hash(), &signers);
            store.commit(&block, &certificate, execution).expect("commit");
        }
        store
    }

    fn audit(store: &RocksStore) -> Result<crate::audit::AuditReport, crate::audit::AuditFailure> {
        audit_chain(store, &funded(), |_| {})
    }

    fn put<T: borsh::BorshSerialize>(store: &RocksStore, column: &'static str, key: &[u8], value: &T) {
        store.db.put_cf(store.cf(column).expect("cf"), key, encode(value)).expect("write");
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = chain(&dir);
        let report = audit(&store).expect("verifies");
        assert_eq!(report.blocks, 3);
        assert_eq!(report.transactions, 6);
        assert_eq!(report.head_hash, store.head().expect("head").hash());
    }

    #[test]
    fn each_kind_of_tampering_is_caught_at_its_height() {
        type Tamper = fn(&RocksStore);
        let cases: [(&str, Tamper, &str); 5] = [
            (
                "a stored transaction",
                |store| {
                    let mut block = store.block(2).expect("read").expect("block").block;
                    block.transactions.swap(0, 1);
                    put(store, schema::BODIES, &schema::height_key(2), &block.transactions);
                },
                "tx_root",
            ),
            (
                "a header",
                |store| {
                    let mut header = store.header(2).expect("read").expect("header");
                    header.timestamp_ms += 1;
                    put(store, schema::HEADERS, &schema::height_key(2), &header);
                },
                "certificate",
            ),
            (
                "a certificate signature",
                |store| {
                    let mut certificate = store.block(2).expect("read").expect("block").certificate;
                    certificate.signatures[1].signature.0[7] ^= 1;
                    put(store, schema::CERTIFICATES, &schema::height_key(2), &certificate);
                },
                "signature",
            ),
            (
                "a receipt",
                |store| {
                    let mut receipts: Vec<Receipt> = store.receipts(2).expect("read").expect("receipts");
                    receipts[0].failure = Some(crate::Failure::RecordNotFound);
                    put(store, schema::RECEIPTS, &schema::height_key(2), &receipts);
                },
                "receipt",
            ),
            (
                "a state value",
                |store| {
                    let key = keys::account(&Address([9; 20]));
                    let mut account: crate::Account =
                        borsh::from_slice(&store.latest(&key).expect("read").expect("account")).expect("decode");
                    account.balance += 1;
                    put(store, schema::STATE, &key, &account);
                },
                "state value",
            ),
        ];
        for (what, tamper, reason) in cases {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = chain(&dir);
            tamper(&store);
            // Damaged on a stopped node: a fresh handle, with nothing read before the damage
            // kept in memory.
            drop(store);
            let options = StoreOptions { sync_writes: false, read_only: true };
            let store = RocksStore::open(dir.path(), &funded(), options).expect("reopen, as an audit does");
            let failure = audit(&store).expect_err(what);
            let expected_height = if what == "a state value" { 3 } else { 2 };
            assert_eq!(failure.height, expected_height, "{what}: {failure}");
            assert!(failure.reason.contains(reason), "{what}: {failure}");
        }
    }
}

/// Reads check what they return: a value damaged on disk (its last byte flipped, as bit rot or a
/// bad edit would) is an error naming the column, never data.
mod read_checks {
    use super::*;
    use crate::store::{FAILPOINTS, StateHistory};

    /// Flips the last byte of a stored value.
    fn flip(store: &RocksStore, column: &'static str, key: &[u8]) {
        let family = store.cf(column).expect("cf");
        let mut value = store.db.get_cf(family, key).expect("read").expect("value present");
        let last = value.len() - 1;
        value[last] ^= 0x01;
        store.db.put_cf(family, key, value).expect("write");
    }

    fn recipient_key() -> Vec<u8> {
        keys::account(&Address([9; 20]))
    }

    /// Every read of the damaged item, as `Err` text, or a panic naming the read that served data.
    fn assert_all_fail(what: &str, results: Vec<(&str, Result<bool, StoreError>)>) -> Vec<String> {
        results
            .into_iter()
            .map(|(read, result)| match result {
                Err(error) => error.to_string(),
                Ok(found) => panic!("{what}: {read} served data (found: {found}) instead of an error"),
            })
            .collect()
    }

    #[test]
    fn each_damaged_value_below_the_head_is_an_error_on_every_read() {
        type Key = fn(&RocksStore) -> Vec<u8>;
        let cases: [(&'static str, Key); 7] = [
            (schema::HEADERS, |_| schema::height_key(2).to_vec()),
            (schema::BODIES, |_| schema::height_key(2).to_vec()),
            (schema::CERTIFICATES, |_| schema::height_key(2).to_vec()),
            (schema::RECEIPTS, |_| schema::height_key(2).to_vec()),
            (schema::BLOCK_HASHES, |store| store.header(2).expect("read").expect("header").hash().0.to_vec()),
            (schema::TX_INDEX, |store| {
                store.block(2).expect("read").expect("block").block.transactions[1].hash().0.to_vec()
            }),
            (schema::TREE_VALUES, |_| schema::tree_value_key(crate::state::key_hash(&recipient_key()), 2).to_vec()),
        ];
        for (column, key) in cases {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = audit_tamper::chain(&dir);
            let block_hash = store.header(2).expect("read").expect("header").hash();
            let tx_hash = store.block(2).expect("read").expect("block").block.transactions[1].hash();
            let key = key(&store);
            flip(&store, column, &key);
            let reads: Vec<(&str, Result<bool, StoreError>)> = match column {
                schema::HEADERS => vec![
                    ("header", store.header(2).map(|found| found.is_some())),
                    ("block", store.block(2).map(|found| found.is_some())),
                    ("receipts", store.receipts(2).map(|found| found.is_some())),
                    ("state at", store.state_at(&recipient_key(), 2).map(|found| found.is_some())),
                ],
                // A transaction's location is proven by the block's receipts, not its body.
                schema::BODIES => vec![("block", store.block(2).map(|found| found.is_some()))],
                schema::CERTIFICATES => vec![("block", store.block(2).map(|found| found.is_some()))],
                schema::RECEIPTS => vec![("receipts", store.receipts(2).map(|found| found.is_some()))],
                schema::BLOCK_HASHES => vec![
                    ("height of", store.height_of(&block_hash).map(|found| found.is_some())),
                    ("header", store.header(2).map(|found| found.is_some())),
                ],
                schema::TX_INDEX => vec![("tx location", store.tx_location(&tx_hash).map(|found| found.is_some()))],
                _ => vec![
                    ("state at", store.state_at(&recipient_key(), 2).map(|found| found.is_some())),
                    ("state proof", store.state_proof(&recipient_key(), 2).map(|proof| proof.value.is_some())),
                ],
            };
            for message in assert_all_fail(column, reads) {
                assert!(message.contains(column), "{column}: {message}");
            }
            // The rest of the chain still reads.
            assert!(store.block(1).expect("block 1 reads").is_some(), "{column}");
            assert_eq!(store.header(3).expect("header 3 reads").map(|header| header.height), Some(3), "{column}");
        }
    }

    #[test]
    fn a_damaged_head_refuses_to_open_naming_the_column_and_height() {
        // borsh of `NodeKey { version: 3, nibble_path: empty }`: the root of height 3.
        let root_key = [&3u64.to_le_bytes()[..], &0u64.to_le_bytes(), &0u32.to_le_bytes()].concat();
        borsh::from_slice::<jmt::storage::NodeKey>(&root_key).expect("a node key");
        let cases: [(&'static str, Vec<u8>, &str); 5] = [
            (schema::HEADERS, schema::height_key(3).to_vec(), "block 3"),
            (schema::BODIES, schema::height_key(3).to_vec(), "block 3"),
            (schema::CERTIFICATES, schema::height_key(3).to_vec(), "block 3"),
            (schema::RECEIPTS, schema::height_key(3).to_vec(), "block 3"),
            (schema::TREE_NODES, root_key, "height 3"),
        ];
        for (column, key, at) in cases {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = audit_tamper::chain(&dir);
            if column == schema::TREE_NODES {
                // A flipped byte of a node may fall on metadata no hash covers (its leaf count, a
                // child's version); the root of height 2 in place of height 3's is damage the
                // root hash must show.
                let family = store.cf(column).expect("cf");
                let mut older = key.clone();
                older[..8].copy_from_slice(&2u64.to_le_bytes());
                let stale = store.db.get_cf(family, &older).expect("read").expect("root of 2");
                store.db.put_cf(family, &key, stale).expect("write");
            } else {
                flip(&store, column, &key);
            }
            drop(store);
            let error = RocksStore::open(dir.path(), &audit_tamper::funded(), StoreOptions::default())
                .err()
                .unwrap_or_else(|| panic!("a damaged head {column} opened"));
            let message = error.to_string();
            assert!(message.contains(column) && message.contains(at), "{column}: {message}");
            // An audit still opens it (read-only) to report where the damage is.
            let options = StoreOptions { sync_writes: false, read_only: true };
            RocksStore::open(dir.path(), &audit_tamper::funded(), options).expect("opens for an audit");
        }
    }

    #[test]
    fn a_damaged_safety_state_is_an_error_and_a_legacy_one_loads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir);
        store.save_safety_state(b"height 7 view 2 votes").expect("save");
        assert_eq!(store.load_safety_state().expect("load"), Some(b"height 7 view 2 votes".to_vec()));
        flip(&store, schema::SAFETY, schema::SAFETY_STATE);
        let error = store.load_safety_state().expect_err("damaged");
        assert!(matches!(error, StoreError::Corrupt { column: "safety", .. }), "{error}");
        // Written before checksums existed: no checksum key, taken as it is.
        store.db.delete_cf(store.cf(schema::SAFETY).expect("cf"), schema::SAFETY_CHECKSUM).expect("delete");
        assert!(store.load_safety_state().expect("legacy").is_some());
    }

    #[test]
    fn failpoint_names_are_unique_and_namespaced() {
        let mut names = FAILPOINTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAILPOINTS.len());
        assert!(FAILPOINTS.iter().all(|name| name.starts_with("store::")), "{FAILPOINTS:?}");
    }
}

mod validator_change_index {
    use consensus::CommitCertificate;

    use super::*;
    use crate::{Payload, Transaction, build_block};

    fn admin() -> SigningKey {
        SigningKey::from_seed([60; 32])
    }

    fn newcomer() -> SigningKey {
        SigningKey::from_seed([61; 32])
    }

    fn with_admin() -> Genesis {
        let mut genesis = genesis();
        genesis.accounts.push(GenesisAccount {
            address: Address::of(&admin().public_key()),
            balance: 0,
            roles: Role::ALL.to_vec(),
        });
        genesis
    }

    /// Commits `blocks` blocks; the first adds a validator (in force from height 1 +
    /// `validator_change_delay`), the others are empty.
    fn chain(store: &RocksStore, blocks: u64) {
        let mut keys: Vec<SigningKey> = (0..4u8).map(|i| SigningKey::from_seed([i + 1; 32])).collect();
        keys.push(newcomer());
        for height in 1..=blocks {
            let transactions = if height == 1 {
                let validator =
                    ValidatorInfo { name: "v4".into(), public_key: newcomer().public_key(), peer_id: "peer4".into() };
                let payload = Payload::AddValidator { validator };
                vec![
                    Transaction { chain_id: genesis().chain_id, signer: admin().public_key(), nonce: 0, payload }
                        .sign(&admin()),
                ]
            } else {
                Vec::new()
            };
            let head = store.head().expect("head");
            let (block, execution) = build_block(
                store,
                &head,
                keys[0].public_key(),
                head.timestamp_ms + 10,
                transactions,
                crate::SignatureCheck::All,
            )
            .expect("valid");
            let set = store.validator_set_for(height).expect("set");
            let signers: Vec<(u32, &SigningKey)> = set
                .members()
                .iter()
                .take(set.quorum())
                .enumerate()
                .map(|(index, member)| {
                    (index as u32, keys.iter().find(|key| key.public_key() == *member).expect("key"))
                })
                .collect();
            let certificate = CommitCertificate::sign(&genesis().chain_id, height, 0, block.hash(), &signers);
            store.commit(&block, &certificate, execution).expect("commit");
        }
    }

    fn reopen(dir: &tempfile::TempDir, read_only: bool) -> RocksStore {
        RocksStore::open(dir.path(), &with_admin(), StoreOptions { sync_writes: true, read_only }).expect("open")
    }

    #[test]
    fn the_index_answers_what_a_scan_of_every_header_does() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = reopen(&dir, false);
        chain(&store, 6);
        let in_force = 1 + with_admin().params.validator_change_delay;
        assert!(store.validator_changes_indexed().expect("read"));
        assert_eq!(store.validator_set_changes(6).expect("read"), vec![in_force]);
        assert_eq!(crate::store::scan_validator_set_changes(&store, 6).expect("scan"), vec![in_force]);
        assert_eq!(store.validator_set_changes(in_force - 1).expect("read"), Vec::<Height>::new());
        // Past the head: up to the head.
        assert_eq!(store.validator_set_changes(1_000).expect("read"), vec![in_force]);
        drop(store);
        assert_eq!(reopen(&dir, true).validator_set_changes(6).expect("read-only"), vec![in_force]);
    }

    #[test]
    fn a_database_without_the_index_is_scanned_read_only_and_indexed_once_opened() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = reopen(&dir, false);
        chain(&store, 5);
        let in_force = 1 + with_admin().params.validator_change_delay;
        // As a database written before the index existed.
        store.db.delete_cf(store.cf(schema::META).expect("cf"), schema::META_VALIDATOR_CHANGES).expect("delete");
        let column = store.cf(schema::VALIDATOR_CHANGES).expect("cf");
        store.db.delete_cf(column, schema::height_key(in_force)).expect("delete");
        drop(store);
        let read_only = reopen(&dir, true);
        assert!(!read_only.validator_changes_indexed().expect("read"));
        assert_eq!(read_only.validator_set_changes(5).expect("scanned"), vec![in_force]);
        drop(read_only);
        let store = reopen(&dir, false);
        assert!(store.validator_changes_indexed().expect("read"));
        assert_eq!(store.validator_set_changes(5).expect("indexed"), vec![in_force]);
    }

    #[test]
    fn a_spurious_entry_is_an_error_not_a_change() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = reopen(&dir, false);
        chain(&store, 5);
        store.db.put_cf(store.cf(schema::VALIDATOR_CHANGES).expect("cf"), schema::height_key(5), []).expect("put");
        let error = store.validator_set_changes(5).expect_err("a damaged index");
        assert!(matches!(error, StoreError::Corrupt { column: schema::VALIDATOR_CHANGES, .. }), "{error}");
        // Below the damaged entry the index still answers.
        assert_eq!(store.validator_set_changes(4).expect("read").len(), 1);
    }
}
