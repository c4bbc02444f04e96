//! Transaction proof bundles: they verify from the genesis alone, across validator-set
//! changes, and any single flipped byte or missing change makes them fail.

mod common;

use common::{TestChain, key, transfer, tx};
use ledger::{
    Payload,
    proof::{TxProof, build_tx_proof},
};

/// A chain where a validator is added (block 1) and another removed (block 4), with the proven
/// transfer in block 8.
fn chain_with_changes() -> (TestChain, consensus::Digest) {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let newcomer = key(2000);
    chain.validators.push(newcomer.clone());
    chain.commit(vec![tx(&faucet, 0, Payload::AddValidator { validator: common::validator_info(4, &newcomer) })]);
    chain.commit(vec![]);
    chain.commit(vec![transfer(&faucet, 1, &key(7), 1)]);
    let leaving = chain.validators[0].public_key();
    chain.commit(vec![tx(&faucet, 2, Payload::RemoveValidator { public_key: leaving })]);
    for nonce in 3..6 {
        chain.commit(vec![transfer(&faucet, nonce, &key(7), 1)]);
    }
    chain.validators.remove(0);
    let target = transfer(&faucet, 7, &key(8), 5);
    let hash = target.hash();
    chain.commit(vec![transfer(&faucet, 6, &key(9), 1), target, transfer(&faucet, 8, &key(9), 1)]);
    (chain, hash)
}

#[test]
fn a_bundle_verifies_from_the_genesis_across_validator_changes() {
    let (chain, hash) = chain_with_changes();
    let proof = build_tx_proof(&chain.store, &hash).expect("read").expect("committed");
    assert_eq!(proof.validator_changes.len(), 2);
    assert_eq!(proof.included.tx_proof.index, 1);
    proof.verify(&chain.genesis).expect("verifies");
    let decoded = TxProof::decode(&proof.encode()).expect("decodes");
    assert_eq!(decoded, proof);
    assert!(build_tx_proof(&chain.store, &consensus::Digest::of(b"never")).expect("read").is_none());
}

#[test]
fn every_single_flipped_byte_fails_verification() {
    let (chain, hash) = chain_with_changes();
    let bytes = build_tx_proof(&chain.store, &hash).expect("read").expect("committed").encode();
    for position in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x01;
        let verdict = TxProof::decode(&tampered).and_then(|proof| proof.verify(&chain.genesis));
        assert!(verdict.is_err(), "flipping byte {position} of {} still verifies", bytes.len());
    }
}

#[test]
fn a_bundle_missing_a_validator_change_fails() {
    let (chain, hash) = chain_with_changes();
    let proof = build_tx_proof(&chain.store, &hash).expect("read").expect("committed");
    for missing in 0..proof.validator_changes.len() {
        let mut incomplete = proof.clone();
        incomplete.validator_changes.remove(missing);
        assert!(incomplete.verify(&chain.genesis).is_err(), "verified without change {missing}");
    }
    let mut other_genesis = chain.genesis.clone();
    other_genesis.chain_id = consensus::ChainId::new("elsewhere").expect("chain id");
    assert!(proof.verify(&other_genesis).is_err());
}
