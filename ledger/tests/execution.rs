//! Execution semantics through the real store: effects, failures that still consume nonces,
//! invalid blocks, and the supply invariant under random transfers.

mod common;

use common::{TestChain, account, key, transfer, tx};
use consensus::Digest;
use ledger::StateHistory;
use ledger::{
    Address, BlockReader, ExecutionError, Failure, Params, Payload, Role, StateReader, StoreOptions, TxError,
    state::keys,
};
use proptest::prelude::*;

fn address(key: &consensus::SigningKey) -> Address {
    Address::of(&key.public_key())
}

fn supply(chain: &TestChain) -> u64 {
    let bytes = chain.store.latest(keys::SUPPLY).expect("read").expect("supply is always set");
    borsh::from_slice(&bytes).expect("decode")
}

#[test]
fn a_transfer_moves_balance_and_consumes_the_nonce() {
    let mut chain = TestChain::new();
    let alice = key(2);
    let faucet = chain.faucet.clone();
    let committed = chain.commit(vec![transfer(&faucet, 0, &alice, 500)]);
    assert_eq!(account(&chain.store, &address(&alice)).balance, 500);
    assert_eq!(account(&chain.store, &address(&faucet)).balance, common::FAUCET_BALANCE - 500);
    assert_eq!(chain.nonce_of(&faucet), 1);
    let receipts = chain.store.receipts(1).expect("read").expect("receipts stored");
    assert_eq!(receipts.len(), 1);
    assert!(receipts[0].succeeded());
    assert_eq!(receipts[0].tx_hash, committed.block.transactions[0].hash());
    assert_eq!(supply(&chain), common::FAUCET_BALANCE);
}

#[test]
fn failed_transactions_are_included_and_consume_their_nonce() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let alice = key(2);
    let bob = key(3);
    chain.commit(vec![transfer(&faucet, 0, &alice, 100)]);
    // Alice has balance but no Transact role yet: permission denied.
    chain.commit(vec![transfer(&alice, 0, &bob, 10)]);
    let receipts = chain.store.receipts(2).expect("read").expect("stored");
    assert_eq!(receipts[0].failure, Some(Failure::PermissionDenied { required: Role::Transact }));
    assert_eq!(chain.nonce_of(&alice), 1);
    assert_eq!(account(&chain.store, &address(&alice)).balance, 100);

    // Granted the role, she still cannot send more than she has.
    chain.commit(vec![tx(&faucet, 1, Payload::GrantRole { account: address(&alice), role: Role::Transact })]);
    chain.commit(vec![transfer(&alice, 1, &bob, 101), transfer(&alice, 2, &bob, 40)]);
    let receipts = chain.store.receipts(4).expect("read").expect("stored");
    assert_eq!(receipts[0].failure, Some(Failure::InsufficientBalance { balance: 100, needed: 101 }));
    assert!(receipts[1].succeeded());
    assert_eq!(chain.nonce_of(&alice), 3);
    assert_eq!(account(&chain.store, &address(&bob)).balance, 40);
}

#[test]
fn a_wrong_nonce_makes_the_block_invalid() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let head = chain.store.head().expect("head");
    let error = ledger::build_block(
        &chain.store,
        &head,
        chain.validators[0].public_key(),
        0,
        vec![transfer(&faucet, 0, &key(2), 1), transfer(&faucet, 2, &key(2), 1)],
        ledger::SignatureCheck::All,
    )
    .err()
    .expect("a nonce gap is invalid");
    assert_eq!(error, ExecutionError::BadNonce { index: 1, expected: 1, found: 2 });
    // Replaying a committed nonce is invalid too.
    chain.commit(vec![transfer(&faucet, 0, &key(2), 1)]);
    let head = chain.store.head().expect("head");
    let replay = ledger::build_block(
        &chain.store,
        &head,
        chain.validators[0].public_key(),
        0,
        vec![transfer(&faucet, 0, &key(2), 1)],
        ledger::SignatureCheck::All,
    );
    assert_eq!(replay.err(), Some(ExecutionError::BadNonce { index: 0, expected: 1, found: 0 }));
}

#[test]
fn bad_signatures_wrong_chains_and_oversized_blocks_are_invalid() {
    let chain = TestChain::with_params(Params { max_block_txs: 3, ..Params::default() }, StoreOptions::default());
    let faucet = chain.faucet.clone();
    let head = chain.store.head().expect("head");
    let proposer = chain.validators[0].public_key();
    let build = |txs| ledger::build_block(&chain.store, &head, proposer, 0, txs, ledger::SignatureCheck::All).err();

    let mut forged = transfer(&faucet, 1, &key(2), 1);
    forged.signature.0[0] ^= 1;
    assert_eq!(
        build(vec![transfer(&faucet, 0, &key(2), 1), forged]),
        Some(ExecutionError::InvalidTransaction { index: 1, error: TxError::BadSignature })
    );

    let mut other_chain = transfer(&faucet, 0, &key(2), 1).transaction;
    other_chain.chain_id = consensus::ChainId::new("other").expect("chain id");
    let other_chain = other_chain.sign(&faucet);
    assert!(matches!(
        build(vec![other_chain]),
        Some(ExecutionError::InvalidTransaction { index: 0, error: TxError::WrongChain { .. } })
    ));

    let four = (0..4).map(|nonce| transfer(&faucet, nonce, &key(2), 1)).collect();
    assert_eq!(build(four), Some(ExecutionError::TooManyTransactions { count: 4, max: 3 }));

    let huge_key = tx(&faucet, 0, Payload::PutRecord { key: vec![1; 257], value: vec![] });
    assert_eq!(
        build(vec![huge_key]),
        Some(ExecutionError::InvalidTransaction { index: 0, error: TxError::KeySize { size: 257, max: 256 } })
    );
}

#[test]
fn signatures_vouched_for_are_skipped_and_others_still_checked_by_block_index() {
    let chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let head = chain.store.head().expect("head");
    let proposer = chain.validators[0].public_key();
    let mut transactions: Vec<_> = (0..300).map(|nonce| transfer(&faucet, nonce, &key(2), 1)).collect();
    transactions[5].signature.0[0] ^= 1;
    transactions[290].signature.0[0] ^= 1;
    let vouched: std::collections::HashSet<Digest> = transactions[..10].iter().map(|tx| tx.hash()).collect();
    let built = ledger::build_block(
        &chain.store,
        &head,
        proposer,
        0,
        transactions.clone(),
        ledger::SignatureCheck::Unverified(&|tx| vouched.contains(&tx.hash())),
    );
    // The forged signature at 5 is vouched for (a node only vouches for what it verified); the
    // one at 290 is checked and named by its index in the block.
    assert_eq!(built.err(), Some(ExecutionError::InvalidTransaction { index: 290, error: TxError::BadSignature }));
    let everything =
        ledger::build_block(&chain.store, &head, proposer, 0, transactions, ledger::SignatureCheck::All).err();
    assert_eq!(everything, Some(ExecutionError::InvalidTransaction { index: 5, error: TxError::BadSignature }));
}

#[test]
fn records_roles_and_mint() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let writer = key(7);
    chain.commit(vec![
        tx(&faucet, 0, Payload::PutRecord { key: b"k".to_vec(), value: b"v1".to_vec() }),
        tx(&faucet, 1, Payload::PutRecord { key: b"k".to_vec(), value: b"v2".to_vec() }),
        tx(&faucet, 2, Payload::DeleteRecord { key: b"missing".to_vec() }),
        tx(&faucet, 3, Payload::Mint { to: address(&writer), amount: 5 }),
        tx(&faucet, 4, Payload::Mint { to: address(&writer), amount: u64::MAX }),
    ]);
    assert_eq!(chain.store.latest(&keys::record(b"k")).expect("read"), Some(b"v2".to_vec()));
    let receipts = chain.store.receipts(1).expect("read").expect("stored");
    assert_eq!(receipts[2].failure, Some(Failure::RecordNotFound));
    assert!(receipts[3].succeeded());
    assert_eq!(receipts[4].failure, Some(Failure::BalanceOverflow));
    assert_eq!(supply(&chain), common::FAUCET_BALANCE + 5);

    chain.commit(vec![
        tx(&faucet, 5, Payload::GrantRole { account: address(&writer), role: Role::Write }),
        tx(&writer, 0, Payload::DeleteRecord { key: b"k".to_vec() }),
        tx(&faucet, 6, Payload::RevokeRole { account: address(&writer), role: Role::Write }),
        tx(&writer, 1, Payload::PutRecord { key: b"k".to_vec(), value: b"v3".to_vec() }),
    ]);
    let receipts = chain.store.receipts(2).expect("read").expect("stored");
    assert!(receipts[1].succeeded());
    assert_eq!(receipts[3].failure, Some(Failure::PermissionDenied { required: Role::Write }));
    assert_eq!(chain.store.latest(&keys::record(b"k")).expect("read"), None);
}

#[test]
fn validator_changes_take_effect_after_the_delay() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let newcomer = key(2000);
    let before = chain.store.validator_set_for(1).expect("set");
    chain.validators.push(newcomer.clone());
    chain.commit(vec![tx(&faucet, 0, Payload::AddValidator { validator: common::validator_info(4, &newcomer) })]);
    // Scheduled at height 1 with delay 2: heights 2 keeps the old set, 3 uses the new one.
    assert_eq!(chain.store.validator_set_for(2).expect("set"), before);
    chain.commit(vec![]);
    let after = chain.store.validator_set_for(3).expect("set");
    assert_eq!(after.len(), 5);
    assert_eq!(after.index_of(&newcomer.public_key()), Some(4));
    let committed = chain.commit(vec![]);
    assert_eq!(committed.block.header.validator_set_digest, after.digest());

    // Adding the same key again is included but fails.
    chain.commit(vec![tx(&faucet, 1, Payload::AddValidator { validator: common::validator_info(4, &newcomer) })]);
    let receipts = chain.store.receipts(4).expect("read").expect("stored");
    assert_eq!(receipts[0].failure, Some(Failure::ValidatorExists));
}

#[test]
fn an_admin_cannot_shrink_the_set_below_the_genesis_minimum() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let leaving = chain.validators[0].public_key();
    chain.commit(vec![tx(&faucet, 0, Payload::RemoveValidator { public_key: leaving })]);
    let receipts = chain.store.receipts(1).expect("read").expect("stored");
    assert_eq!(
        receipts[0].failure,
        Some(Failure::InvalidValidatorSet(
            "removing it would leave 3 validators; the genesis requires at least 4".to_string()
        ))
    );
    chain.commit(vec![]);
    chain.commit(vec![]);
    assert_eq!(chain.store.validator_set_for(4).expect("set").len(), 4);

    // A genesis that allows fewer validators lets the same removal through.
    let mut small = TestChain::with_params(Params { min_validators: 3, ..Params::default() }, StoreOptions::default());
    let faucet = small.faucet.clone();
    let leaving = small.validators[0].public_key();
    small.commit(vec![tx(&faucet, 0, Payload::RemoveValidator { public_key: leaving })]);
    assert!(small.store.receipts(1).expect("read").expect("stored")[0].succeeded());
}

#[test]
fn execution_is_deterministic() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let txs: Vec<_> = (0..50).map(|nonce| transfer(&faucet, nonce, &key(10 + nonce % 7), nonce + 1)).collect();
    let (first, first_execution) = chain.build(txs.clone());
    chain.clock_ms -= 1_000;
    let (second, second_execution) = chain.build(txs);
    assert_eq!(first, second);
    assert_eq!(first_execution.writes, second_execution.writes);
    assert_ne!(first.header.state_root, Digest::ZERO);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random transfers (some overdrawn) among a few accounts: supply is conserved, each
    /// account's nonce counts its transactions, and stored balances sum to the supply.
    #[test]
    fn transfers_conserve_supply(moves in prop::collection::vec((0usize..5, 0usize..5, 0u64..3_000), 1..60)) {
        let mut chain = TestChain::new();
        let faucet = chain.faucet.clone();
        let people: Vec<_> = (0..5).map(|i| key(100 + i)).collect();
        let mut setup = Vec::new();
        for (i, person) in people.iter().enumerate() {
            setup.push(transfer(&faucet, 2 * i as u64, person, 5_000));
            setup.push(tx(&faucet, 2 * i as u64 + 1, Payload::GrantRole { account: address(person), role: Role::Transact }));
        }
        chain.commit(setup);
        let mut nonces = [0u64; 5];
        let mut block = Vec::new();
        for (from, to, amount) in moves {
            block.push(transfer(&people[from], nonces[from], &people[to], amount));
            nonces[from] += 1;
        }
        chain.commit(block);
        let mut total = account(&chain.store, &address(&faucet)).balance;
        for (i, person) in people.iter().enumerate() {
            let state = account(&chain.store, &address(person));
            prop_assert_eq!(state.nonce, nonces[i]);
            total += state.balance;
        }
        prop_assert_eq!(total, common::FAUCET_BALANCE);
        prop_assert_eq!(supply(&chain), common::FAUCET_BALANCE);
    }
}
