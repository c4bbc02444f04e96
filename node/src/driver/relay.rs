//! Transaction relay: what the mempool queued for gossip goes out in batches, and ready
//! transactions that no block took for a while are gossiped again (gossipsub drops messages to
//! peers whose send queues are full, so a transaction may reach only the node it was submitted
//! to, which then waits alone for work).

use std::time::{Duration, Instant};

use ledger::{StateReader, StoreError};
use tracing::debug;

use super::Network;
use crate::{
    mempool::MempoolHandle,
    p2p::{Topic, protocol::TxGossip},
};

/// Queued transactions are gossiped in batches at most this large...
const BATCH: usize = 1024;
/// ...and at least this often while some wait.
const INTERVAL: Duration = Duration::from_millis(10);
/// Ready transactions that no block has taken for this long are gossiped again...
const REGOSSIP_AFTER: Duration = Duration::from_secs(2);
/// ...at most this many per round.
const REGOSSIP_MAX: usize = 1024;

/// When the relay last sent and next looks for stuck transactions.
pub(super) struct TxRelay {
    last_flush: Instant,
    next_regossip: Instant,
}

impl TxRelay {
    /// A relay that starts at `now`.
    pub(super) fn new(now: Instant) -> Self {
        TxRelay { last_flush: now, next_regossip: now + REGOSSIP_AFTER }
    }

    /// When it next has work, given how many transactions wait in the mempool's outbox.
    pub(super) fn next_deadline(&self, waiting: usize) -> Instant {
        let flush = if waiting == 0 { self.next_regossip } else { self.last_flush + INTERVAL };
        flush.min(self.next_regossip)
    }

    /// Sends what waits if a full batch waits or the interval passed; gossips the ready
    /// transactions again if it is time and no block was committed since `last_commit_at`
    /// plus [`REGOSSIP_AFTER`].
    pub(super) fn run<S: StateReader>(
        &mut self,
        now: Instant,
        last_commit_at: Instant,
        mempool: &MempoolHandle<S>,
        network: &impl Network,
    ) -> Result<(), StoreError> {
        if now >= self.next_regossip {
            self.next_regossip = now + REGOSSIP_AFTER;
            // Reaping finds what is ready: no separate `has_ready` walk over the accounts first.
            if now.saturating_duration_since(last_commit_at) >= REGOSSIP_AFTER {
                let count = mempool.regossip_ready(REGOSSIP_MAX)?;
                if count > 0 {
                    debug!(count, "gossiping pending transactions again");
                    self.flush(now, mempool, network);
                    return Ok(());
                }
            }
        }
        let waiting = mempool.outbox_len();
        if waiting >= BATCH || (waiting > 0 && now >= self.last_flush + INTERVAL) {
            self.flush(now, mempool, network);
        }
        Ok(())
    }

    fn flush<S: StateReader>(&mut self, now: Instant, mempool: &MempoolHandle<S>, network: &impl Network) {
        self.last_flush = now;
        let mut outbox = mempool.take_outbox();
        while !outbox.is_empty() {
            let batch: Vec<Vec<u8>> = outbox.drain(..outbox.len().min(BATCH)).collect();
            let encoded = borsh::to_vec(&TxGossip(batch)).expect("encoding to a Vec cannot fail");
            network.publish(Topic::Transactions, encoded);
        }
    }
}
