//! Committed transactions per second of an in-process 4-validator network over real libp2p on
//! 127.0.0.1 with RocksDB (synced writes), loaded through the driver's submission path.
//!
//! `cargo bench -p node --bench cluster` (or `cargo bench --workspace --bench cluster`);
//! `CLUSTER_TXS` (default 100000) and `CLUSTER_ACCOUNTS` (default 200) size the load.

#![allow(missing_docs)]

#[path = "../tests/cluster/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use consensus::SigningKey;
use harness::{Cluster, chain_id, run};
use ledger::{Address, BlockReader, Payload, Role, Transaction};

/// Transactions per submission call (what one RPC batch would carry).
const SUBMIT_BATCH: usize = 500;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn main() {
    let total = env("CLUSTER_TXS", 100_000);
    let accounts = env("CLUSTER_ACCOUNTS", 200);
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
        // Pre-signed before the clock starts. Each node gets a quarter of the accounts, their
        // transactions in nonce order, as concurrent clients would send them.
        let mut per_node: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 4];
        let mut last = Vec::new();
        for nonce in 0..per_account {
            for (index, sender) in senders.iter().enumerate() {
                let transaction = Transaction {
                    chain_id: chain_id(),
                    signer: sender.public_key(),
                    nonce,
                    payload: Payload::Transfer { to: recipient, amount: 1 },
                }
                .sign(sender);
                if nonce + 1 == per_account {
                    last.push(transaction.hash());
                }
                per_node[index % 4].push(transaction.encode());
            }
        }
        let start_height = cluster.head(0);
        let started = Instant::now();
        let submissions = per_node.into_iter().enumerate().map(|(index, transactions)| {
            let submitter = cluster.node(index).submitter.clone();
            tokio::spawn(async move {
                let mut admitted = 0u64;
                for chunk in transactions.chunks(SUBMIT_BATCH) {
                    let verdicts = submitter.submit(chunk.to_vec()).await.expect("node running");
                    admitted += verdicts.iter().filter(|verdict| verdict.is_ok()).count() as u64;
                }
                admitted
            })
        });
        let mut submitted = 0u64;
        for submission in submissions.collect::<Vec<_>>() {
            submitted += submission.await.expect("submission task");
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
