//! The attack of issue 13: a client signs transfers whose R carries a small-torsion component.
//! Such a signature satisfies the cofactored (ZIP-215) equation and not always the cofactorless
//! one, so before the fix admission, block validation, execution and audit, each batching
//! differently, disagreed about the same block. Now every layout gives one verdict: valid.

mod common;

use common::{TestChain, key};
use ledger::{Address, Payload, SignedTransaction, Transaction};

#[test]
fn torsioned_signatures_get_one_verdict_in_every_batch_layout_and_audit() {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let to = Address::of(&key(77).public_key());
    // 24 transfers, R + the order-2 point (as measured against 405f2db) and the other torsion
    // points, among honestly signed ones.
    let transactions: Vec<SignedTransaction> = (0..32u64)
        .map(|nonce| {
            let transaction = Transaction {
                chain_id: common::chain_id(),
                signer: faucet.public_key(),
                nonce,
                payload: Payload::Transfer { to, amount: 1 },
            };
            match nonce % 4 {
                3 => transaction.sign(&faucet),
                _ => {
                    let message = transaction.signing_bytes();
                    let (_, signature) =
                        consensus::hostile::sign_torsioned(&faucet, &message, 1 + nonce as usize % 7, 0);
                    SignedTransaction { transaction, signature }
                }
            }
        })
        .collect();
    for transaction in &transactions {
        assert_eq!(transaction.verify_signature(), Ok(()), "nonce {}", transaction.transaction.nonce);
    }
    let mut rng = fastrand::Rng::with_seed(13);
    for _ in 0..200 {
        let start = rng.usize(..transactions.len());
        let end = rng.usize(start..=transactions.len());
        let mut layout = transactions[start..end].to_vec();
        rng.shuffle(&mut layout);
        assert_eq!(ledger::verify_signatures(&layout), Ok(()), "{} transactions from {start}", layout.len());
    }
    // The block executes (whole-block batch), commits, and the chain audits (another layout).
    for chunk in transactions.chunks(7) {
        let committed = chain.commit(chunk.to_vec());
        assert!(committed.block.transactions.len() == chunk.len());
    }
    let report = ledger::audit::audit_chain(&chain.store, &chain.genesis, |_| {}).expect("the chain audits");
    assert_eq!(report.transactions, transactions.len() as u64);
    assert_eq!(common::account(&chain.store, &to).balance, transactions.len() as u64);
}
