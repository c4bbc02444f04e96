use consensus::{CommitCertificate, SigningKey};
use ledger::{
    BlockReader, BlockWriter, Genesis, GenesisAccount, MemStore, Params, Payload, Transaction, ValidatorInfo,
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
    store: MemStore,
    validators: Vec<SigningKey>,
}

/// Validators 1..=4; accounts 10 and 11 may transact, 12 holds a balance but no role.
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
        ],
        params: Params::default(),
    };
    Chain { store: MemStore::new(&genesis).expect("store"), validators }
}

impl Chain {
    fn commit(&self, transactions: Vec<SignedTransaction>) {
        let head = self.store.head().expect("head");
        let (block, execution) =
            build_block(&self.store, &head, self.validators[0].public_key(), head.timestamp_ms + 1, transactions)
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

fn admit(pool: &mut Mempool, chain: &Chain, transactions: &[SignedTransaction]) -> Vec<Result<Digest, AdmitError>> {
    let encoded: Vec<Vec<u8>> = transactions.iter().map(SignedTransaction::encode).collect();
    pool.admit_batch(&chain.store, &encoded)
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

    let garbage = pool.admit_batch(&chain.store, &[vec![1, 2, 3], vec![0; 70_000]]);
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
    assert_eq!(verdicts[2], Err(AdmitError::Full("too many transactions waiting behind a nonce gap")));
    assert_eq!(pool.queued(), 2);
    // A flood of future nonces never blocks executable transactions.
    assert!(admit(&mut pool, &chain, &(0..10).map(|n| transfer(11, n)).collect::<Vec<_>>()).iter().all(Result::is_ok));
    assert_eq!(
        admit(&mut pool, &chain, &[transfer(11, 12)])[0],
        Err(AdmitError::Full("too many transactions waiting behind a nonce gap"))
    );
    // Filling the gap joins 3 and 4 to the run: nothing waits, and there is room again.
    assert!(admit(&mut pool, &chain, &[transfer(10, 0), transfer(10, 1)]).iter().all(Result::is_ok));
    assert_eq!(pool.queued(), 2, "10's nonce 2 is still missing: 3 and 4 still wait");
    assert!(admit(&mut pool, &chain, &[transfer(10, 2)])[0].is_ok());
    assert_eq!(pool.queued(), 0);
    assert!(admit(&mut pool, &chain, &[transfer(11, 12)])[0].is_ok());
    assert_eq!(pool.queued(), 1);

    // A committed block moves the nonces: prune measures every run again.
    let block: Vec<SignedTransaction> = pool.reap(&chain.store, 100, usize::MAX).expect("reap");
    assert_eq!(block.len(), 15, "10's 0..=4 and 11's 0..=9; 11's 12 waits for 10 and 11");
    chain.commit(block);
    pool.prune(&chain.store).expect("prune");
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
    let reaped = pool.reap(&chain.store, 100, usize::MAX).expect("reap");
    let order: Vec<(u8, u64)> = reaped
        .iter()
        .map(|tx| (if tx.transaction.signer == key(10).public_key() { 10 } else { 11 }, tx.transaction.nonce))
        .collect();
    assert_eq!(order, vec![(10, 0), (11, 0), (10, 1), (11, 1), (10, 2)], "nonce 5 waits for 3 and 4");
    assert_eq!(pool.reap(&chain.store, 3, usize::MAX).expect("reap").len(), 3);
    let one = transfer(10, 0).encoded_len();
    assert_eq!(pool.reap(&chain.store, 100, 2 * one + 1).expect("reap").len(), 2);

    // The reaped transactions execute as a block; pruning drops exactly those.
    chain.commit(reaped);
    assert_eq!(pool.prune(&chain.store).expect("prune"), 5);
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.reap(&chain.store, 100, usize::MAX).expect("reap"), vec![], "nonce 5 still waits");
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
    assert_eq!(pool.prune(&chain.store).expect("prune"), 2);
    assert!(pool.is_empty());
    assert_eq!(pool.bytes(), 0);
}

#[test]
fn transactions_behind_a_nonce_gap_are_not_ready() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig::default());
    assert!(!pool.has_ready(&chain.store).expect("read"));
    admit(&mut pool, &chain, &[transfer(10, 1), transfer(11, 3)]).into_iter().for_each(|v| {
        v.expect("admitted");
    });
    // Pending, but neither account's next nonce (0) is there: no block would carry them.
    assert!(!pool.is_empty());
    assert!(!pool.has_ready(&chain.store).expect("read"));
    admit(&mut pool, &chain, &[transfer(10, 0)]).into_iter().for_each(|v| {
        v.expect("admitted");
    });
    assert!(pool.has_ready(&chain.store).expect("read"));
}

#[test]
fn one_bad_signature_among_many_batches_refuses_only_that_transaction() {
    let chain = chain();
    let mut pool = Mempool::new(chain_id(), MempoolConfig::default());
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
    let verdicts = pool.admit_prechecked(&chain.store, checked);
    for (index, (verdict, hash)) in verdicts.iter().zip(hashes).enumerate() {
        match hash {
            Some(hash) => assert_eq!(verdict, &Ok(hash), "transaction {index}"),
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
