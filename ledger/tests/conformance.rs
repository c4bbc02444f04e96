//! One suite, two stores: `MemStore` and `RocksStore` must behave alike, and produce the same
//! chain (headers, roots) from the same blocks.

mod common;

use common::{key, transfer};
use consensus::{CommitCertificate, Digest, SigningKey};
use ledger::{
    Address, BlockReader, BlockWriter, CertifiedBlock, Genesis, LocalRecords, MemStore, Params, RocksStore,
    StateHistory, StoreError, StoreOptions, TxLocation, build_block, state::keys,
};

trait Store: BlockReader + BlockWriter + StateHistory + LocalRecords + Sync {}
impl<T: BlockReader + BlockWriter + StateHistory + LocalRecords + Sync> Store for T {}

struct Fixture {
    genesis: Genesis,
    validators: Vec<SigningKey>,
    faucet: SigningKey,
}

fn fixture() -> Fixture {
    let validators: Vec<SigningKey> = (0..4).map(|i| key(1000 + i)).collect();
    let faucet = key(1);
    Fixture { genesis: common::genesis(&validators, &faucet, Params::default()), validators, faucet }
}

impl Fixture {
    /// Builds, certifies and commits the next block with `count` transfers.
    fn commit(&self, store: &impl Store, count: u64) -> CertifiedBlock {
        let head = store.head().expect("head");
        let nonce = common_nonce(store, &self.faucet);
        let transactions = (0..count).map(|i| transfer(&self.faucet, nonce + i, &key(10 + i % 3), i + 1)).collect();
        let (block, execution) = build_block(
            store,
            &head,
            self.validators[0].public_key(),
            head.timestamp_ms + 1_000,
            transactions,
            ledger::SignatureCheck::All,
        )
        .expect("valid block");
        let signers: Vec<(u32, &SigningKey)> =
            self.validators.iter().take(3).enumerate().map(|(i, k)| (i as u32, k)).collect();
        let certificate = CommitCertificate::sign(&common::chain_id(), block.header.height, 0, block.hash(), &signers);
        store.commit(&block, &certificate, execution).expect("commit");
        CertifiedBlock { block, certificate }
    }
}

fn common_nonce(store: &impl Store, key: &SigningKey) -> u64 {
    store
        .latest(&keys::account(&Address::of(&key.public_key())))
        .expect("read")
        .map(|bytes| borsh::from_slice::<ledger::Account>(&bytes).expect("decode").nonce)
        .unwrap_or(0)
}

fn commits_and_reads(fixture: &Fixture, store: &impl Store) {
    let first = fixture.commit(store, 3);
    let second = fixture.commit(store, 0);
    assert_eq!(store.head().expect("head"), second.block.header);
    assert_eq!(store.block(1).expect("read"), Some(first.clone()));
    assert_eq!(store.block(3).expect("read"), None);
    assert_eq!(store.header(0).expect("read").expect("genesis").height, 0);
    assert_eq!(store.height_of(&first.block.hash()).expect("read"), Some(1));
    assert_eq!(store.height_of(&Digest::ZERO).expect("read"), None);
    let tx = first.block.transactions[2].hash();
    assert_eq!(store.tx_location(&tx).expect("read"), Some(TxLocation { height: 1, index: 2 }));
    let receipts = store.receipts(1).expect("read").expect("stored");
    assert_eq!(receipts.len(), 3);
    assert!(receipts.iter().all(|receipt| receipt.succeeded()));
}

fn refuses_what_does_not_fit(fixture: &Fixture, store: &impl Store) {
    let head = store.head().expect("head");
    let (block, execution) = build_block(
        store,
        &head,
        fixture.validators[0].public_key(),
        head.timestamp_ms + 1,
        vec![],
        ledger::SignatureCheck::All,
    )
    .expect("valid");
    let wrong_certificate = CommitCertificate::sign(&common::chain_id(), 1, 0, Digest::ZERO, &[]);
    let error = store.commit(&block, &wrong_certificate, execution).expect_err("refused");
    assert!(matches!(error, StoreError::ExecutionMismatch { height: 1, .. }), "{error}");
    let committed = fixture.commit(store, 1);
    // Offering block 1 again (with a valid execution of height 2) is refused before anything.
    let new_head = store.head().expect("head");
    let (_, execution) = build_block(
        store,
        &new_head,
        fixture.validators[0].public_key(),
        new_head.timestamp_ms + 1,
        vec![],
        ledger::SignatureCheck::All,
    )
    .expect("valid");
    let error = store.commit(&committed.block, &committed.certificate, execution).expect_err("refused");
    assert_eq!(error, StoreError::NotNextBlock { height: 1, head: 1 });
    assert_eq!(store.head().expect("head"), committed.block.header);
}

fn history_and_proofs(fixture: &Fixture, store: &impl Store) {
    fixture.commit(store, 2);
    let second = fixture.commit(store, 2);
    let account = keys::account(&Address::of(&key(10).public_key()));
    let proof = store.state_proof(&account, 2).expect("proof");
    proof.verify(&second.block.header.state_root).expect("verifies");
    let at_one = store.state_proof(&account, 1).expect("proof");
    let root_one = store.header(1).expect("read").expect("header").state_root;
    at_one.verify(&root_one).expect("verifies");
    assert_ne!(proof.value, at_one.value, "the balance changed between heights 1 and 2");
    assert!(store.state_at(&account, 0).expect("read").is_none());
    assert!(store.state_at(&account, 3).is_err());
    assert_eq!(store.validator_set_for(3).expect("set").len(), 4);
}

fn local_records(store: &impl Store) {
    assert_eq!(store.load_safety_state().expect("read"), None);
    store.save_safety_state(b"first").expect("save");
    store.save_safety_state(b"second").expect("save");
    assert_eq!(store.load_safety_state().expect("read").as_deref(), Some(&b"second"[..]));
    assert!(store.evidence().expect("read").is_empty());
    assert!(store.save_evidence(b"key-2", b"two", 2).expect("save"));
    assert!(!store.save_evidence(b"key-2", b"another", 2).expect("save"), "a duplicate key is not stored again");
    assert!(store.save_evidence(b"key-1", b"one", 2).expect("save"));
    // Full: a newer piece evicts the oldest; an older one than every kept piece is refused.
    assert!(store.save_evidence(b"key-3", b"three", 2).expect("save"));
    assert!(!store.save_evidence(b"key-0", b"zero", 2).expect("save"));
    assert_eq!(store.evidence().expect("read"), vec![b"two".to_vec(), b"three".to_vec()]);
}

macro_rules! conformance {
    ($module:ident, $open:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn commits_and_reads() {
                let fixture = fixture();
                let (store, _guard) = $open(&fixture.genesis);
                super::commits_and_reads(&fixture, &store);
            }

            #[test]
            fn history_and_proofs() {
                let fixture = fixture();
                let (store, _guard) = $open(&fixture.genesis);
                super::history_and_proofs(&fixture, &store);
            }

            #[test]
            fn local_records() {
                let fixture = fixture();
                let (store, _guard) = $open(&fixture.genesis);
                super::local_records(&store);
            }
        }
    };
}

fn open_mem(genesis: &Genesis) -> (MemStore, ()) {
    (MemStore::new(genesis).expect("mem store"), ())
}

fn open_rocks(genesis: &Genesis) -> (RocksStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (RocksStore::open(dir.path(), genesis, StoreOptions::default()).expect("rocks store"), dir)
}

conformance!(mem, open_mem);
conformance!(rocks, open_rocks);

#[test]
fn both_stores_refuse_what_does_not_fit() {
    let fixture = fixture();
    refuses_what_does_not_fit(&fixture, &open_mem(&fixture.genesis).0);
    let (rocks, _dir) = open_rocks(&fixture.genesis);
    refuses_what_does_not_fit(&fixture, &rocks);
}

#[test]
fn both_stores_build_the_same_chain() {
    let fixture = fixture();
    let (mem, ()) = open_mem(&fixture.genesis);
    let (rocks, _dir) = open_rocks(&fixture.genesis);
    assert_eq!(mem.head().expect("head"), rocks.head().expect("head"), "same genesis header");
    for count in [5, 0, 17, 1] {
        let from_mem = fixture.commit(&mem, count);
        let from_rocks = fixture.commit(&rocks, count);
        assert_eq!(from_mem.block.header, from_rocks.block.header);
    }
}

#[test]
fn certified_blocks_replay_onto_another_store_and_tampering_changes_nothing() {
    let fixture = fixture();
    let (source, _dir) = open_rocks(&fixture.genesis);
    let blocks: Vec<CertifiedBlock> = [3, 0, 5].iter().map(|count| fixture.commit(&source, *count)).collect();
    let (replica, ()) = open_mem(&fixture.genesis);

    let mut forged = blocks[0].clone();
    forged.certificate.signatures.truncate(2);
    let error = ledger::validate::apply_certified_block(&replica, &forged).expect_err("two signatures of four");
    assert!(error.to_string().contains("certificate"), "{error}");
    let mut reordered = blocks[0].clone();
    reordered.block.transactions.swap(0, 2);
    assert!(ledger::validate::apply_certified_block(&replica, &reordered).is_err());
    assert!(ledger::validate::apply_certified_block(&replica, &blocks[1]).is_err(), "out of order");
    assert_eq!(replica.head().expect("head").height, 0, "nothing was written");

    for certified in &blocks {
        ledger::validate::apply_certified_block(&replica, certified).expect("applies");
    }
    assert_eq!(replica.head().expect("head"), source.head().expect("head"));
    assert_eq!(replica.receipts(3).expect("read"), source.receipts(3).expect("read"));
}
