//! Transactions are checked before the driver sees them. Decoding, limits and signatures need
//! no state, so they run off the driver's thread, in batches spread over rayon's threads; the
//! one loop that runs consensus and executes blocks only does the checks that need the state
//! (role, nonce, duplicates, caps). Client submissions that arrive while a batch is being checked
//! are merged into the next one, so a JSON-RPC batch of 100 `tx_submit` calls costs one batched
//! signature check, not 100 single ones.

use std::sync::Arc;

use consensus::{ChainId, Digest};
use ledger::{AdmitError, state::read_params};
use libp2p::{PeerId, gossipsub::MessageId};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{ChainStore, Request};
use crate::{
    mempool::{Prechecked, precheck},
    p2p::{NetworkEvent, Topic, protocol::TxGossip},
    verified::VerifiedCache,
};

/// Most transactions checked in one batch.
const BATCH_MAX: usize = 4096;
/// Batches of client submissions being checked or admitted at once; more wait and merge.
const SUBMISSIONS_IN_FLIGHT: usize = 2;
/// Most transactions in one gossip message.
pub const TX_GOSSIP_MAX: usize = 4096;

/// Client transactions waiting for their verdicts.
pub(super) struct Submission {
    pub transactions: Vec<Vec<u8>>,
    pub reply: oneshot::Sender<Vec<Result<Digest, AdmitError>>>,
}

/// A transaction gossip message, checked.
pub struct CheckedGossip {
    /// Its gossip id.
    pub id: MessageId,
    /// The peer that forwarded it.
    pub source: PeerId,
    /// `None`: undecodable or over [`TX_GOSSIP_MAX`].
    pub transactions: Option<Vec<Result<Prechecked, AdmitError>>>,
}

/// The transactions of a gossip message; `None` if it does not decode or holds more than
/// [`TX_GOSSIP_MAX`].
pub fn decode_tx_gossip(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    match borsh::from_slice::<TxGossip>(data) {
        Ok(TxGossip(transactions)) if transactions.len() <= TX_GOSSIP_MAX => Some(transactions),
        _ => None,
    }
}

/// What checking needs: the chain's limits (read from the store) and id, and the hashes this
/// node already verified. Cheap to clone.
pub struct Checker<S> {
    /// The store the limits are read from.
    pub store: Arc<S>,
    /// The chain.
    pub chain_id: ChainId,
    /// Hashes whose signatures verified (shared with the driver).
    pub verified: Arc<VerifiedCache>,
}

impl<S> Clone for Checker<S> {
    fn clone(&self) -> Self {
        Checker { store: self.store.clone(), chain_id: self.chain_id.clone(), verified: self.verified.clone() }
    }
}

impl<S: ChainStore> Checker<S> {
    /// Checks a batch on this thread (reading the chain's limits first): decoding, limits and
    /// signatures, the checks that need no state.
    pub fn check_here(&self, encoded: Vec<Vec<u8>>) -> Vec<Result<Prechecked, AdmitError>> {
        match read_params(self.store.as_ref()) {
            Ok(params) => precheck(&self.chain_id, &params, encoded, &self.verified),
            Err(error) => encoded.iter().map(|_| Err(AdmitError::Store(error.clone()))).collect(),
        }
    }

    /// [`Checker::check_here`] on the blocking pool.
    async fn check(&self, encoded: Vec<Vec<u8>>) -> Vec<Result<Prechecked, AdmitError>> {
        let count = encoded.len();
        let checker = self.clone();
        match tokio::task::spawn_blocking(move || checker.check_here(encoded)).await {
            Ok(checked) => checked,
            // Only a panic inside the check gets here: refuse the batch rather than admit unchecked.
            Err(error) => (0..count)
                .map(|_| Err(AdmitError::Store(ledger::StoreError::Inconsistent(format!("check failed: {error}")))))
                .collect(),
        }
    }
}

/// Runs until every submitter is gone: takes client submissions, merges what waits, checks
/// each batch and hands it to the driver, and answers each submitter with its own verdicts.
pub(super) async fn run_submissions<S: ChainStore>(
    mut incoming: mpsc::Receiver<Submission>,
    checker: Checker<S>,
    requests: mpsc::Sender<Request>,
) {
    let permits = Arc::new(Semaphore::new(SUBMISSIONS_IN_FLIGHT));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let Some(first) = incoming.recv().await else { return };
        let mut count = first.transactions.len();
        let mut batch = vec![first];
        while count < BATCH_MAX {
            match incoming.try_recv() {
                Ok(submission) => {
                    count += submission.transactions.len();
                    batch.push(submission);
                }
                Err(_) => break,
            }
        }
        let (checker, requests) = (checker.clone(), requests.clone());
        tokio::spawn(async move {
            let sizes: Vec<usize> = batch.iter().map(|submission| submission.transactions.len()).collect();
            let mut replies = Vec::with_capacity(batch.len());
            let mut encoded = Vec::with_capacity(count);
            for submission in batch {
                encoded.extend(submission.transactions);
                replies.push(submission.reply);
            }
            let checked = checker.check(encoded).await;
            let (reply, answer) = oneshot::channel();
            if requests.send(Request::Submit { checked, reply }).await.is_err() {
                return;
            }
            let Ok(verdicts) = answer.await else { return };
            let mut verdicts = verdicts.into_iter();
            for (size, reply) in sizes.into_iter().zip(replies) {
                // A submitter that went away is fine.
                let _ = reply.send(verdicts.by_ref().take(size).collect());
            }
            drop(permit);
        });
    }
}

/// Runs until the network stops: decodes and checks transaction gossip messages, in order, and
/// passes each on to the driver. Messages that wait are checked together, in one batch.
pub(super) async fn run_tx_gossip<S: ChainStore>(
    mut incoming: mpsc::Receiver<NetworkEvent>,
    checker: Checker<S>,
    checked: mpsc::Sender<CheckedGossip>,
) {
    while let Some(event) = incoming.recv().await {
        let mut messages = Vec::new();
        let mut count = 0;
        let mut next = Some(event);
        while let Some(event) = next.take() {
            let NetworkEvent::Gossip { topic: Topic::Transactions, id, source, data } = event else { continue };
            let transactions = decode_tx_gossip(&data);
            count += transactions.as_ref().map_or(0, Vec::len);
            messages.push((id, source, transactions));
            if count < BATCH_MAX {
                next = incoming.try_recv().ok();
            }
        }
        let sizes: Vec<Option<usize>> =
            messages.iter().map(|(_, _, transactions)| transactions.as_ref().map(Vec::len)).collect();
        let encoded: Vec<Vec<u8>> =
            messages.iter_mut().flat_map(|(_, _, transactions)| transactions.take().unwrap_or_default()).collect();
        let mut verdicts = checker.check(encoded).await.into_iter();
        for ((id, source, _), size) in messages.into_iter().zip(sizes) {
            let transactions = size.map(|size| verdicts.by_ref().take(size).collect());
            if checked.send(CheckedGossip { id, source, transactions }).await.is_err() {
                return;
            }
        }
    }
}
