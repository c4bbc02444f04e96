//! Pending transactions: admission with back-pressure, and reaping for proposals.
//!
//! Admission checks everything that can be checked before execution (decoding, size, chain,
//! signature, the signer's role, its nonce window, duplicates) and enforces caps by count and by
//! bytes, per account and in all, so the pool never grows without bound.
//!
//! A transaction is *ready* when its nonce is its account's next one or follows the account's
//! pending run without a gap (a block can take it), and *queued* when a nonce gap lies before it.
//! Queued transactions cannot execute until someone fills the gap, so nothing bounds how long
//! they would stay: they have their own caps (by count, by bytes, per account) inside the pool's,
//! expire [`MempoolConfig::queued_expiry`] after admission, are evicted (oldest first) to make room
//! for a ready transaction rather than refuse it, and are not gossiped ([`Admitted::Queued`]):
//! only ready transactions spread, and a queued one spreads once its gap closes
//! ([`Mempool::take_promoted`]). Reaping hands a leader each account's ready transactions in
//! nonce order, accounts taking turns.
//!
//! Time is an input (`now`), so tests drive expiry without sleeping.
//!
//! [`Mempool`] is the pool itself, single-threaded. The node shares it through a
//! [`MempoolHandle`]: clients and peers admit through [`admission`] on their own tasks, and the
//! consensus driver only reaps, asks whether there is work, and prunes.

pub mod admission;
mod handle;

pub use handle::{MempoolHandle, Origin};

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};

use consensus::{ChainId, Digest, PublicKey, Signature, verify_batch};
use ledger::{
    Address, AdmitError, Params, QueueLimit, SignedTransaction, StateReader, StoreError, TxError,
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
    /// Most bytes of transactions held behind a nonce gap, in all (part of `max_bytes`).
    pub max_queued_bytes: usize,
    /// Most transactions held behind a nonce gap for one account (part of `max_per_account`).
    pub max_queued_per_account: usize,
    /// How long after its admission a transaction still behind a nonce gap is dropped.
    pub queued_expiry: Duration,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        let max_bytes = 64 * 1024 * 1024;
        MempoolConfig {
            max_txs: 100_000,
            max_bytes,
            max_per_account: 1_000,
            max_nonce_ahead: 1_000,
            max_queued: 10_000,
            // A sixteenth: enough for clients whose submissions arrive out of order, too little
            // for a few accounts to crowd out the transactions that can execute.
            max_queued_bytes: max_bytes / 16,
            // Room for a client that spreads one account's burst over several nodes: each node
            // holds what it got until gossip brings the nonces before it (the byte budget, not
            // this count, is what bounds a flood of large transactions).
            max_queued_per_account: 512,
            queued_expiry: Duration::from_secs(60),
        }
    }
}

/// An admitted transaction: whether it can execute now decides whether it is gossiped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Its nonce is the account's next or follows its pending run: a block can take it, so peers
    /// should hear of it.
    Ready(Digest),
    /// It waits behind a nonce gap: held here only (not gossiped) until the gap closes, when
    /// [`Mempool::take_promoted`] hands it out for gossip; dropped if it expires first.
    Queued(Digest),
}

impl Admitted {
    /// The transaction's hash.
    pub fn hash(&self) -> Digest {
        match self {
            Admitted::Ready(hash) | Admitted::Queued(hash) => *hash,
        }
    }

    /// Whether it can execute now (and is to be gossiped).
    pub fn is_ready(&self) -> bool {
        matches!(self, Admitted::Ready(_))
    }
}

/// When a transaction was admitted, with its admission number to break ties: it orders the
/// queued transactions for expiry and eviction.
type Admission = (Instant, u64);

struct Entry {
    transaction: SignedTransaction,
    size: usize,
    sender: Address,
    admission: Admission,
    /// Behind a nonce gap (counted in `queued`, `queued_bytes` and the `queue` index).
    queued: bool,
}

/// One account's pending transactions.
struct Account {
    /// Its admission number when it arrived (accounts take turns in this order when reaping).
    arrival: u64,
    /// Its next nonce as last read from the state; every pending nonce is at least this.
    next: u64,
    /// Pending transactions by nonce.
    nonces: BTreeMap<u64, Digest>,
    /// How many pending nonces follow `next` without a gap: these are ready, the rest queued.
    ready: usize,
}

impl Account {
    /// The nonce that would extend the ready run (`None` past `u64::MAX`).
    fn run_end(&self) -> Option<u64> {
        self.next.checked_add(self.ready as u64)
    }

    fn queued(&self) -> usize {
        self.nonces.len() - self.ready
    }
}

/// The hashes of the pending nonces that follow `next` without a gap, in nonce order.
fn ready_run(nonces: &BTreeMap<u64, Digest>, next: u64) -> impl Iterator<Item = &Digest> {
    let mut want = Some(next);
    nonces.range(next..).map_while(move |(nonce, hash)| {
        // Checked: a run ending at u64::MAX must not overflow.
        (want == Some(*nonce)).then(|| {
            want = nonce.checked_add(1);
            hash
        })
    })
}

/// The pending transactions of one node.
///
/// Invariants: every entry is in its account's `nonces` and vice versa; an entry is queued
/// exactly when it is not in its account's ready run; `queued`, `queued_bytes` and `queue` cover
/// exactly the queued entries; `promoted` holds only ready entries.
pub struct Mempool {
    config: MempoolConfig,
    chain_id: ChainId,
    entries: HashMap<Digest, Entry>,
    accounts: HashMap<Address, Account>,
    bytes: usize,
    admissions: u64,
    /// Transactions behind a nonce gap, oldest admission first (expiry and eviction order).
    queue: BTreeMap<Admission, Digest>,
    queued: usize,
    queued_bytes: usize,
    /// Transactions that moved from queued to ready since [`Mempool::take_promoted`] last ran.
    promoted: HashSet<Digest>,
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
            admissions: 0,
            queue: BTreeMap::new(),
            queued: 0,
            queued_bytes: 0,
            promoted: HashSet::new(),
        }
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

    /// Transactions pending behind a nonce gap.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Bytes of the transactions pending behind a nonce gap.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Whether a transaction is pending.
    pub fn contains(&self, hash: &Digest) -> bool {
        self.entries.contains_key(hash)
    }

    /// Admits a batch of encoded transactions (from clients or peers) at `now`, verifying their
    /// signatures in batches; returns one verdict per transaction, in order. The node checks
    /// off the driver's thread with [`precheck`] and admits with [`Mempool::admit_prechecked`];
    /// this is both in one call.
    pub fn admit_batch(
        &mut self,
        state: &impl StateReader,
        encoded: &[Vec<u8>],
        now: Instant,
    ) -> Vec<Result<Admitted, AdmitError>> {
        let checked = match read_params(state) {
            Ok(params) => precheck(&self.chain_id, &params, encoded.to_vec(), &VerifiedCache::new(0)),
            Err(error) => return encoded.iter().map(|_| Err(AdmitError::Store(error.clone()))).collect(),
        };
        self.admit_prechecked(state, checked, now)
    }

    /// Admits transactions that passed [`precheck`] at `now`: the checks that need the state
    /// (role, nonce window, duplicates) and the caps, after dropping the queued transactions
    /// that expired by `now`. One verdict per entry, in order; a precheck failure is passed
    /// through. Gossip only the [`Admitted::Ready`] ones, then [`Mempool::take_promoted`].
    pub fn admit_prechecked(
        &mut self,
        state: &impl StateReader,
        checked: Vec<Result<Prechecked, AdmitError>>,
        now: Instant,
    ) -> Vec<Result<Admitted, AdmitError>> {
        self.expire(now);
        checked.into_iter().map(|result| self.insert(state, result?, now)).collect()
    }

    fn insert(&mut self, state: &impl StateReader, checked: Prechecked, now: Instant) -> Result<Admitted, AdmitError> {
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
        // A block moved the account's nonce since it was measured (not pruned yet): measure again.
        if self.accounts.get(&sender).is_some_and(|pending| pending.next != account.nonce) {
            self.measure(&sender, account.nonce);
        }
        let (pending, queued, run_end) = match self.accounts.get(&sender) {
            Some(pending) if pending.nonces.contains_key(&nonce) => return Err(AdmitError::NonceTaken(nonce)),
            Some(pending) => (pending.nonces.len(), pending.queued(), pending.run_end()),
            None => (0, 0, Some(account.nonce)),
        };
        let ready = run_end == Some(nonce);
        if ready {
            self.make_room(&sender, pending, queued, size)?;
        } else {
            let refuse = |limit| AdmitError::QueueFull { next: run_end.unwrap_or(u64::MAX), found: nonce, limit };
            if pending >= self.config.max_per_account {
                return Err(AdmitError::Full("this account has too many pending transactions"));
            }
            if queued >= self.config.max_queued_per_account {
                return Err(refuse(QueueLimit::Account));
            }
            if self.queued >= self.config.max_queued {
                return Err(refuse(QueueLimit::Count));
            }
            if self.queued_bytes.saturating_add(size) > self.config.max_queued_bytes {
                return Err(refuse(QueueLimit::Bytes));
            }
            // Queued transactions never push out others: the pool's own caps refuse them.
            if self.entries.len() >= self.config.max_txs {
                return Err(AdmitError::Full("too many pending transactions"));
            }
            if self.bytes.saturating_add(size) > self.config.max_bytes {
                return Err(AdmitError::Full("too many pending bytes"));
            }
        }
        self.admissions += 1;
        let admission = (now, self.admissions);
        let arrival = self.admissions;
        let next = account.nonce;
        let pending =
            self.accounts.entry(sender).or_insert_with(|| Account { arrival, next, nonces: BTreeMap::new(), ready: 0 });
        pending.nonces.insert(nonce, hash);
        self.bytes += size;
        self.entries.insert(hash, Entry { transaction, size, sender, admission, queued: !ready });
        if ready {
            // It fills the gap at the run's end: the run grows over it and whatever followed.
            self.extend_run(&sender);
            Ok(Admitted::Ready(hash))
        } else {
            self.queue.insert(admission, hash);
            self.queued += 1;
            self.queued_bytes += size;
            Ok(Admitted::Queued(hash))
        }
    }

    /// Makes room for a ready transaction of `size` bytes from `sender` (who has `pending`
    /// transactions, `queued` of them behind a gap) by evicting queued transactions: the
    /// sender's own highest nonces for its cap, then the oldest in all for the pool's. Evicts
    /// nothing if that would not be enough.
    fn make_room(&mut self, sender: &Address, pending: usize, queued: usize, size: usize) -> Result<(), AdmitError> {
        let account_evictions = (pending + 1).saturating_sub(self.config.max_per_account);
        if account_evictions > queued {
            return Err(AdmitError::Full("this account has too many pending transactions"));
        }
        if self.entries.len() - self.queued >= self.config.max_txs {
            return Err(AdmitError::Full("too many pending transactions"));
        }
        if (self.bytes - self.queued_bytes).saturating_add(size) > self.config.max_bytes {
            return Err(AdmitError::Full("too many pending bytes"));
        }
        for _ in 0..account_evictions {
            // Its highest nonce is queued: the account has queued transactions, and they follow
            // its run.
            let highest = self.accounts.get(sender).and_then(|account| account.nonces.last_key_value());
            let Some((_, hash)) = highest.map(|(nonce, hash)| (*nonce, *hash)) else { break };
            self.remove(&hash);
        }
        while self.entries.len() >= self.config.max_txs || self.bytes.saturating_add(size) > self.config.max_bytes {
            let Some((_, oldest)) = self.queue.pop_first() else { break };
            self.remove(&oldest);
        }
        Ok(())
    }

    /// Grows `sender`'s ready run over the pending nonces that follow it, promoting the queued
    /// ones among them.
    fn extend_run(&mut self, sender: &Address) {
        let Some(account) = self.accounts.get_mut(sender) else { return };
        while let Some(hash) = account.run_end().and_then(|end| account.nonces.get(&end).copied()) {
            account.ready += 1;
            if let Some(entry) = self.entries.get_mut(&hash)
                && entry.queued
            {
                entry.queued = false;
                self.queue.remove(&entry.admission);
                self.queued -= 1;
                self.queued_bytes -= entry.size;
                self.promoted.insert(hash);
            }
        }
    }

    /// Measures `sender`'s run again from its next nonce `next`: drops nonces below it (used),
    /// promotes what the run now covers and queues what it no longer does (after a transaction
    /// was dropped from its middle).
    fn measure(&mut self, sender: &Address, next: u64) {
        let Some(account) = self.accounts.get(sender) else { return };
        let used: Vec<Digest> = account.nonces.range(..next).map(|(_, hash)| *hash).collect();
        for hash in &used {
            self.remove(hash);
        }
        let Some(account) = self.accounts.get_mut(sender) else { return };
        account.next = next;
        // The run is the nonces from `next` on up to the first gap; every nonce is `next` or more.
        let (mut want, mut ready) = (Some(next), 0);
        for (nonce, hash) in &account.nonces {
            let in_run = want == Some(*nonce);
            if in_run {
                ready += 1;
                want = nonce.checked_add(1);
            } else {
                want = None;
            }
            let Some(entry) = self.entries.get_mut(hash) else { continue };
            if entry.queued != in_run {
                continue;
            }
            entry.queued = !in_run;
            if in_run {
                self.queue.remove(&entry.admission);
                self.queued -= 1;
                self.queued_bytes -= entry.size;
                self.promoted.insert(*hash);
            } else {
                // Its expiry still counts from its admission.
                self.queue.insert(entry.admission, *hash);
                self.queued += 1;
                self.queued_bytes += entry.size;
                self.promoted.remove(hash);
            }
        }
        account.ready = ready;
    }

    /// Removes one transaction with its bookkeeping. Removing a ready one breaks its account's
    /// run: the caller measures the account again.
    fn remove(&mut self, hash: &Digest) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        self.bytes -= entry.size;
        if entry.queued {
            self.queue.remove(&entry.admission);
            self.queued -= 1;
            self.queued_bytes -= entry.size;
        }
        self.promoted.remove(hash);
        if let Some(account) = self.accounts.get_mut(&entry.sender) {
            account.nonces.remove(&entry.transaction.transaction.nonce);
            if account.nonces.is_empty() {
                self.accounts.remove(&entry.sender);
            }
        }
        Some(entry)
    }

    /// Drops the transactions still behind a nonce gap [`MempoolConfig::queued_expiry`] after
    /// their admission. Returns how many. Admission does this too; a node calls it on a timer so
    /// they also go when nothing arrives.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        while let Some((&(admitted, _), _)) = self.queue.first_key_value() {
            // Saturating: an `Instant` older than the admission (a caller's clock) expires nothing.
            if now.saturating_duration_since(admitted) < self.config.queued_expiry {
                break;
            }
            if let Some((_, hash)) = self.queue.pop_first() {
                self.remove(&hash);
                expired += 1;
            }
        }
        expired
    }

    /// The transactions that became ready since the last call (their gap closed, by admission
    /// or by a block) and are still pending, encoded for gossip in account and nonce order. They
    /// were not gossiped while queued, so the node gossips them now.
    pub fn take_promoted(&mut self) -> Vec<Vec<u8>> {
        let mut promoted: Vec<&Entry> =
            self.promoted.drain().filter_map(|hash| self.entries.get(&hash)).filter(|entry| !entry.queued).collect();
        promoted.sort_by_key(|entry| (entry.sender, entry.transaction.transaction.nonce));
        promoted.into_iter().map(|entry| entry.transaction.encode()).collect()
    }

    /// Whether some account's next nonce is pending, so a block would carry a transaction
    /// (transactions waiting behind a nonce gap are not work).
    pub fn has_ready(&self, state: &impl StateReader) -> Result<bool, StoreError> {
        for (address, account) in &self.accounts {
            if account.nonces.contains_key(&read_account(state, address)?.nonce) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Transactions for the next block: each account's pending transactions from its next nonce
    /// (read from `state`) on, without gaps, accounts taking turns in arrival order, up to the
    /// limits. Never a transaction behind a gap.
    pub fn reap(
        &self,
        state: &impl StateReader,
        max_txs: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedTransaction>, StoreError> {
        let mut queues = Vec::with_capacity(self.accounts.len());
        for (address, account) in &self.accounts {
            let next = read_account(state, address)?.nonce;
            let run: Vec<&Digest> = ready_run(&account.nonces, next).collect();
            if !run.is_empty() {
                queues.push((account.arrival, run.into_iter()));
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
    /// execute (the signer lost the role), and measures every account again (a block may close
    /// a gap, making queued transactions ready for [`Mempool::take_promoted`]). Returns how many
    /// were dropped.
    pub fn prune(&mut self, state: &impl StateReader) -> Result<usize, StoreError> {
        let mut dropped = Vec::new();
        let mut next_nonces = Vec::with_capacity(self.accounts.len());
        for (address, pending) in &self.accounts {
            let account = read_account(state, address)?;
            next_nonces.push((*address, account.nonce));
            for (nonce, hash) in &pending.nonces {
                let role = self.entries.get(hash).map(|entry| entry.transaction.transaction.payload.required_role());
                if *nonce < account.nonce || role.is_none_or(|role| !account.roles.contains(role)) {
                    dropped.push(*hash);
                }
            }
        }
        for hash in &dropped {
            self.remove(hash);
        }
        for (address, next) in next_nonces {
            self.measure(&address, next);
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
