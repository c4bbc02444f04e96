//! Pending transactions: admission with back-pressure, and reaping for proposals.
//!
//! Admission checks everything that can be checked before execution (decoding, size, chain,
//! signature, the signer's role, its nonce window, duplicates) and enforces caps by count and by
//! bytes, per account and in all, so the pool never grows without bound. Transactions waiting
//! behind a nonce gap (not executable until the gap is filled) have their own, smaller cap, so a
//! flood of future nonces cannot fill the pool with work that never leaves it. Reaping hands a
//! leader each account's transactions in nonce order, accounts taking turns.

use std::collections::{BTreeMap, HashMap, HashSet};

use consensus::{ChainId, Digest, PublicKey, Signature, verify_batch};
use ledger::{
    Address, Params, Role, SignedTransaction, StateReader, StoreError, TxError,
    state::{read_account, read_params},
};
use rayon::prelude::*;

use crate::verified::VerifiedCache;

/// Limits of the pool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most bytes of encoded transactions held.
    pub max_bytes: usize,
    /// Most transactions held for one account.
    pub max_per_account: usize,
    /// Highest nonce accepted, relative to the account's next nonce.
    pub max_nonce_ahead: u64,
    /// Most transactions held behind a nonce gap, in all (part of `max_txs`).
    pub max_queued: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 100_000,
            max_bytes: 64 * 1024 * 1024,
            max_per_account: 1_000,
            max_nonce_ahead: 1_000,
            max_queued: 10_000,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum AdmitError {
    /// Undecodable, too large, for another chain, a bad field or a bad signature.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The signer lacks the role the payload needs.
    #[error("permission denied: the signer lacks the {0} role")]
    PermissionDenied(Role),
    /// The nonce was already used.
    #[error("nonce {found} is too low: the account's next nonce is {expected}")]
    NonceTooLow {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        found: u64,
    },
    /// The nonce is further ahead than the pool keeps.
    #[error("nonce {found} is too high: at most {max} is accepted now")]
    NonceTooHigh {
        /// Highest nonce accepted now.
        max: u64,
        /// The transaction's nonce.
        found: u64,
    },
    /// The same transaction is already pending.
    #[error("transaction {0} is already pending")]
    Duplicate(Digest),
    /// Another transaction with this account and nonce is pending.
    #[error("another transaction with nonce {0} is pending for this account")]
    NonceTaken(u64),
    /// The pool is at a limit; try again after the next block.
    #[error("mempool full: {0}")]
    Full(&'static str),
    /// Reading the state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Entry {
    transaction: SignedTransaction,
    size: usize,
    sender: Address,
}

/// The pending transactions of one node.
pub struct Mempool {
    config: MempoolConfig,
    chain_id: ChainId,
    entries: HashMap<Digest, Entry>,
    /// Per account, pending nonces in order, and the arrival number of its first transaction
    /// (accounts take turns in arrival order when reaping).
    accounts: HashMap<Address, (u64, BTreeMap<u64, Digest>)>,
    bytes: usize,
    arrivals: u64,
    /// Per account: the next nonce its run was measured from, the length of its run of
    /// consecutive pending nonces from there (executable now), and how many of its pending
    /// transactions are not in the run (counted in `queued`).
    runs: HashMap<Address, Run>,
    /// Transactions pending behind a nonce gap, in all.
    queued: usize,
}

#[derive(Clone, Copy, Default)]
struct Run {
    next: u64,
    length: usize,
    queued: usize,
}

/// How many of `nonces` follow `next` without a gap.
fn run_length(nonces: &BTreeMap<u64, Digest>, next: u64) -> usize {
    nonces.range(next..).zip(next..).take_while(|((nonce, _), want)| **nonce == *want).count()
}

impl Mempool {
    /// An empty pool for a chain.
    pub fn new(chain_id: ChainId, config: MempoolConfig) -> Self {
        Mempool {
            config,
            chain_id,
            entries: HashMap::new(),
            accounts: HashMap::new(),
            bytes: 0,
            arrivals: 0,
            runs: HashMap::new(),
            queued: 0,
        }
    }

    /// Transactions pending behind a nonce gap.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// `sender`'s run measured from `next` (remeasured if the account moved since), with
    /// `queued` kept in step.
    fn run(&mut self, sender: &Address, next: u64) -> Run {
        let cached = self.runs.get(sender).copied().unwrap_or(Run { next, ..Run::default() });
        if cached.next == next {
            return cached;
        }
        let nonces = self.accounts.get(sender).map(|(_, nonces)| nonces);
        let length = nonces.map_or(0, |nonces| run_length(nonces, next));
        let run = Run { next, length, queued: nonces.map_or(0, BTreeMap::len) - length };
        self.queued = self.queued - cached.queued + run.queued;
        self.runs.insert(*sender, run);
        run
    }

    /// Transactions pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of encoded transactions pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a transaction is pending.
    pub fn contains(&self, hash: &Digest) -> bool {
        self.entries.contains_key(hash)
    }

    /// Admits a batch of encoded transactions (from clients or peers), verifying their
    /// signatures in batches; returns one verdict per transaction, in order. The node checks
    /// off the driver's thread with [`precheck`] and admits with [`Mempool::admit_prechecked`];
    /// this is both in one call.
    pub fn admit_batch(&mut self, state: &impl StateReader, encoded: &[Vec<u8>]) -> Vec<Result<Digest, AdmitError>> {
        let checked = match read_params(state) {
            Ok(params) => precheck(&self.chain_id, &params, encoded.to_vec(), &VerifiedCache::new(0)),
            Err(error) => return encoded.iter().map(|_| Err(AdmitError::Store(error.clone()))).collect(),
        };
        self.admit_prechecked(state, checked)
    }

    /// Admits transactions that passed [`precheck`]: the checks that need the state (role,
    /// nonce window, duplicates) and the caps. One verdict per entry, in order; a precheck
    /// failure is passed through.
    pub fn admit_prechecked(
        &mut self,
        state: &impl StateReader,
        checked: Vec<Result<Prechecked, AdmitError>>,
    ) -> Vec<Result<Digest, AdmitError>> {
        checked.into_iter().map(|result| self.insert(state, result?)).collect()
    }

    fn insert(&mut self, state: &impl StateReader, checked: Prechecked) -> Result<Digest, AdmitError> {
        let Prechecked { transaction, hash, size, .. } = checked;
        if self.entries.contains_key(&hash) {
            return Err(AdmitError::Duplicate(hash));
        }
        let sender = transaction.transaction.sender();
        let account = read_account(state, &sender)?;
        let required = transaction.transaction.payload.required_role();
        if !account.roles.contains(required) {
            return Err(AdmitError::PermissionDenied(required));
        }
        let nonce = transaction.transaction.nonce;
        if nonce < account.nonce {
            return Err(AdmitError::NonceTooLow { expected: account.nonce, found: nonce });
        }
        let max = account.nonce.saturating_add(self.config.max_nonce_ahead);
        if nonce > max {
            return Err(AdmitError::NonceTooHigh { max, found: nonce });
        }
        let pending = self.accounts.get(&sender).map(|(_, nonces)| nonces);
        if pending.is_some_and(|nonces| nonces.contains_key(&nonce)) {
            return Err(AdmitError::NonceTaken(nonce));
        }
        if pending.map_or(0, BTreeMap::len) >= self.config.max_per_account {
            return Err(AdmitError::Full("this account has too many pending transactions"));
        }
        let run = self.run(&sender, account.nonce);
        // Not the account's next executable nonce: it waits behind a gap.
        let gapped = nonce > account.nonce.saturating_add(run.length as u64);
        if gapped && self.queued >= self.config.max_queued {
            return Err(AdmitError::Full("too many transactions waiting behind a nonce gap"));
        }
        if self.entries.len() >= self.config.max_txs {
            return Err(AdmitError::Full("too many pending transactions"));
        }
        if self.bytes + size > self.config.max_bytes {
            return Err(AdmitError::Full("too many pending bytes"));
        }
        self.arrivals += 1;
        let arrival = self.arrivals;
        let nonces = &mut self.accounts.entry(sender).or_insert_with(|| (arrival, BTreeMap::new())).1;
        nonces.insert(nonce, hash);
        // Filling the gap at the run's end may join the transactions queued behind it.
        let length = if gapped { run.length } else { run_length(nonces, account.nonce) };
        let updated = Run { next: account.nonce, length, queued: nonces.len() - length };
        self.queued = self.queued - run.queued + updated.queued;
        self.runs.insert(sender, updated);
        self.bytes += size;
        self.entries.insert(hash, Entry { transaction, size, sender });
        Ok(hash)
    }

    /// Whether some account's next nonce is pending, so a block would carry a transaction
    /// (transactions waiting behind a nonce gap are not work).
    pub fn has_ready(&self, state: &impl StateReader) -> Result<bool, StoreError> {
        for (address, (_, nonces)) in &self.accounts {
            if nonces.contains_key(&read_account(state, address)?.nonce) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Transactions for the next block: each account's pending transactions from its next nonce
    /// on, without gaps, accounts taking turns in arrival order, up to the limits.
    pub fn reap(
        &self,
        state: &impl StateReader,
        max_txs: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedTransaction>, StoreError> {
        let mut queues = Vec::with_capacity(self.accounts.len());
        for (address, (arrival, nonces)) in &self.accounts {
            let next = read_account(state, address)?.nonce;
            let ready: Vec<&Digest> = nonces
                .range(next..)
                .zip(next..)
                .take_while(|((nonce, _), want)| *nonce == want)
                .map(|((_, h), _)| h)
                .collect();
            if !ready.is_empty() {
                queues.push((*arrival, ready.into_iter()));
            }
        }
        queues.sort_by_key(|(arrival, _)| *arrival);
        let (mut reaped, mut bytes) = (Vec::new(), 0);
        'rounds: while !queues.is_empty() {
            let mut index = 0;
            while index < queues.len() {
                let Some(hash) = queues[index].1.next() else {
                    queues.remove(index);
                    continue;
                };
                let entry = &self.entries[hash];
                if reaped.len() == max_txs || bytes + entry.size > max_bytes {
                    break 'rounds;
                }
                bytes += entry.size;
                reaped.push(entry.transaction.clone());
                index += 1;
            }
        }
        Ok(reaped)
    }

    /// After a block: drops what it committed (nonces now used) and what can no longer
    /// execute (the signer lost the role). Returns how many were dropped.
    pub fn prune(&mut self, state: &impl StateReader) -> Result<usize, StoreError> {
        let mut dropped = Vec::new();
        let mut next_nonces = Vec::with_capacity(self.accounts.len());
        for (address, (_, nonces)) in &self.accounts {
            let account = read_account(state, address)?;
            next_nonces.push((*address, account.nonce));
            for (nonce, hash) in nonces {
                let role = self.entries[hash].transaction.transaction.payload.required_role();
                if *nonce < account.nonce || !account.roles.contains(role) {
                    dropped.push(*hash);
                }
            }
        }
        for hash in &dropped {
            if let Some(entry) = self.entries.remove(hash) {
                self.bytes -= entry.size;
                if let Some((_, nonces)) = self.accounts.get_mut(&entry.sender) {
                    nonces.remove(&entry.transaction.transaction.nonce);
                    if nonces.is_empty() {
                        self.accounts.remove(&entry.sender);
                    }
                }
            }
        }
        // Blocks moved the accounts' nonces: measure every run again.
        self.runs.clear();
        self.queued = 0;
        for (address, next) in next_nonces {
            if let Some((_, nonces)) = self.accounts.get(&address) {
                let length = run_length(nonces, next);
                let run = Run { next, length, queued: nonces.len() - length };
                self.queued += run.queued;
                self.runs.insert(address, run);
            }
        }
        Ok(dropped.len())
    }
}

/// A transaction that passed every check that needs no state: it decodes, fits the size
/// limits, is for this chain, and its signature verifies. Only [`precheck`] makes one.
pub struct Prechecked {
    transaction: SignedTransaction,
    hash: Digest,
    size: usize,
    encoded: Vec<u8>,
}

impl Prechecked {
    /// The bytes it arrived as (what the node gossips on).
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Its hash.
    pub fn hash(&self) -> Digest {
        self.hash
    }
}

/// Transactions per signature batch (ed25519 batch verification gains little past this).
const SIGNATURE_CHUNK: usize = 256;

/// Decodes and checks encoded transactions without the state: one verdict per transaction, in
/// order. Signatures `verified` does not already vouch for are verified in batches of
/// [`SIGNATURE_CHUNK`] spread over rayon's threads (one bad signature costs only its own batch a
/// second, one-by-one pass), and recorded there. CPU-bound: the node runs it off the driver's
/// thread.
pub fn precheck(
    chain_id: &ChainId,
    params: &Params,
    encoded: Vec<Vec<u8>>,
    verified: &VerifiedCache,
) -> Vec<Result<Prechecked, AdmitError>> {
    let decoded: Vec<Result<Prechecked, AdmitError>> = encoded
        .into_par_iter()
        .map(|bytes| {
            let transaction = SignedTransaction::decode(&bytes, params.max_tx_bytes as usize)?;
            let size = transaction.check_stateless(chain_id, params)?;
            let hash = transaction.hash();
            Ok(Prechecked { transaction, hash, size, encoded: bytes })
        })
        .collect();
    let candidates: Vec<&Prechecked> = {
        let known = verified.read();
        decoded.iter().filter_map(|result| result.as_ref().ok()).filter(|tx| !known.contains(&tx.hash)).collect()
    };
    let signatures_ok: Vec<bool> = candidates.par_chunks(SIGNATURE_CHUNK).flat_map_iter(signature_verdicts).collect();
    verified.insert_all(candidates.iter().zip(&signatures_ok).filter(|(_, ok)| **ok).map(|(tx, _)| tx.hash));
    let bad: HashSet<Digest> =
        candidates.iter().zip(&signatures_ok).filter(|(_, ok)| !**ok).map(|(tx, _)| tx.hash).collect();
    decoded
        .into_iter()
        .map(|result| {
            let checked = result?;
            if bad.contains(&checked.hash) {
                return Err(AdmitError::Invalid(TxError::BadSignature));
            }
            Ok(checked)
        })
        .collect()
}

/// One verdict per transaction: a batch check, and one by one only if the batch fails.
fn signature_verdicts(transactions: &[&Prechecked]) -> Vec<bool> {
    let messages: Vec<Vec<u8>> = transactions.iter().map(|tx| tx.transaction.transaction.signing_bytes()).collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let signatures: Vec<Signature> = transactions.iter().map(|tx| tx.transaction.signature).collect();
    let keys: Vec<PublicKey> = transactions.iter().map(|tx| tx.transaction.transaction.signer).collect();
    if verify_batch(&message_refs, &signatures, &keys).is_ok() {
        return vec![true; transactions.len()];
    }
    transactions.iter().map(|tx| tx.transaction.verify_signature().is_ok()).collect()
}

#[cfg(test)]
#[path = "mempool_test.rs"]
mod tests;
