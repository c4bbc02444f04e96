//! Ledger throughput: hashing, parallel signature checks, executing a 10,000-transfer block
//! with its state root, and executing + committing it to RocksDB (synced), signatures included.
#![allow(missing_docs)] // criterion macros generate undocumented items

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use consensus::SigningKey;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ledger::{
    Address, BlockReader, BlockWriter, GenesisAccount, Params, RocksStore, Role, SignedTransaction, StoreOptions,
    build_block, verify_signatures,
};

const BLOCK_TXS: usize = 10_000;
const SENDERS: usize = 2_000;

struct Bench {
    _dir: tempfile::TempDir,
    genesis: ledger::Genesis,
    store: RocksStore,
    senders: Vec<SigningKey>,
    validators: Vec<SigningKey>,
    nonces: Vec<u64>,
    clock_ms: AtomicU64,
}

impl Bench {
    fn new() -> Self {
        let validators: Vec<SigningKey> = (0..4).map(|i| common::key(1000 + i)).collect();
        let senders: Vec<SigningKey> = (0..SENDERS as u64).map(|i| common::key(10_000 + i)).collect();
        let mut genesis = common::genesis(&validators, &common::key(1), Params::default());
        genesis.accounts.extend(senders.iter().map(|key| GenesisAccount {
            address: Address::of(&key.public_key()),
            balance: 1_000_000_000,
            roles: vec![Role::Transact],
        }));
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RocksStore::open(dir.path(), &genesis, StoreOptions::default()).expect("open");
        Bench {
            _dir: dir,
            genesis: genesis.clone(),
            store,
            senders,
            validators,
            nonces: vec![0; SENDERS],
            clock_ms: AtomicU64::new(genesis.genesis_time_ms),
        }
    }

    /// The next block's transfers: each sender sends 5, to 5 different accounts.
    fn next_transfers(&mut self) -> Vec<SignedTransaction> {
        (0..BLOCK_TXS)
            .map(|i| {
                let sender = i % SENDERS;
                let receiver = &self.senders[(sender + 1 + i / SENDERS) % SENDERS];
                let nonce = self.nonces[sender];
                self.nonces[sender] += 1;
                common::transfer(&self.senders[sender], nonce, receiver, 1)
            })
            .collect()
    }

    fn execute_and_commit(&self, transactions: Vec<SignedTransaction>) {
        let head = self.store.head().expect("head");
        let clock = self.clock_ms.fetch_add(1_000, Ordering::Relaxed) + 1_000;
        let (block, execution) = build_block(
            &self.store,
            &head,
            self.validators[0].public_key(),
            clock,
            transactions,
            ledger::SignatureCheck::All,
        )
        .expect("valid block");
        let signers: Vec<(u32, &SigningKey)> =
            self.validators.iter().take(3).enumerate().map(|(i, k)| (i as u32, k)).collect();
        let certificate =
            consensus::CommitCertificate::sign(&common::chain_id(), block.header.height, 0, block.hash(), &signers);
        self.store.commit(&block, &certificate, execution).expect("commit");
    }
}

fn ledger(criterion: &mut Criterion) {
    let mut bench = Bench::new();
    let transfers = bench.next_transfers();

    let mut group = criterion.benchmark_group("transaction");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hash", |b| b.iter(|| transfers[0].hash()));
    group.finish();

    let mut group = criterion.benchmark_group("block_10k_transfers");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BLOCK_TXS as u64));
    group.bench_function("verify_signatures_parallel", |b| b.iter(|| verify_signatures(&transfers).expect("valid")));
    group.bench_function("execute_with_state_root", |b| {
        let head = bench.store.head().expect("head");
        let proposer = bench.validators[0].public_key();
        b.iter_batched(
            || transfers.clone(),
            |transfers| {
                build_block(
                    &bench.store,
                    &head,
                    proposer,
                    head.timestamp_ms + 1,
                    transfers,
                    ledger::SignatureCheck::All,
                )
                .expect("valid")
            },
            BatchSize::PerIteration,
        )
    });
    // Reset the nonces: the transfers above were never committed.
    bench.nonces = vec![0; SENDERS];
    let blocks = std::cell::RefCell::new(bench);
    group.bench_function("execute_and_commit_synced", |b| {
        b.iter_batched(
            || blocks.borrow_mut().next_transfers(),
            |transfers| blocks.borrow().execute_and_commit(transfers),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    // Audit: re-verify a fresh 5-block chain of 50,000 transfers from genesis.
    let mut chain = Bench::new();
    for _ in 0..5 {
        let transfers = chain.next_transfers();
        chain.execute_and_commit(transfers);
    }
    let genesis = chain.genesis.clone();
    let mut group = criterion.benchmark_group("audit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(5 * BLOCK_TXS as u64));
    group.bench_function("audit_chain_5_blocks_of_10k", |b| {
        b.iter(|| ledger::audit::audit_chain(&chain.store, &genesis, |_| {}).expect("verifies"))
    });
    group.finish();
}

criterion_group!(benches, ledger);
criterion_main!(benches);
