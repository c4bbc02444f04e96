//! The RocksDB store: atomic commits, reopening, refusing foreign data, reads above the head,
//! versioned state with proofs, and the safety state.

mod common;

use common::{TestChain, key, transfer};
use consensus::Digest;
use ledger::{
    Address, BlockReader, BlockWriter, LocalRecords, RocksStore, StateHistory, StateReader, StoreError, StoreOptions,
    TxLocation, state::keys, validate,
};

#[test]
fn committed_blocks_survive_a_reopen() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let first = chain.commit(vec![transfer(&faucet, 0, &key(2), 10), transfer(&faucet, 1, &key(3), 20)]);
    let second = chain.commit(vec![transfer(&faucet, 2, &key(2), 30)]);
    let chain = chain.reopen();
    let store = &chain.store;
    assert_eq!(store.head().expect("head"), second.block.header);
    assert_eq!(store.block(1).expect("read"), Some(first.clone()));
    assert_eq!(store.block(2).expect("read"), Some(second.clone()));
    assert_eq!(store.height_of(&first.block.hash()).expect("read"), Some(1));
    let tx_hash = first.block.transactions[1].hash();
    assert_eq!(store.tx_location(&tx_hash).expect("read"), Some(TxLocation { height: 1, index: 1 }));
    assert_eq!(common::account(store, &Address::of(&key(2).public_key())).balance, 40);
    assert_eq!(store.block(3).expect("read"), None);
    assert_eq!(store.header(0).expect("read").expect("genesis header").height, 0);
}

#[test]
fn a_database_of_another_network_is_refused() {
    let chain = TestChain::new();
    let path = chain.dir.path().join("data");
    let mut other = chain.genesis.clone();
    other.chain_id = consensus::ChainId::new("other-chain").expect("chain id");
    drop(chain.store);
    let error = RocksStore::open(&path, &other, StoreOptions::default()).err().expect("refused");
    assert!(matches!(error, StoreError::ForeignDatabase { field: "chain id", .. }), "{error}");

    let mut same_name = chain.genesis.clone();
    same_name.accounts[0].balance += 1;
    let error = RocksStore::open(&path, &same_name, StoreOptions::default()).err().expect("refused");
    assert!(matches!(error, StoreError::ForeignDatabase { field: "genesis hash", .. }), "{error}");
    assert!(error.to_string().contains("another network"));

    // The refusals changed nothing: the right genesis still opens.
    RocksStore::open(&path, &chain.genesis, StoreOptions::default()).expect("still opens");
}

#[test]
fn a_block_built_but_never_committed_leaves_the_head_intact() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    chain.commit(vec![transfer(&faucet, 0, &key(2), 10)]);
    let head = chain.store.head().expect("head");
    let state_before = chain.store.latest(&keys::account(&Address::of(&faucet.public_key()))).expect("read");
    let (block, _execution) = chain.build(vec![transfer(&faucet, 1, &key(2), 10)]);
    drop(block); // the batch is never written
    let mut chain = chain.reopen();
    assert_eq!(chain.store.head().expect("head"), head);
    assert_eq!(chain.store.latest(&keys::account(&Address::of(&faucet.public_key()))).expect("read"), state_before);
    // The chain continues from the old head.
    let next = chain.commit(vec![transfer(&faucet, 1, &key(2), 10)]);
    assert_eq!(next.block.header.height, 2);
}

#[test]
fn commit_refuses_blocks_that_do_not_fit() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let (block, execution) = chain.build(vec![transfer(&faucet, 0, &key(2), 10)]);
    let certificate = chain.certify(&block, 3);

    let mut wrong_root = block.clone();
    wrong_root.header.state_root = Digest::ZERO;
    let wrong_certificate = chain.certify(&wrong_root, 3);
    let (_, execution_again) = {
        chain.clock_ms -= 1_000;
        chain.build(vec![transfer(&faucet, 0, &key(2), 10)])
    };
    let error = chain.store.commit(&wrong_root, &wrong_certificate, execution_again).expect_err("refused");
    assert!(matches!(error, StoreError::ExecutionMismatch { height: 1, .. }), "{error}");

    let other = chain.certify(&wrong_root, 3);
    let (_, execution_third) = {
        chain.clock_ms -= 1_000;
        chain.build(vec![transfer(&faucet, 0, &key(2), 10)])
    };
    let error = chain.store.commit(&block, &other, execution_third).expect_err("refused");
    assert!(matches!(error, StoreError::ExecutionMismatch { .. }), "{error}");

    chain.store.commit(&block, &certificate, execution).expect("the right block commits");
    let (_, replay_execution) = {
        chain.clock_ms -= 1_000;
        // Rebuilding height 1 is now impossible: the state moved on.
        let head = chain.store.head().expect("head");
        assert_eq!(head.height, 1);
        chain.build(vec![])
    };
    let error = chain.store.commit(&block, &certificate, replay_execution).expect_err("refused");
    assert_eq!(error, StoreError::NotNextBlock { height: 1, head: 1 });
    assert_eq!(chain.store.head().expect("head"), block.header);
}

#[test]
fn state_proofs_verify_and_forgeries_fail() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    chain.commit(vec![transfer(&faucet, 0, &key(2), 10)]);
    let second = chain.commit(vec![transfer(&faucet, 1, &key(2), 15)]);
    let root = second.block.header.state_root;
    let alice_key = keys::account(&Address::of(&key(2).public_key()));

    let proof = chain.store.state_proof(&alice_key, 2).expect("proof");
    let balance: ledger::Account = borsh::from_slice(proof.value.as_ref().expect("present")).expect("decode");
    assert_eq!(balance.balance, 25);
    proof.verify(&root).expect("inclusion proof verifies");

    // Absence is provable too.
    let nobody = keys::account(&Address([0x42; 20]));
    let absent = chain.store.state_proof(&nobody, 2).expect("proof");
    assert_eq!(absent.value, None);
    absent.verify(&root).expect("non-inclusion proof verifies");

    // A changed value, a claimed absence, another root: all fail.
    let mut forged = chain.store.state_proof(&alice_key, 2).expect("proof");
    forged.value.as_mut().expect("present")[0] ^= 1;
    assert!(forged.verify(&root).is_err());
    let mut denied = chain.store.state_proof(&alice_key, 2).expect("proof");
    denied.value = None;
    assert!(denied.verify(&root).is_err());
    let old_root = chain.store.header(1).expect("read").expect("header").state_root;
    assert!(proof.verify(&old_root).is_err());

    // Past heights read and prove their own values.
    let at_one = chain.store.state_proof(&alice_key, 1).expect("proof");
    let old: ledger::Account = borsh::from_slice(at_one.value.as_ref().expect("present")).expect("decode");
    assert_eq!(old.balance, 10);
    at_one.verify(&old_root).expect("historic proof verifies");
    assert!(chain.store.state_at(&alice_key, 0).expect("read").is_none());
    assert!(chain.store.state_at(&alice_key, 3).is_err(), "heights above the head are refused");
}

#[test]
fn safety_state_is_durable() {
    let chain = TestChain::new();
    assert_eq!(chain.store.load_safety_state().expect("read"), None);
    chain.store.save_safety_state(b"height 7 view 2").expect("save");
    let chain = chain.reopen();
    assert_eq!(chain.store.load_safety_state().expect("read"), Some(b"height 7 view 2".to_vec()));
}

#[test]
fn a_read_only_store_opens_beside_the_writer() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    chain.commit(vec![transfer(&faucet, 0, &key(2), 10)]);
    let reader = RocksStore::open(
        &chain.dir.path().join("data"),
        &chain.genesis,
        StoreOptions { read_only: true, ..StoreOptions::default() },
    )
    .expect("read-only open while the writer runs");
    assert_eq!(reader.head().expect("head").height, 1);
    assert!(reader.save_safety_state(b"x").is_err(), "a read-only store refuses writes");
}

#[test]
fn a_replayed_chain_passes_every_audit_check() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let mut blocks = Vec::new();
    for round in 0..5u64 {
        let txs = (0..10).map(|i| transfer(&faucet, round * 10 + i, &key(50 + i), i + 1)).collect();
        blocks.push(chain.commit(txs));
    }
    // A second node replays the certified blocks from genesis, checking everything.
    let replica_dir = tempfile::tempdir().expect("temp dir");
    let replica = RocksStore::open(replica_dir.path(), &chain.genesis, StoreOptions::default()).expect("open");
    for certified in &blocks {
        let previous = replica.head().expect("head");
        let block = &certified.block;
        validate::check_link(&previous, &block.header).expect("link");
        validate::check_tx_root(block).expect("tx root");
        let validators = replica.validator_set_for(block.header.height).expect("set");
        validate::check_certificate(block, &certified.certificate, &validators).expect("certificate");
        let execution = validate::check_execution(&replica, block, ledger::SignatureCheck::All).expect("execution");
        let stored = chain.store.receipts(block.header.height).expect("read").expect("stored");
        validate::check_receipts(block.header.height, &stored, &execution.receipts).expect("receipts");
        replica.commit(block, &certified.certificate, execution).expect("commit");
    }
    assert_eq!(replica.head().expect("head"), chain.store.head().expect("head"));
}

#[test]
fn audit_checks_name_what_was_tampered() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let genesis_header = chain.store.head().expect("head");
    let certified = chain.commit(vec![transfer(&faucet, 0, &key(2), 10), transfer(&faucet, 1, &key(3), 10)]);
    let validators = chain.store.validator_set_for(1).expect("set");

    let mut tampered_tx = certified.block.clone();
    tampered_tx.transactions.swap(0, 1);
    assert!(matches!(
        validate::check_tx_root(&tampered_tx),
        Err(ledger::BlockError::RootMismatch { field: "tx_root", .. })
    ));

    let mut tampered_header = certified.block.clone();
    tampered_header.header.timestamp_ms += 1;
    assert!(matches!(
        validate::check_certificate(&tampered_header, &certified.certificate, &validators),
        Err(ledger::BlockError::Certificate { height: 1, .. })
    ));

    let mut tampered_signature = certified.certificate.clone();
    tampered_signature.signatures[1].signature.0[5] ^= 1;
    assert!(matches!(
        validate::check_certificate(&certified.block, &tampered_signature, &validators),
        Err(ledger::BlockError::Certificate { height: 1, .. })
    ));

    let mut broken_link = certified.block.header.clone();
    broken_link.previous_hash = Digest::ZERO;
    assert!(matches!(validate::check_link(&genesis_header, &broken_link), Err(ledger::BlockError::BrokenLink { .. })));

    // Re-executing on the wrong state (the committed one, not the parent's) is refused.
    assert!(validate::check_execution(&chain.store, &certified.block, ledger::SignatureCheck::All).is_err());
}
