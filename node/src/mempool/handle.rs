//! The mempool as the node's tasks share it. Client submissions (RPC) and peers' gossip admit
//! through a [`MempoolHandle`] on their own tasks; the consensus driver only reaps (proposals),
//! asks whether there is work, and prunes after each block. So a flood of transactions costs the
//! loop that runs consensus nothing but a wake-up.
//!
//! One lock guards the pool and its relay outbox. The checks that need the state read the store
//! under it, and the driver prunes under it after each block is written, so an admission either
//! sees the block (and refuses a used nonce) or is pruned by it: never a used nonce left behind.

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use consensus::{ChainId, Digest};
use ledger::{AdmitError, SignedTransaction, StateReader, StoreError, state::read_params};
use tokio::sync::Notify;

use super::{Admitted, Mempool, MempoolConfig, Prechecked, precheck};
use crate::{metrics::Metrics, verified::VerifiedCache};

/// Where transactions come from: it decides who spreads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client of this node: the ready ones go out in this node's next gossip batch.
    Client,
    /// A peer's gossip message: gossipsub forwards the message itself once it is accepted, so
    /// its transactions are not gossiped again.
    Peer,
}

/// Admissions are applied under the lock in slices this large, so a large batch never holds
/// the driver's reap or prune for long.
const ADMIT_SLICE: usize = 256;

/// The pool and the encoded transactions waiting to be gossiped, under one lock.
struct Pooled {
    mempool: Mempool,
    /// Ready transactions this node is to gossip (its clients' and those a gap released).
    outbox: Vec<Vec<u8>>,
}

struct Shared {
    pooled: Mutex<Pooled>,
    /// Signalled when an admission added something the driver acts on: a ready transaction
    /// (a height may start) or gossip to send.
    changed: Notify,
    /// Transactions whose signatures this node verified (admission and proposals share it).
    verified: Arc<VerifiedCache>,
    chain_id: ChainId,
}

/// The node's mempool, shared by its writers. Cheap to clone.
pub struct MempoolHandle<S> {
    shared: Arc<Shared>,
    store: Arc<S>,
    metrics: Arc<Metrics>,
}

impl<S> Clone for MempoolHandle<S> {
    fn clone(&self) -> Self {
        MempoolHandle { shared: self.shared.clone(), store: self.store.clone(), metrics: self.metrics.clone() }
    }
}

impl<S: StateReader> MempoolHandle<S> {
    /// An empty pool over the chain's state in `store`.
    pub fn new(chain_id: ChainId, config: MempoolConfig, store: Arc<S>, metrics: Arc<Metrics>) -> Self {
        let shared = Shared {
            pooled: Mutex::new(Pooled { mempool: Mempool::new(chain_id.clone(), config), outbox: Vec::new() }),
            changed: Notify::new(),
            verified: Arc::new(VerifiedCache::new(crate::verified::DEFAULT_CAPACITY)),
            chain_id,
        };
        MempoolHandle { shared: Arc::new(shared), store, metrics }
    }

    /// The checks that need no state, on this thread: decoding, limits and signatures (those
    /// this node verified before are not verified again). One verdict per transaction.
    pub fn precheck(&self, encoded: Vec<Vec<u8>>) -> Vec<Result<Prechecked, AdmitError>> {
        match read_params(self.store.as_ref()) {
            Ok(params) => precheck(&self.shared.chain_id, &params, encoded, &self.shared.verified),
            Err(error) => encoded.iter().map(|_| Err(AdmitError::Store(error.clone()))).collect(),
        }
    }

    /// Admits prechecked transactions at `now`: the checks that need the state and the caps.
    /// One verdict per transaction, in order. Ready client transactions, and any a gap released,
    /// join the gossip outbox; the driver is woken if a block could now carry one.
    pub fn admit(
        &self,
        origin: Origin,
        checked: Vec<Result<Prechecked, AdmitError>>,
        now: Instant,
    ) -> Vec<Result<Admitted, AdmitError>> {
        let mut verdicts = Vec::with_capacity(checked.len());
        let mut gossip_waiting = false;
        let mut checked = checked.into_iter().peekable();
        while checked.peek().is_some() {
            let slice: Vec<_> = checked.by_ref().take(ADMIT_SLICE).collect();
            let encoded: Vec<Option<Vec<u8>>> = match origin {
                Origin::Client => {
                    slice.iter().map(|result| result.as_ref().ok().map(|tx| tx.encoded().to_vec())).collect()
                }
                Origin::Peer => Vec::new(),
            };
            let mut pooled = self.lock();
            let admitted = pooled.mempool.admit_prechecked(self.store.as_ref(), slice, now);
            for (encoded, verdict) in encoded.into_iter().zip(&admitted) {
                // Held behind a nonce gap: gossiped only once the gap closes (take_promoted).
                if let (Some(encoded), Ok(Admitted::Ready(_))) = (encoded, verdict) {
                    pooled.outbox.push(encoded);
                }
            }
            let promoted = pooled.mempool.take_promoted();
            pooled.outbox.extend(promoted);
            self.update_metrics(&pooled.mempool);
            gossip_waiting = !pooled.outbox.is_empty();
            drop(pooled);
            verdicts.extend(admitted);
        }
        if gossip_waiting || verdicts.iter().any(|verdict| matches!(verdict, Ok(Admitted::Ready(_)))) {
            self.shared.changed.notify_one();
        }
        verdicts
    }

    /// Waits until an admission added work (see [`MempoolHandle::admit`]); a signal sent while
    /// nobody waited is kept for the next call.
    pub async fn changed(&self) {
        self.shared.changed.notified().await;
    }

    /// Whether some account's next nonce is pending, so a block would carry a transaction.
    pub fn has_ready(&self) -> Result<bool, StoreError> {
        self.lock().mempool.has_ready(self.store.as_ref())
    }

    /// Transactions for the next block (see [`Mempool::reap`]).
    pub fn reap(&self, max_txs: usize, max_bytes: usize) -> Result<Vec<SignedTransaction>, StoreError> {
        self.lock().mempool.reap(self.store.as_ref(), max_txs, max_bytes)
    }

    /// After a block was written: drops what it used or made invalid, the transactions behind a
    /// gap that expired by `now`, and queues for gossip those it let out of a gap. Returns how
    /// many were dropped.
    pub fn after_commit(&self, now: Instant) -> Result<usize, StoreError> {
        let mut pooled = self.lock();
        let dropped = pooled.mempool.prune(self.store.as_ref())? + pooled.mempool.expire(now);
        let promoted = pooled.mempool.take_promoted();
        pooled.outbox.extend(promoted);
        self.update_metrics(&pooled.mempool);
        Ok(dropped)
    }

    /// Queues the transactions the next block would take for gossip again (at most `max`);
    /// returns how many.
    pub fn regossip_ready(&self, max: usize) -> Result<usize, StoreError> {
        let mut pooled = self.lock();
        let ready = pooled.mempool.reap(self.store.as_ref(), max, usize::MAX)?;
        pooled.outbox.extend(ready.iter().map(SignedTransaction::encode));
        Ok(ready.len())
    }

    /// Takes what waits to be gossiped.
    pub fn take_outbox(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.lock().outbox)
    }

    /// How many transactions wait to be gossiped.
    pub fn outbox_len(&self) -> usize {
        self.lock().outbox.len()
    }
}

impl<S> MempoolHandle<S> {
    /// Transactions pending and their encoded bytes.
    pub fn size(&self) -> (usize, usize) {
        let pooled = self.lock();
        (pooled.mempool.len(), pooled.mempool.bytes())
    }

    /// Whether a transaction is pending.
    pub fn contains(&self, hash: &Digest) -> bool {
        self.lock().mempool.contains(hash)
    }

    /// The hashes whose signatures this node verified.
    pub fn verified(&self) -> &Arc<VerifiedCache> {
        &self.shared.verified
    }

    fn lock(&self) -> MutexGuard<'_, Pooled> {
        // Nothing under the lock panics on what it is given; if a bug did, taking every later
        // submission and the driver down with it would be worse than going on.
        self.shared.pooled.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update_metrics(&self, mempool: &Mempool) {
        self.metrics.mempool_txs.set(i64::try_from(mempool.len()).unwrap_or(i64::MAX));
        self.metrics.mempool_bytes.set(i64::try_from(mempool.bytes()).unwrap_or(i64::MAX));
    }
}
