//! Serving peers' reads of the chain (heads and block ranges) off the swarm loop: store reads
//! block, and a peer syncing thousands of blocks must not delay consensus messages. Bounded: at
//! most [`CONCURRENCY`] reads run (or hold an answer not yet taken) at once on the blocking
//! pool, at most [`QUEUE`] wait (more are dropped, and their askers see a failed request), and
//! each answer fits the size budget, so at most twice [`CONCURRENCY`] answers are in memory.

use std::sync::Arc;

use consensus::Height;
use ledger::{BlockReader, CertifiedBlock, StoreError};
use libp2p::PeerId;
use tokio::sync::{Semaphore, mpsc};
use tracing::warn;

use super::protocol::{CertifiedHeader, Response, SYNC_BATCH_MAX};

/// Reads running at once.
pub const CONCURRENCY: usize = 4;
/// Reads waiting to run.
pub const QUEUE: usize = 64;
/// Room left in a response for its framing.
const FRAMING_BYTES: usize = 1024;

/// What a peer asks to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The head height.
    Head,
    /// Certified blocks from `from`, at most `count`.
    Blocks {
        /// First height.
        from: Height,
        /// How many.
        count: u32,
    },
    /// The certified head and the certified header at `at`.
    CertifiedHeads {
        /// The common height.
        at: Height,
    },
}

/// A read to serve, with where its answer goes (`R`, a response channel in production).
#[derive(Debug)]
pub struct Job<R> {
    /// The asker.
    pub peer: PeerId,
    /// What it asks.
    pub read: Read,
    /// Where the answer goes.
    pub reply: R,
}

/// A served read.
#[derive(Debug)]
pub struct Served<R> {
    /// The asker.
    pub peer: PeerId,
    /// Where the answer goes.
    pub reply: R,
    /// The answer; `None` if the store could not answer (the asker sees a failed request).
    pub response: Option<Response>,
    /// Encoded size of the blocks served, charged to the asker's budget.
    pub bytes: usize,
}

/// Starts the server over `store`; answers fit `max_message_bytes`. It runs until the job
/// sender is dropped.
pub fn spawn<R: Send + 'static>(
    store: Arc<dyn BlockReader + Send + Sync>,
    max_message_bytes: usize,
) -> (mpsc::Sender<Job<R>>, mpsc::Receiver<Served<R>>) {
    let (jobs, job_receiver) = mpsc::channel(QUEUE);
    let (done, served) = mpsc::channel(CONCURRENCY);
    tokio::spawn(run(store, max_message_bytes.saturating_sub(FRAMING_BYTES), job_receiver, done));
    (jobs, served)
}

async fn run<R: Send + 'static>(
    store: Arc<dyn BlockReader + Send + Sync>,
    budget: usize,
    mut jobs: mpsc::Receiver<Job<R>>,
    done: mpsc::Sender<Served<R>>,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(Job { peer, read, reply }) = jobs.recv().await {
        // Never closed, so acquiring only waits.
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let answer = tokio::task::spawn_blocking(move || answer(store.as_ref(), read, budget)).await;
            let (response, bytes) = answer.unwrap_or_else(|error| {
                warn!(%error, "a read for a peer failed");
                (None, 0)
            });
            // The network task gone means shutdown. The permit is held until the answer is
            // handed over, so answers the swarm loop has not taken yet stop further reads.
            let _ = done.send(Served { peer, reply, response, bytes }).await;
            drop(permit);
        });
    }
}

/// Byzantine test build only: whether this node lies in block sync (`STELE_BYZANTINE=lie-sync`).
#[cfg(feature = "byzantine")]
fn lies_in_sync() -> bool {
    static LIES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LIES.get_or_init(crate::byzantine::lies_in_sync)
}

fn answer(store: &(dyn BlockReader + Send + Sync), read: Read, budget: usize) -> (Option<Response>, usize) {
    #[cfg(feature = "byzantine")]
    if lies_in_sync() {
        return match read {
            Read::Head => (Some(Response::Status { head: Height::MAX }), 0),
            Read::Blocks { .. } => (Some(Response::Blocks(Vec::new())), 0),
            Read::CertifiedHeads { .. } => (None, 0),
        };
    }
    match read {
        Read::Head => match store.head() {
            Ok(head) => (Some(Response::Status { head: head.height }), 0),
            Err(error) => {
                warn!(%error, "cannot read the head for a peer");
                (None, 0)
            }
        },
        Read::Blocks { from, count } => {
            let (blocks, bytes) = read_blocks(store, from, count, budget);
            (Some(Response::Blocks(blocks)), bytes)
        }
        Read::CertifiedHeads { at } => match read_certified_heads(store, at) {
            Ok(response) => {
                let bytes = borsh::object_length(&response).unwrap_or(0);
                (Some(response), bytes)
            }
            Err(error) => {
                warn!(at, %error, "cannot read certified headers for a peer");
                (None, 0)
            }
        },
    }
}

/// The certified head and the certified header at `at` (`None` for a height not committed;
/// the genesis has no certificate).
fn read_certified_heads(store: &(dyn BlockReader + Send + Sync), at: Height) -> Result<Response, StoreError> {
    let certified = |height: Height| -> Result<Option<Box<CertifiedHeader>>, StoreError> {
        Ok(store
            .certified_header(height)?
            .map(|(header, certificate)| Box::new(CertifiedHeader { header, certificate })))
    };
    let head = store.head()?.height;
    Ok(Response::CertifiedHeads { head: certified(head)?, at: if at <= head { certified(at)? } else { None } })
}

/// Consecutive certified blocks from `from`: at most `count` and [`SYNC_BATCH_MAX`], and no
/// more than `budget` bytes. Returns them with their encoded size.
pub fn read_blocks(
    store: &(dyn BlockReader + Send + Sync),
    from: Height,
    count: u32,
    budget: usize,
) -> (Vec<CertifiedBlock>, usize) {
    let (mut blocks, mut bytes) = (Vec::new(), 0usize);
    let count = u64::from(count.min(SYNC_BATCH_MAX));
    for height in from.max(1)..from.max(1).saturating_add(count) {
        let block = match store.block(height) {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(error) => {
                warn!(height, %error, "cannot read a block for a peer");
                break;
            }
        };
        let size = borsh::object_length(&block).unwrap_or(usize::MAX);
        if bytes.saturating_add(size) > budget {
            break;
        }
        bytes += size;
        blocks.push(block);
    }
    (blocks, bytes)
}

#[cfg(test)]
#[path = "serve_test.rs"]
mod tests;
