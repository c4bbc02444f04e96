//! `transaction`: bytes as a client submits them (`tx_submit`'s hex, decoded) or a peer gossips
//! them. Decoded with `SignedTransaction::decode`, then checked by both paths a transaction takes:
//! the ledger's own (stateless checks, the strict signature check, block execution on the
//! fixture's head state) and the node's mempool (`node::mempool::precheck` with its batched
//! signature check, then admission against the state). The two must agree.

use consensus::{Digest, verify_batch};
use ledger::{AdmitError, BlockInput, SignedTransaction, TxError};
use node::{
    mempool::{Mempool, MempoolConfig, precheck},
    verified::VerifiedCache,
};

use super::{
    Depth,
    fixture::{COMMITTED, Fixture},
};

/// Runs the target on one input.
pub fn run(data: &[u8]) -> Depth {
    let fixture = Fixture::get();
    let params = &fixture.genesis.params;
    let mempool_verdict = precheck(&fixture.chain_id, params, vec![data.to_vec()], &VerifiedCache::new(0))
        .pop()
        .expect("precheck gives one verdict per transaction");
    let transaction = match SignedTransaction::decode(data, params.max_tx_bytes as usize) {
        Ok(transaction) => transaction,
        Err(error) => {
            assert_eq!(mempool_verdict.err(), Some(AdmitError::Invalid(error)), "the mempool decodes differently");
            return Depth::Undecodable;
        }
    };
    let verdict = check(&transaction, data);
    match (&verdict, &mempool_verdict) {
        (Ok(()), Ok(prechecked)) => {
            assert_eq!(prechecked.hash(), transaction.hash());
            assert_eq!(prechecked.encoded(), data);
        }
        (Err(error), Err(AdmitError::Invalid(mempool_error))) => assert_eq!(error, mempool_error),
        (ours, theirs) => {
            let theirs = theirs.as_ref().map(|_| "accepted");
            panic!("the ledger says {ours:?}, the mempool's precheck says {theirs:?}")
        }
    }
    // Admission against the fixture's head state (roles, nonce window): must not panic, and only
    // what passed precheck can be admitted.
    let mut mempool = Mempool::new(fixture.chain_id.clone(), MempoolConfig::default());
    let admitted = mempool
        .admit_prechecked(&fixture.store, vec![mempool_verdict], std::time::Instant::now())
        .pop()
        .expect("one verdict");
    if verdict.is_err() {
        assert!(admitted.is_err(), "admitted a transaction the ledger rejects");
        return Depth::Rejected;
    }
    // A block of just this transaction on the head state: execution must not panic, and a block
    // executes only transactions whose nonce is the account's next one.
    let executed = ledger::execute(
        &fixture.store,
        BlockInput {
            chain_id: &fixture.chain_id,
            height: COMMITTED + 1,
            timestamp_ms: fixture.next.block.header.timestamp_ms,
            transactions: std::slice::from_ref(&transaction),
        },
        ledger::SignatureCheck::All,
    );
    match (&admitted, &executed) {
        (Ok(_), Ok(_)) => Depth::Accepted,
        _ => Depth::Rejected,
    }
}

/// The ledger's checks of a decoded transaction (what block execution applies before any state),
/// with the invariants every decoded transaction must keep. Shared with the p2p and block targets.
pub fn check(transaction: &SignedTransaction, encoded: &[u8]) -> Result<(), TxError> {
    let fixture = Fixture::get();
    assert_eq!(transaction.encode(), encoded, "a decoded transaction re-encodes to other bytes");
    assert_eq!(transaction.encoded_len(), encoded.len());
    assert_eq!(transaction.hash(), Digest::of(encoded));
    // The JSON form the RPC serves carries the exact bytes.
    let json = rpc::types::Tx::new(transaction);
    assert_eq!(rpc::types::from_hex(&json.raw).as_deref(), Ok(encoded));
    assert_eq!(json.sender, transaction.transaction.sender());
    let stateless = transaction.check_stateless(&fixture.chain_id, &fixture.genesis.params);
    if let Ok(size) = stateless {
        assert_eq!(size, encoded.len());
    }
    let signature = transaction.verify_signature();
    // Blocks (`ledger::verify_signatures`) and the mempool verify signatures with `verify_batch`:
    // a batch of one must reach the strict check's verdict, or a node could admit (or execute)
    // what another rejects.
    let signing_bytes = transaction.transaction.signing_bytes();
    let batch = verify_batch(&[signing_bytes.as_slice()], &[transaction.signature], &[transaction.transaction.signer]);
    assert_eq!(batch.is_ok(), signature.is_ok(), "batch and single signature checks disagree");
    stateless?;
    signature
}
