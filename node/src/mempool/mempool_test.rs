use std::sync::OnceLock;

use consensus::{CommitCertificate, SigningKey};
use ledger::{
    BlockReader, BlockWriter, Genesis, GenesisAccount, MemStore, Params, Payload, Role, Transaction, ValidatorInfo,
    build_block,
};

use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed([seed; 32])
}

fn chain_id() -> ChainId {
    ChainId::new("pool").expect("chain id")
}

struct Chain {
    store: std::sync::Arc<MemStore>,
    validators: Vec<SigningKey>,
}

/// Validators 1..=4; accounts 10 and 11 may transact, 12 holds a balance but no role, 13, 14 and
/// 15 may write records.
fn chain() -> Chain {
    let validators: Vec<SigningKey> = (1..=4).map(key).collect();
    let account = |seed: u8, roles: Vec<Role>| GenesisAccount {
        address: Address::of(&key(seed).public_key()),
        balance: 1_000_000,
        roles,
    };
    let genesis = Genesis {
        chain_id: chain_id(),
        genesis_time_ms: 1,
        validators: validators
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorInfo { name: format!("v{i}"), public_key: k.public_key(), peer_id: format!("p{i}") })
            .collect(),
        accounts: vec![
            account(10, vec![Role::Transact, Role::Admin]),
            account(11, vec![Role::Transact]),
            account(12, vec![]),
            account(13, vec![Role::Write]),
            account(14, vec![Role::Write]),
            account(15, vec![Role::Write]),
        ],
        params: Params::default(),
    };
    Chain { store: std::sync::Arc::new(MemStore::new(&genesis).expect("store")), validators }
}

impl Chain {
    fn commit(&self, transactions: Vec<SignedTransaction>) {
        let head = self.store.head().expect("head");
        let (block, execution) = build_block(
            self.store.as_ref(),
            &head,
            self.validators[0].public_key(),
            head.timestamp_ms + 1,
            transactions,
            ledger::SignatureCheck::All,
        )
        .expect("valid block");
        let signers: Vec<(u32, &SigningKey)> =
            self.validators.iter().take(3).enumerate().map(|(i, k)| (i as u32, k)).collect();
        let certificate = CommitCertificate::sign(&chain_id(), block.header.height, 0, block.hash(), &signers);
        self.store.commit(&block, &certificate, execution).expect("commit");
    }
}

fn transfer(from: u8, nonce: u64) -> SignedTransaction {
    let payload = Payload::Transfer { to: Address([7; 20]), amount: 1 };
    Transaction { chain_id: chain_id(), signer: key(from).public_key(), nonce, payload }.sign(&key(from))
}

/// A record of the largest value a transaction may carry (32 KiB).
fn record(from: u8, nonce: u64) -> SignedTransaction {
    let payload = Payload::PutRecord { key: nonce.to_be_bytes().to_vec(), value: vec![from; 32 * 1024] };
    Transaction { chain_id: chain_id(), signer: key(from).public_key(), nonce, payload }.sign(&key(from))
}

/// The tests' clock: `seconds` after one instant fixed for the whole run, so every test says
/// exactly when each admission and expiry happens.
fn at(seconds: u64) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now) + Duration::from_secs(seconds)
}

fn admit_at(
    pool: &mut Mempool,
    chain: &Chain,
    transactions: &[SignedTransaction],
    now: Instant,
) -> Vec<Result<Admitted, AdmitError>> {
    let encoded: Vec<Vec<u8>> = transactions.iter().map(SignedTransaction::encode).collect();
    let verdicts = pool.admit_batch(chain.store.as_ref(), &encoded, now);
    assert_consistent(pool);
    verdicts
}

/// Admits at [`at`]`(0)`; the verdicts as hashes.
fn admit(pool: &mut Mempool, chain: &Chain, transactions: &[SignedTransaction]) -> Vec<Result<Digest, AdmitError>> {
    admit_at(pool, chain, transactions, at(0)).into_iter().map(|verdict| verdict.map(|tx| tx.hash())).collect()
}

/// Checks the pool's bookkeeping against its entries (the invariants on [`Mempool`]).
fn assert_consistent(pool: &Mempool) {
    assert_eq!(pool.bytes, pool.entries.values().map(|entry| entry.size).sum::<usize>());
    let queued: HashSet<Digest> =
        pool.entries.iter().filter(|(_, entry)| entry.queued).map(|(hash, _)| *hash).collect();
    assert_eq!(pool.queued, queued.len());
    assert_eq!(pool.queued_bytes, queued.iter().map(|hash| pool.entries[hash].size).sum::<usize>());
    assert_eq!(pool.queue.len(), queued.len());
    for (admission, hash) in &pool.queue {
        assert!(queued.contains(hash));
        assert_eq!(pool.entries[hash].admission, *admission);
    }
    let mut held = 0;
    for (address, account) in &pool.accounts {
        assert!(!account.nonces.is_empty(), "an account without transactions is kept");
        let run: HashSet<&Digest> = ready_run(&account.nonces, account.next).collect();
        assert_eq!(account.ready, run.len());
        for (nonce, hash) in &account.nonces {
            assert!(*nonce >= account.next, "a used nonce is kept");
            let entry = &pool.entries[hash];
            assert_eq!((&entry.sender, entry.transaction.transaction.nonce), (address, *nonce));
            assert_eq!(entry.queued, !run.contains(hash), "nonce {nonce}: queued exactly when behind a gap");
        }
        held += account.nonces.len();
    }
    assert_eq!(held, pool.entries.len());
    assert!(pool.promoted.iter().all(|hash| !pool.entries[hash].queued));
}

/// (signer seed, nonce) of each transaction, for readable assertions.
fn named(transactions: &[SignedTransaction]) -> Vec<(u8, u64)> {
    transactions
        .iter()
        .map(|tx| {
            let seed = (10..=15).find(|seed| key(*seed).public_key() == tx.transaction.signer).unwrap_or(0);
            (seed, tx.transaction.nonce)
        })
        .collect()
}

fn decoded(encoded: &[Vec<u8>]) -> Vec<SignedTransaction> {
    encoded.iter().map(|bytes| SignedTransaction::decode(bytes, usize::MAX).expect("decodes")).collect()
}

#[test]
fn admission_names_every_rejection() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig { max_nonce_ahead: 5, ..MempoolConfig::default() });
    let good = transfer(10, 0);
    let mut forged = transfer(10, 1);
    forged.signature.0[1] ^= 1;
    let mut foreign = transfer(11, 0).transaction;
    foreign.chain_id = ChainId::new("elsewhere").expect("chain id");
    let foreign = foreign.sign(&key(11));
    let verdicts = admit(&mut pool, &chain, &[good.clone(), forged, foreign, transfer(12, 0), transfer(11, 6), good]);
    assert_eq!(verdicts[0], Ok(transfer(10, 0).hash()));
    assert_eq!(verdicts[1], Err(AdmitError::Invalid(TxError::BadSignature)));
    assert!(matches!(verdicts[2], Err(AdmitError::Invalid(TxError::WrongChain { .. }))));
    assert_eq!(verdicts[3], Err(AdmitError::PermissionDenied(Role::Transact)));
    assert_eq!(verdicts[4], Err(AdmitError::NonceTooHigh { max: 5, found: 6 }));
    assert_eq!(verdicts[5], Err(AdmitError::Duplicate(transfer(10, 0).hash())));
    assert_eq!(pool.len(), 1);

    let garbage = pool.admit_batch(chain.store.as_ref(), &[vec![1, 2, 3], vec![0; 70_000]], at(0));
    assert!(matches!(garbage[0], Err(AdmitError::Invalid(TxError::Malformed(_)))));
    assert!(matches!(garbage[1], Err(AdmitError::Invalid(TxError::TooLarge { .. }))));

    chain.commit(vec![transfer(11, 0)]);
    assert_eq!(admit(&mut pool, &chain, &[transfer(11, 0)])[0], Err(AdmitError::NonceTooLow { expected: 1, found: 0 }));
}

#[test]
fn a_full_pool_pushes_back_and_never_grows() {
    let chain = chain();
    let config = MempoolConfig { max_txs: 5, max_per_account: 3, ..MempoolConfig::default() };
    let mut pool = Mempool::new(chain_id(), config);
    let verdicts = admit(&mut pool, &chain, &(0..4).map(|n| transfer(10, n)).collect::<Vec<_>>());
    assert!(verdicts[..3].iter().all(Result::is_ok));
    assert_eq!(verdicts[3], Err(AdmitError::Full("this account has too many pending transactions")));
    let verdicts = admit(&mut pool, &chain, &(0..3).map(|n| transfer(11, n)).collect::<Vec<_>>());
    assert!(verdicts[..2].iter().all(Result::is_ok));
    assert_eq!(verdicts[2], Err(AdmitError::Full("too many pending transactions")));
    assert_eq!(pool.len(), 5);

    let one = transfer(10, 0).encoded_len();
    let mut small = Mempool::new(chain_id(), MempoolConfig { max_bytes: 2 * one, ..MempoolConfig::default() });
    let verdicts = admit(&mut small, &chain, &(0..3).map(|n| transfer(10, n)).collect::<Vec<_>>());
    assert_eq!(verdicts[2], Err(AdmitError::Full("too many pending bytes")));
    assert_eq!(small.bytes(), 2 * one);
}

#[test]
fn transactions_behind_a_nonce_gap_have_their_own_cap() {
    let chain = chain();
    let config = MempoolConfig { max_queued: 2, ..MempoolConfig::default() };
    let mut pool = Mempool::new(chain_id(), config);
    // Account 10: nonces 3 and 4 wait behind the gap at 0..=2; 5 would be a third.
    let verdicts = admit(&mut pool, &chain, &[transfer(10, 3), transfer(10, 4), transfer(10, 5)]);
    assert!(verdicts[..2].iter().all(Result::is_ok), "{verdicts:?}");
    assert_eq!(verdicts[2], Err(AdmitError::QueueFull { next: 0, found: 5, limit: QueueLimit::Count }));
    assert_eq!(pool.queued(), 2);
    // A flood of future nonces never blocks executable transactions.
    assert!(admit(&mut pool, &chain, &(0..10).map(|n| transfer(11, n)).collect::<Vec<_>>()).iter().all(Result::is_ok));
    assert_eq!(
        admit(&mut pool, &chain, &[transfer(11, 12)])[0],
        Err(AdmitError::QueueFull { next: 10, found: 12, limit: QueueLimit::Count })
    );
    // Filling the gap joins 3 and 4 to the run: nothing waits, and there is room again.
    assert!(admit(&mut pool, &chain, &[transfer(10, 0), transfer(10, 1)]).iter().all(Result::is_ok));
    assert_eq!(pool.queued(), 2, "10's nonce 2 is still missing: 3 and 4 still wait");
    assert!(admit(&mut pool, &chain, &[transfer(10, 2)])[0].is_ok());
    assert_eq!(pool.queued(), 0);
    assert!(admit(&mut pool, &chain, &[transfer(11, 12)])[0].is_ok());
    assert_eq!(pool.queued(), 1);

    // A committed block moves the nonces: prune measures every run again.
    let block: Vec<SignedTransaction> = pool.reap(chain.store.as_ref(), 100, usize::MAX).expect("reap");
    assert_eq!(block.len(), 15, "10's 0..=4 and 11's 0..=9; 11's 12 waits for 10 and 11");
    chain.commit(block);
    pool.prune(chain.store.as_ref()).expect("prune");
    assert_consistent(&pool);
    assert_eq!((pool.len(), pool.queued()), (1, 1));
    assert!(admit(&mut pool, &chain, &[transfer(11, 10), transfer(11, 11)]).iter().all(Result::is_ok));
    assert_eq!(pool.queued(), 0);
}

#[test]
fn reaping_follows_nonces_and_takes_turns() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig::default());
    // Account 10 arrives first with nonces 2, 0, 1 (out of order) and 5 (a gap); 11 with 0, 1.
    let arrivals =
        [transfer(10, 2), transfer(10, 0), transfer(11, 0), transfer(10, 1), transfer(10, 5), transfer(11, 1)];
    assert!(admit(&mut pool, &chain, &arrivals).iter().all(Result::is_ok));
    let reaped = pool.reap(chain.store.as_ref(), 100, usize::MAX).expect("reap");
    let order: Vec<(u8, u64)> = reaped
        .iter()
        .map(|tx| (if tx.transaction.signer == key(10).public_key() { 10 } else { 11 }, tx.transaction.nonce))
        .collect();
    assert_eq!(order, vec![(10, 0), (11, 0), (10, 1), (11, 1), (10, 2)], "nonce 5 waits for 3 and 4");
    assert_eq!(pool.reap(chain.store.as_ref(), 3, usize::MAX).expect("reap").len(), 3);
    let one = transfer(10, 0).encoded_len();
    assert_eq!(pool.reap(chain.store.as_ref(), 100, 2 * one + 1).expect("reap").len(), 2);

    // The reaped transactions execute as a block; pruning drops exactly those.
    chain.commit(reaped);
    assert_eq!(pool.prune(chain.store.as_ref()).expect("prune"), 5);
    assert_consistent(&pool);
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.reap(chain.store.as_ref(), 100, usize::MAX).expect("reap"), vec![], "nonce 5 still waits");
}

#[test]
fn pruning_drops_transactions_whose_signer_lost_the_role() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig::default());
    assert!(admit(&mut pool, &chain, &[transfer(11, 0), transfer(11, 1)]).iter().all(Result::is_ok));
    let revoke = Payload::RevokeRole { account: Address::of(&key(11).public_key()), role: Role::Transact };
    chain.commit(vec![
        Transaction { chain_id: chain_id(), signer: key(10).public_key(), nonce: 0, payload: revoke }.sign(&key(10)),
    ]);
    assert_eq!(pool.prune(chain.store.as_ref()).expect("prune"), 2);
    assert_consistent(&pool);
    assert!(pool.is_empty());
    assert_eq!(pool.bytes(), 0);
}

#[test]
fn transactions_behind_a_nonce_gap_are_not_ready() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig::default());
    assert!(!pool.has_ready(chain.store.as_ref()).expect("read"));
    admit(&mut pool, &chain, &[transfer(10, 1), transfer(11, 3)]).into_iter().for_each(|v| {
        v.expect("admitted");
    });
    // Pending, but neither account's next nonce (0) is there: no block would carry them.
    assert!(!pool.is_empty());
    assert!(!pool.has_ready(chain.store.as_ref()).expect("read"));
    admit(&mut pool, &chain, &[transfer(10, 0)]).into_iter().for_each(|v| {
        v.expect("admitted");
    });
    assert!(pool.has_ready(chain.store.as_ref()).expect("read"));
}

#[test]
fn one_bad_signature_among_many_batches_refuses_only_that_transaction() {
    let chain = chain();
    // The 399 after the forged one wait behind its nonce: room for all of them.
    let config = MempoolConfig { max_queued_per_account: 1_000, ..MempoolConfig::default() };
    let mut pool = Mempool::new(chain_id(), config);
    // 700 transactions span three signature batches; the forged one sits in the second.
    let mut transactions: Vec<SignedTransaction> = (0..700).map(|nonce| transfer(10, nonce)).collect();
    transactions[300].signature.0[5] ^= 1;
    let mut encoded: Vec<Vec<u8>> = transactions.iter().map(SignedTransaction::encode).collect();
    encoded.insert(10, vec![0xff; 8]);
    let verified = VerifiedCache::new(1_000);
    let checked = precheck(&chain_id(), &Params::default(), encoded.clone(), &verified);
    assert_eq!(checked.len(), 701);
    assert!(matches!(checked[10], Err(AdmitError::Invalid(TxError::Malformed(_)))));
    assert!(matches!(checked[301], Err(AdmitError::Invalid(TxError::BadSignature))));
    assert_eq!(checked.iter().filter(|result| result.is_ok()).count(), 699);
    let hashes: Vec<Option<Digest>> = checked.iter().map(|result| result.as_ref().ok().map(Prechecked::hash)).collect();
    let verdicts = pool.admit_prechecked(chain.store.as_ref(), checked, Instant::now());
    for (index, (verdict, hash)) in verdicts.iter().zip(hashes).enumerate() {
        match hash {
            Some(hash) => assert_eq!(verdict.as_ref().map(Admitted::hash), Ok(hash), "transaction {index}"),
            None => assert!(verdict.is_err(), "transaction {index}"),
        }
    }
    assert_eq!(pool.len(), 699);
    assert!(!pool.contains(&transactions[300].hash()));
    // The good signatures are remembered; the forged one is not, and fails again.
    assert!(verified.read().contains(&transactions[0].hash()));
    assert!(!verified.read().contains(&transactions[300].hash()));
    let again = precheck(&chain_id(), &Params::default(), encoded, &verified);
    assert!(matches!(again[301], Err(AdmitError::Invalid(TxError::BadSignature))));
    assert_eq!(again.iter().filter(|result| result.is_ok()).count(), 699);
}

#[test]
fn gapped_records_from_two_accounts_never_keep_a_ready_transaction_out() {
    let chain = chain();
    // As before gapped transactions had a byte budget: nothing but the pool's own caps limits
    // them, so gapped records fill it.
    let config = MempoolConfig { max_bytes: 1024 * 1024, max_queued_bytes: usize::MAX, ..MempoolConfig::default() };
    let mut pool = Mempool::new(chain_id(), config);
    // Accounts 13 and 14 send 32 KiB records from nonce 1 on: nonce 0 never comes.
    let flood: Vec<SignedTransaction> = (1..=30).flat_map(|nonce| [record(13, nonce), record(14, nonce)]).collect();
    let verdicts = admit_at(&mut pool, &chain, &flood, at(0));
    let size = record(13, 1).encoded_len();
    let fit = config.max_bytes / size;
    assert!(verdicts[..fit].iter().all(|verdict| matches!(verdict, Ok(Admitted::Queued(_)))), "{verdicts:?}");
    assert!(verdicts[fit..].iter().all(|verdict| *verdict == Err(AdmitError::Full("too many pending bytes"))));
    assert_eq!((pool.len(), pool.queued()), (fit, fit), "the pool is full of transactions no block can take");

    // Account 15's records can execute: each pushes out the oldest gapped one instead of being
    // refused, until ready records alone fill the pool.
    let ready: Vec<SignedTransaction> = (0..40).map(|nonce| record(15, nonce)).collect();
    let verdicts = admit_at(&mut pool, &chain, &ready, at(1));
    for (nonce, verdict) in verdicts.iter().enumerate() {
        if nonce < fit {
            assert_eq!(*verdict, Ok(Admitted::Ready(ready[nonce].hash())), "nonce {nonce}");
        } else {
            assert_eq!(*verdict, Err(AdmitError::Full("too many pending bytes")), "nonce {nonce}");
        }
    }
    assert_eq!((pool.len(), pool.queued(), pool.queued_bytes()), (fit, 0, 0));
    assert!(pool.bytes() <= config.max_bytes);
    // Evicted, the gapped records are gone for good; the ready ones make the next block.
    assert!(!pool.contains(&flood[0].hash()));
    let block = pool.reap(chain.store.as_ref(), usize::MAX, usize::MAX).expect("reap");
    assert_eq!(named(&block), (0..fit as u64).map(|nonce| (15, nonce)).collect::<Vec<_>>());

    // With the default budget the flood gets a sixteenth of the pool, and ready records the rest
    // without evicting anything.
    let defaults = MempoolConfig::default();
    let config = MempoolConfig { max_bytes: 1024 * 1024, max_queued_bytes: 1024 * 1024 / 16, ..defaults };
    assert_eq!(defaults.max_queued_bytes, defaults.max_bytes / 16);
    let mut pool = Mempool::new(chain_id(), config);
    let verdicts = admit_at(&mut pool, &chain, &flood, at(0));
    assert_eq!(verdicts.iter().filter(|verdict| verdict.is_ok()).count(), config.max_queued_bytes / size);
    assert!(pool.queued_bytes() <= config.max_queued_bytes);
    let verdicts = admit_at(&mut pool, &chain, &ready[..fit - 1], at(1));
    assert!(verdicts.iter().all(|verdict| matches!(verdict, Ok(Admitted::Ready(_)))), "{verdicts:?}");
    assert_eq!(pool.queued(), config.max_queued_bytes / size, "room was left: nothing evicted");
}

#[test]
fn a_transaction_over_the_gapped_budget_gets_a_typed_refusal() {
    let chain = chain();
    let size = record(13, 1).encoded_len();
    let config =
        MempoolConfig { max_queued_bytes: 2 * size + 1024, max_queued_per_account: 3, ..MempoolConfig::default() };
    let mut pool = Mempool::new(chain_id(), config);
    let verdicts = admit_at(&mut pool, &chain, &[record(13, 1), record(14, 1), record(13, 2)], at(0));
    assert!(matches!(verdicts[0], Ok(Admitted::Queued(_))) && matches!(verdicts[1], Ok(Admitted::Queued(_))));
    let refusal = AdmitError::QueueFull { next: 0, found: 2, limit: QueueLimit::Bytes };
    assert_eq!(verdicts[2], Err(refusal.clone()));
    assert_eq!(
        refusal.to_string(),
        "nonce 2 would wait behind a nonce gap (the account's next executable nonce is 0) and the pool already \
         holds as many bytes waiting behind a gap as it keeps"
    );
    // Small transactions still fit the bytes, but one account may only hold so many.
    let verdicts = admit_at(&mut pool, &chain, &[transfer(10, 3), transfer(10, 4), transfer(10, 5)], at(0));
    assert!(verdicts.iter().all(|verdict| matches!(verdict, Ok(Admitted::Queued(_)))), "{verdicts:?}");
    // Nonce 0 arrives (the next executable nonce is now 1); 7 would be the account's fourth
    // transaction behind a gap.
    let verdicts = admit_at(&mut pool, &chain, &[transfer(10, 0), transfer(10, 7)], at(0));
    assert!(matches!(verdicts[0], Ok(Admitted::Ready(_))));
    assert_eq!(verdicts[1], Err(AdmitError::QueueFull { next: 1, found: 7, limit: QueueLimit::Account }));
    assert!(verdicts[1].as_ref().is_err_and(|error| error.to_string().contains("this account already has")));
    // A ready transaction is never held to the gapped budget.
    assert!(matches!(admit_at(&mut pool, &chain, &[record(15, 0)], at(0))[0], Ok(Admitted::Ready(_))));
}

#[test]
fn gapped_transactions_expire_after_the_configured_time() {
    let chain = chain();
    let config = MempoolConfig { queued_expiry: Duration::from_secs(60), ..MempoolConfig::default() };
    let mut pool = Mempool::new(chain_id(), config);
    admit_at(&mut pool, &chain, &[transfer(10, 2), transfer(11, 0)], at(0)).into_iter().for_each(|verdict| {
        verdict.expect("admitted");
    });
    assert!(matches!(admit_at(&mut pool, &chain, &[transfer(10, 3)], at(30))[0], Ok(Admitted::Queued(_))));
    assert_eq!(pool.expire(at(59)), 0);
    assert_eq!(pool.expire(at(0)), 0, "a clock that went back expires nothing");
    assert_eq!(pool.expire(at(60)), 1, "nonce 2, admitted at 0");
    assert_consistent(&pool);
    assert!(!pool.contains(&transfer(10, 2).hash()) && pool.contains(&transfer(10, 3).hash()));
    // Admission expires too: nonce 3 goes at 90, the ready transfer of 11 stays.
    assert!(admit_at(&mut pool, &chain, &[transfer(11, 1)], at(90))[0].is_ok());
    assert_eq!((pool.len(), pool.queued(), pool.queued_bytes()), (2, 0, 0));
    assert_eq!(pool.bytes(), 2 * transfer(11, 0).encoded_len());

    // A gap that closes in time saves what waited behind it, however long it stays after.
    assert!(matches!(admit_at(&mut pool, &chain, &[transfer(10, 1)], at(100))[0], Ok(Admitted::Queued(_))));
    assert!(matches!(admit_at(&mut pool, &chain, &[transfer(10, 0)], at(159))[0], Ok(Admitted::Ready(_))));
    assert_eq!(pool.expire(at(10_000)), 0);
    let block = pool.reap(chain.store.as_ref(), usize::MAX, usize::MAX).expect("reap");
    assert_eq!(named(&block), vec![(11, 0), (10, 0), (11, 1), (10, 1)]);
}

#[test]
fn a_closing_gap_makes_gapped_transactions_ready_in_nonce_order() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig::default());
    let verdicts = admit_at(&mut pool, &chain, &[transfer(10, 3), transfer(10, 1), transfer(10, 2)], at(0));
    assert!(verdicts.iter().all(|verdict| matches!(verdict, Ok(Admitted::Queued(_)))), "{verdicts:?}");
    assert_eq!(pool.queued(), 3);
    assert!(!pool.has_ready(chain.store.as_ref()).expect("read"));
    assert_eq!(pool.reap(chain.store.as_ref(), usize::MAX, usize::MAX).expect("reap"), vec![]);
    assert!(pool.take_promoted().is_empty());

    // The missing nonce arrives: 1, 2 and 3 become ready, handed out for gossip in nonce order.
    assert_eq!(admit_at(&mut pool, &chain, &[transfer(10, 0)], at(1))[0], Ok(Admitted::Ready(transfer(10, 0).hash())));
    assert_eq!(pool.queued(), 0);
    assert_eq!(named(&decoded(&pool.take_promoted())), vec![(10, 1), (10, 2), (10, 3)]);
    assert!(pool.take_promoted().is_empty(), "handed out once");
    assert_eq!(
        named(&pool.reap(chain.store.as_ref(), usize::MAX, usize::MAX).expect("reap")),
        vec![(10, 0), (10, 1), (10, 2), (10, 3)]
    );

    // A block closes a gap too: 11's nonce 0 comes from another node's pool.
    assert!(admit_at(&mut pool, &chain, &[transfer(11, 2), transfer(11, 1)], at(2)).iter().all(Result::is_ok));
    assert_eq!(pool.queued(), 2);
    let elsewhere = Transaction {
        chain_id: chain_id(),
        signer: key(11).public_key(),
        nonce: 0,
        payload: Payload::Transfer { to: Address([8; 20]), amount: 2 },
    };
    chain.commit(vec![elsewhere.sign(&key(11))]);
    assert_eq!(pool.prune(chain.store.as_ref()).expect("prune"), 0);
    assert_consistent(&pool);
    assert_eq!(pool.queued(), 0);
    assert_eq!(named(&decoded(&pool.take_promoted())), vec![(11, 1), (11, 2)]);
    let block = pool.reap(chain.store.as_ref(), usize::MAX, usize::MAX).expect("reap");
    assert_eq!(named(&block), vec![(10, 0), (11, 1), (10, 1), (11, 2), (10, 2), (10, 3)]);
    // Which executes: every account's transactions in nonce order from its next.
    chain.commit(block);
    assert_eq!(pool.prune(chain.store.as_ref()).expect("prune"), 6);
    assert!(pool.is_empty());
}

#[test]
fn gapped_transactions_are_reported_as_not_to_gossip() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig::default());
    let batch = [transfer(10, 0), transfer(10, 2), transfer(11, 5), transfer(10, 1)];
    let verdicts = admit_at(&mut pool, &chain, &batch, at(0));
    assert_eq!(
        verdicts,
        vec![
            Ok(Admitted::Ready(batch[0].hash())),
            Ok(Admitted::Queued(batch[1].hash())),
            Ok(Admitted::Queued(batch[2].hash())),
            Ok(Admitted::Ready(batch[3].hash())),
        ]
    );
    assert!(verdicts[0].as_ref().is_ok_and(Admitted::is_ready));
    assert!(verdicts[2].as_ref().is_ok_and(|admitted| !admitted.is_ready()));
    // Nonce 1 closed the gap before nonce 2: only 2 is to be gossiped now; 11's 5 never, yet.
    assert_eq!(decoded(&pool.take_promoted()), vec![batch[1].clone()]);

    // A transaction promoted and then committed before it was handed out is not gossiped.
    assert!(admit_at(&mut pool, &chain, &[transfer(11, 1), transfer(11, 0)], at(0)).iter().all(Result::is_ok));
    chain.commit(vec![transfer(11, 0), transfer(11, 1)]);
    pool.prune(chain.store.as_ref()).expect("prune");
    assert!(pool.take_promoted().is_empty());
    // Nor is one evicted or expired.
    assert_eq!(pool.expire(at(3_600)), 1, "11's nonce 5");
    assert!(pool.take_promoted().is_empty());
}

#[test]
fn a_ready_transaction_evicts_gapped_ones_before_it_is_refused() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig { max_txs: 4, ..MempoolConfig::default() });
    assert!(admit_at(&mut pool, &chain, &[transfer(10, 5)], at(0))[0].is_ok());
    let later = [transfer(11, 5), transfer(10, 0), transfer(11, 0)];
    assert!(admit_at(&mut pool, &chain, &later, at(1)).iter().all(Result::is_ok));
    assert_eq!((pool.len(), pool.queued()), (4, 2));
    // Full by count: a gapped transaction is refused, not let in over another one.
    assert_eq!(
        admit_at(&mut pool, &chain, &[transfer(11, 7)], at(2))[0],
        Err(AdmitError::Full("too many pending transactions"))
    );
    // A ready one pushes out the oldest gapped one, then the next.
    assert!(matches!(admit_at(&mut pool, &chain, &[transfer(10, 1)], at(2))[0], Ok(Admitted::Ready(_))));
    assert!(!pool.contains(&transfer(10, 5).hash()) && pool.contains(&transfer(11, 5).hash()));
    assert!(matches!(admit_at(&mut pool, &chain, &[transfer(10, 2)], at(2))[0], Ok(Admitted::Ready(_))));
    assert_eq!((pool.len(), pool.queued()), (4, 0));
    // Nothing left to evict: refused.
    assert_eq!(
        admit_at(&mut pool, &chain, &[transfer(11, 1)], at(2))[0],
        Err(AdmitError::Full("too many pending transactions"))
    );

    // The per-account cap the same way: the account's own highest gapped nonce goes first.
    let mut pool = Mempool::new(chain_id(), MempoolConfig { max_per_account: 3, ..MempoolConfig::default() });
    assert!(
        admit_at(&mut pool, &chain, &[transfer(10, 0), transfer(10, 5), transfer(10, 6)], at(0))
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(
        admit_at(&mut pool, &chain, &[transfer(10, 7)], at(0))[0],
        Err(AdmitError::Full("this account has too many pending transactions"))
    );
    assert!(matches!(admit_at(&mut pool, &chain, &[transfer(10, 1)], at(0))[0], Ok(Admitted::Ready(_))));
    assert!(!pool.contains(&transfer(10, 6).hash()) && pool.contains(&transfer(10, 5).hash()));
    assert!(matches!(admit_at(&mut pool, &chain, &[transfer(10, 2)], at(0))[0], Ok(Admitted::Ready(_))));
    assert_eq!(
        admit_at(&mut pool, &chain, &[transfer(10, 3)], at(0))[0],
        Err(AdmitError::Full("this account has too many pending transactions"))
    );
    assert_eq!(pool.len(), 3);
}

#[test]
fn a_transaction_dropped_from_a_run_leaves_the_rest_gapped() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig::default());
    let admin = |nonce: u64, payload: Payload| {
        Transaction { chain_id: chain_id(), signer: key(10).public_key(), nonce, payload }.sign(&key(10))
    };
    let me = Address::of(&key(10).public_key());
    let pending = [
        admin(0, Payload::RevokeRole { account: me, role: Role::Admin }),
        admin(1, Payload::GrantRole { account: Address([7; 20]), role: Role::Transact }),
        transfer(10, 2),
        transfer(10, 3),
    ];
    let verdicts = admit_at(&mut pool, &chain, &pending, at(0));
    assert!(verdicts.iter().all(|verdict| matches!(verdict, Ok(Admitted::Ready(_)))), "{verdicts:?}");
    // Account 10 gives up its admin role: nonce 1 can no longer execute, and 2 and 3 wait behind it.
    chain.commit(pool.reap(chain.store.as_ref(), 1, usize::MAX).expect("reap"));
    assert_eq!(pool.prune(chain.store.as_ref()).expect("prune"), 2);
    assert_consistent(&pool);
    assert_eq!((pool.len(), pool.queued()), (2, 2));
    assert!(!pool.has_ready(chain.store.as_ref()).expect("read"));
    assert_eq!(pool.reap(chain.store.as_ref(), usize::MAX, usize::MAX).expect("reap"), vec![]);
    // Counted from their admission, they expire like any other gapped transaction.
    assert_eq!(pool.expire(at(60)), 2);
    assert!(pool.is_empty());
}

/// A small deterministic generator (xorshift), so a failing sequence replays exactly.
struct Dice(u64);

impl Dice {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[test]
fn hostile_sequences_keep_every_cap_and_never_reap_a_gapped_transaction() {
    let chain = chain();
    let config = MempoolConfig {
        max_txs: 40,
        max_bytes: 300 * 1024,
        max_per_account: 12,
        max_nonce_ahead: 10,
        max_queued: 15,
        max_queued_bytes: 100 * 1024,
        max_queued_per_account: 6,
        queued_expiry: Duration::from_secs(60),
    };
    let mut pool = Mempool::new(chain_id(), config);
    let mut dice = Dice(0x5eed_1234_abcd_0001);
    let mut now = 0;
    let senders = [10u8, 11, 13, 14];
    let (mut refused_ready, mut evicted_for_ready, mut swept) = (0, 0, true);
    for step in 0..1_500u64 {
        let action = dice.below(20);
        match action {
            0..=13 => {
                let sender = senders[dice.below(4) as usize];
                let address = Address::of(&key(sender).public_key());
                let next = read_account(chain.store.as_ref(), &address).expect("account").nonce;
                // Half the time the nonce that extends the account's run, so ready
                // transactions fill the pool too; else anywhere in the window and past it.
                let run_end = pool.accounts.get(&address).and_then(Account::run_end).unwrap_or(next);
                let nonce = if dice.below(2) == 0 { run_end } else { next + dice.below(13) };
                let transaction = if sender >= 13 {
                    let value = vec![step as u8; dice.below(32 * 1024) as usize];
                    let payload = Payload::PutRecord { key: step.to_be_bytes().to_vec(), value };
                    Transaction { chain_id: chain_id(), signer: key(sender).public_key(), nonce, payload }
                        .sign(&key(sender))
                } else {
                    transfer(sender, nonce)
                };
                let size = transaction.encoded_len();
                let account = pool.accounts.get(&address);
                let ready = account.map_or(Some(next), Account::run_end) == Some(nonce);
                let (pending, queued) = account.map_or((0, 0), |account| (account.nonces.len(), account.queued()));
                let (ready_txs, ready_bytes) = (pool.len() - pool.queued(), pool.bytes() - pool.queued_bytes());
                let before = pool.len();
                let verdict = admit_at(&mut pool, &chain, &[transaction], at(now)).remove(0);
                if matches!(verdict, Ok(Admitted::Ready(_))) && pool.len() <= before {
                    evicted_for_ready += 1;
                }
                match &verdict {
                    Ok(admitted) => assert_eq!(admitted.is_ready(), ready, "step {step}"),
                    // A transaction that can execute is refused for a cap only if the ready
                    // transactions alone reach it: gapped ones would have been evicted.
                    Err(AdmitError::Full("this account has too many pending transactions")) if ready => {
                        assert!(pending - queued >= config.max_per_account, "step {step}: {verdict:?}");
                        refused_ready += 1;
                    }
                    Err(AdmitError::Full(_)) if ready => {
                        assert!(
                            ready_txs >= config.max_txs || ready_bytes + size > config.max_bytes,
                            "step {step}: a ready transaction refused while gapped ones could go: {verdict:?}"
                        );
                        refused_ready += 1;
                    }
                    Err(AdmitError::QueueFull { .. }) => assert!(!ready, "step {step}"),
                    Err(_) => {}
                }
            }
            14..=15 => {
                now += dice.below(40);
                swept = false;
            }
            16 => {
                pool.expire(at(now));
            }
            17 => {
                for encoded in pool.take_promoted() {
                    assert!(pool.contains(&Digest::of(&encoded)), "step {step}: promoted but gone");
                }
            }
            18 => {
                let limit = 1 + dice.below(30) as usize;
                let block = pool.reap(chain.store.as_ref(), limit, 8 * 1024 * 1024).expect("reap");
                assert!(block.len() <= limit);
                // Every reaped transaction is its account's next nonce in turn.
                let mut next: HashMap<Address, u64> = HashMap::new();
                for tx in &block {
                    let sender = tx.transaction.sender();
                    let expected = *next
                        .entry(sender)
                        .or_insert_with(|| read_account(chain.store.as_ref(), &sender).expect("account").nonce);
                    assert_eq!(tx.transaction.nonce, expected, "step {step}: reaped a gapped transaction");
                    next.insert(sender, expected + 1);
                }
                chain.commit(block);
                pool.prune(chain.store.as_ref()).expect("prune");
            }
            _ => {
                // Another node's transaction takes an account's next nonce (closing a gap here,
                // or replacing a pending transaction with that nonce).
                let sender = senders[dice.below(2) as usize];
                let address = Address::of(&key(sender).public_key());
                let nonce = read_account(chain.store.as_ref(), &address).expect("account").nonce;
                let payload = Payload::Transfer { to: Address([8; 20]), amount: 2 };
                chain.commit(vec![
                    Transaction { chain_id: chain_id(), signer: key(sender).public_key(), nonce, payload }
                        .sign(&key(sender)),
                ]);
                pool.prune(chain.store.as_ref()).expect("prune");
            }
        }
        assert_consistent(&pool);
        assert!(pool.len() <= config.max_txs && pool.bytes() <= config.max_bytes, "step {step}");
        assert!(pool.queued() <= config.max_queued && pool.queued_bytes() <= config.max_queued_bytes, "step {step}");
        for account in pool.accounts.values() {
            assert!(account.nonces.len() <= config.max_per_account, "step {step}");
            assert!(account.queued() <= config.max_queued_per_account, "step {step}");
        }
        // Once admission or `expire` ran at `now`, nothing expired is left.
        swept |= action <= 13 || action == 16;
        if swept && let Some((&(oldest, _), _)) = pool.queue.first_key_value() {
            assert!(at(now).saturating_duration_since(oldest) < config.queued_expiry, "step {step}");
        }
    }
    assert!(
        refused_ready > 0 && evicted_for_ready > 0,
        "the sequence never filled the pool ({refused_ready} refused, {evicted_for_ready} evictions): it tests less \
         than it claims"
    );
}

/// The mempool as the node shares it: admission by origin, the relay outbox, the driver's wake-up
/// and its pruning after a block.
mod shared {
    use std::{cell::RefCell, rc::Rc, sync::Arc};

    use futures::FutureExt;

    use super::*;
    use crate::{
        mempool::{
            MempoolHandle, Origin,
            admission::{CheckedGossip, admit_gossip},
        },
        metrics::Metrics,
        p2p::{MessageAcceptance, MessageId},
        sim::network::{Outgoing, SimNetwork},
    };

    fn handle(chain: &Chain) -> MempoolHandle<MemStore> {
        MempoolHandle::new(chain_id(), MempoolConfig::default(), chain.store.clone(), Arc::new(Metrics::default()))
    }

    fn admit(
        handle: &MempoolHandle<MemStore>,
        origin: Origin,
        txs: &[SignedTransaction],
    ) -> Vec<Result<Admitted, AdmitError>> {
        let checked = handle.precheck(txs.iter().map(SignedTransaction::encode).collect());
        handle.admit(origin, checked, at(0))
    }

    fn woken(handle: &MempoolHandle<MemStore>) -> bool {
        handle.changed().now_or_never().is_some()
    }

    #[test]
    fn a_client_transaction_is_relayed_a_peer_one_is_not_and_either_wakes_the_driver() {
        let chain = chain();
        let handle = handle(&chain);
        assert!(!woken(&handle), "nothing happened yet");

        let client = transfer(10, 0);
        assert_eq!(
            admit(&handle, Origin::Client, std::slice::from_ref(&client)),
            vec![Ok(Admitted::Ready(client.hash()))]
        );
        assert!(woken(&handle), "a block could carry it now");
        assert_eq!(handle.take_outbox(), vec![client.encode()], "this node gossips its client's transaction");

        // Gossipsub forwards a peer's message itself: the transaction is not gossiped again.
        let gossiped = transfer(11, 0);
        assert!(admit(&handle, Origin::Peer, std::slice::from_ref(&gossiped))[0].is_ok());
        assert!(woken(&handle), "a peer's ready transaction is work too");
        assert_eq!(handle.outbox_len(), 0);

        // Behind a gap: neither work nor gossip, until the gap closes.
        let gapped = transfer(10, 2);
        assert_eq!(
            admit(&handle, Origin::Client, std::slice::from_ref(&gapped)),
            vec![Ok(Admitted::Queued(gapped.hash()))]
        );
        assert!(!woken(&handle), "a queued transaction is no work");
        assert_eq!(handle.outbox_len(), 0, "a queued transaction is not gossiped");
        let filler = transfer(10, 1);
        assert!(admit(&handle, Origin::Peer, std::slice::from_ref(&filler))[0].is_ok());
        assert_eq!(handle.take_outbox(), vec![gapped.encode()], "the released one spreads, the peer's does not");
        assert_eq!(handle.size().0, 4);
        assert!(handle.contains(&gapped.hash()));
    }

    #[test]
    fn after_a_block_the_driver_prunes_what_it_used_and_relays_what_it_released() {
        let chain = chain();
        let handle = handle(&chain);
        let (first, second, third) = (transfer(10, 0), transfer(10, 1), transfer(10, 3));
        assert!(
            admit(&handle, Origin::Peer, &[first.clone(), second.clone(), third.clone()]).iter().all(Result::is_ok)
        );
        assert!(handle.has_ready().expect("read"));
        assert_eq!(handle.reap(100, usize::MAX).expect("reap"), vec![first.clone(), second.clone()]);

        // Another node's block used nonces 0 to 2 (nonce 2 never reached this node).
        chain.commit(vec![first, second, transfer(10, 2)]);
        assert_eq!(handle.after_commit(at(1)).expect("prune"), 2);
        assert_eq!(handle.size().0, 1);
        assert_eq!(handle.take_outbox(), vec![third.encode()], "the block closed its gap: peers should hear of it");
        assert!(handle.has_ready().expect("read"));
    }

    #[test]
    fn a_gossip_message_is_forwarded_only_if_it_brought_work_and_rejected_only_for_the_senders_fault() {
        let chain = chain();
        let handle = handle(&chain);
        let outbox = Rc::new(RefCell::new(Vec::new()));
        let network =
            SimNetwork { peer_id: libp2p::PeerId::random(), max_message_bytes: 1 << 20, outbox: outbox.clone() };
        let source = libp2p::PeerId::random();
        let gossip = |txs: &[SignedTransaction]| CheckedGossip {
            id: MessageId::new(b"id"),
            source,
            transactions: Some(handle.precheck(txs.iter().map(SignedTransaction::encode).collect())),
        };
        let mut forged = transfer(11, 0);
        forged.signature = transfer(11, 1).signature;
        let cases = [
            (gossip(&[transfer(10, 0)]), MessageAcceptance::Accept),
            (gossip(&[transfer(10, 5)]), MessageAcceptance::Ignore),
            (gossip(&[transfer(10, 1), forged]), MessageAcceptance::Reject),
            (CheckedGossip { id: MessageId::new(b"id"), source, transactions: None }, MessageAcceptance::Reject),
        ];
        for (gossip, expected) in cases {
            assert_eq!(admit_gossip(&handle, &network, gossip, at(0)), expected);
            let reported = outbox.borrow_mut().pop();
            assert!(
                matches!(reported, Some(Outgoing::Validated(peer, acceptance)) if peer == source && acceptance == expected),
                "the network is told the verdict: {reported:?}"
            );
        }
        // A valid transaction in a message with a forged one is still admitted.
        assert!(handle.contains(&transfer(10, 1).hash()));
        assert_eq!(handle.outbox_len(), 0, "gossiped transactions are not gossiped again");
    }
}
