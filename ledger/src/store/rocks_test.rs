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

mod audit_tamper {
    use consensus::CommitCertificate;

    use super::*;
    use crate::{Payload, Receipt, Transaction, audit::audit_chain, build_block};

    fn faucet() -> SigningKey {
        SigningKey::from_seed([50; 32])
    }

    fn funded() -> Genesis {
        let mut funded = genesis();
        funded.accounts.push(GenesisAccount {
            address: Address::of(&faucet().public_key()),
            balance: 1_000,
            roles: vec![Role::Transact],
        });
        funded
    }

    /// A three-block chain with two transfers per block.
    fn chain(dir: &tempfile::TempDir) -> RocksStore {
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
            let (block, execution) =
                build_block(&store, &head, validators[0].public_key(), head.timestamp_ms + 10, transactions)
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
            let failure = audit(&store).expect_err(what);
            let expected_height = if what == "a state value" { 3 } else { 2 };
            assert_eq!(failure.height, expected_height, "{what}: {failure}");
            assert!(failure.reason.contains(reason), "{what}: {failure}");
        }
    }
}
