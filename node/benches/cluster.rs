//! Committed transactions per second of an in-process 4-validator network over real libp2p on
//! 127.0.0.1 with RocksDB (synced writes), loaded through the driver's submission path.
//!
//! `cargo bench -p node --bench cluster` (or `cargo bench --workspace --bench cluster`);
//! `CLUSTER_TXS` (default 20000) and `CLUSTER_ACCOUNTS` (default 40) size the load.

#![allow(missing_docs)]

#[path = "../tests/cluster/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use consensus::SigningKey;
use harness::{Cluster, chain_id, run};
use ledger::{Address, BlockReader, Payload, Role, SignedTransaction, Transaction};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn main() {
    let total = env("CLUSTER_TXS", 20_000);
    let accounts = env("CLUSTER_ACCOUNTS", 40);
    run(Duration::from_secs(1800), || async move {
        let mut cluster = Cluster::generate(4);
        cluster.start_all().await;
        cluster.wait_height(1).await;

        // Fund the senders and grant them the Transact role.
        let senders: Vec<SigningKey> = (0..accounts).map(|i| SigningKey::from_seed([(i + 1) as u8; 32])).collect();
        let mut setup = Vec::new();
        for sender in &senders {
            let address = Address::of(&sender.public_key());
            setup.push(cluster.faucet_tx(Payload::GrantRole { account: address, role: Role::Transact }));
            setup.push(cluster.faucet_tx(Payload::Transfer { to: address, amount: 1_000_000 }));
        }
        let hashes = cluster.submit(0, &setup).await;
        cluster.wait_committed(&hashes).await;

        let per_account = total / accounts;
        let recipient = Address::of(&SigningKey::from_seed([0xee; 32]).public_key());
        let mut batches: Vec<Vec<SignedTransaction>> = Vec::new();
        for nonce in 0..per_account {
            let batch = senders
                .iter()
                .map(|sender| {
                    Transaction {
                        chain_id: chain_id(),
                        signer: sender.public_key(),
                        nonce,
                        payload: Payload::Transfer { to: recipient, amount: 1 },
                    }
                    .sign(sender)
                })
                .collect();
            batches.push(batch);
        }
        let last: Vec<_> =
            batches.last().map(|batch| batch.iter().map(SignedTransaction::hash).collect()).unwrap_or_default();
        let start_height = cluster.head(0);
        let started = Instant::now();
        // Each account's transactions go to one node in nonce order (round-robin over nodes by
        // account), as clients would send them.
        let mut submitted = 0u64;
        for batch in &batches {
            for (node, chunk) in batch.chunks(batch.len().div_ceil(4)).enumerate() {
                let encoded = chunk.iter().map(SignedTransaction::encode).collect();
                let verdicts = cluster.node(node).driver.submit(encoded).await.expect("driver");
                submitted += verdicts.iter().filter(|verdict| verdict.is_ok()).count() as u64;
            }
        }
        let submit_seconds = started.elapsed().as_secs_f64();
        cluster.wait_committed(&last).await;
        let seconds = started.elapsed().as_secs_f64();
        let end_height = cluster.head(0);
        let committed: usize = (start_height + 1..=end_height)
            .map(|h| cluster.node(0).store.block(h).expect("read").expect("block").block.transactions.len())
            .sum();
        println!(
            "cluster/4 validators: {committed} txs ({submitted} admitted) committed in {seconds:.2} s = {:.0} tx/s; {} blocks ({:.0} txs/block); submission took {submit_seconds:.2} s",
            committed as f64 / seconds,
            end_height - start_height,
            committed as f64 / (end_height - start_height).max(1) as f64,
        );
        cluster.stop_all().await;
    });
}
