//! The one admission path, off the consensus loop: client submissions and peers' transaction
//! gossip are decoded and their signatures checked in batches on the blocking pool (spread over
//! rayon's threads), then admitted through the [`MempoolHandle`] with their [`Origin`].
//! Client submissions that arrive while a batch is being checked are merged into the next one,
//! so a JSON-RPC batch of 100 `tx_submit` calls costs one batched signature check, not 100
//! single ones.

use std::{sync::Arc, time::Instant};

use consensus::Digest;
use ledger::{AdmitError, StateReader};
use libp2p::{PeerId, gossipsub::MessageId};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::{Admitted, MempoolHandle, Origin, Prechecked};
use crate::{
    driver::{Network, Stopped},
    p2p::{MessageAcceptance, NetworkEvent, Topic, protocol::TxGossip},
};

/// Most transactions checked in one batch.
const BATCH_MAX: usize = 4096;
/// Batches of client submissions being checked or admitted at once; more wait and merge.
const SUBMISSIONS_IN_FLIGHT: usize = 2;
/// Most transactions in one gossip message.
pub const TX_GOSSIP_MAX: usize = 4096;
/// Client submissions waiting for a checker.
const SUBMISSIONS_QUEUE: usize = 1024;

/// Client transactions waiting for their verdicts.
struct Submission {
    transactions: Vec<Vec<u8>>,
    reply: oneshot::Sender<Vec<Result<Digest, AdmitError>>>,
}

/// How clients' transactions reach the mempool (the RPC server holds one). Cheap to clone.
#[derive(Clone)]
pub struct Submitter {
    submissions: mpsc::Sender<Submission>,
}

impl Submitter {
    /// Admits encoded transactions (the ready ones are gossiped); one verdict per transaction,
    /// in order. Concurrent submissions are checked together, in one batch.
    pub async fn submit(&self, transactions: Vec<Vec<u8>>) -> Result<Vec<Result<Digest, AdmitError>>, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.submissions.send(Submission { transactions, reply }).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
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

/// Admits a checked gossip message and tells the network its verdict. Rejects the message only
/// for what the sender should have caught (it gossips only what it admitted): bad encoding,
/// chain or signature. Only a message that brought a transaction a block can take is forwarded.
pub fn admit_gossip<S: StateReader>(
    mempool: &MempoolHandle<S>,
    network: &impl Network,
    gossip: CheckedGossip,
    now: Instant,
) -> MessageAcceptance {
    let CheckedGossip { id, source, transactions } = gossip;
    let acceptance = match transactions {
        None => MessageAcceptance::Reject,
        Some(checked) => {
            let verdicts = mempool.admit(Origin::Peer, checked, now);
            // Limits and signatures are the same on every node (genesis), so an invalid
            // transaction is one the sender should never have admitted.
            let sender_fault = verdicts.iter().any(|verdict| matches!(verdict, Err(AdmitError::Invalid(_))));
            // Transactions behind a nonce gap stay here, so a gapped flood fills no other
            // node's mempool.
            let ready = verdicts.iter().any(|verdict| matches!(verdict, Ok(Admitted::Ready(_))));
            if sender_fault {
                MessageAcceptance::Reject
            } else if ready {
                MessageAcceptance::Accept
            } else {
                MessageAcceptance::Ignore
            }
        }
    };
    network.validated(id, source, acceptance);
    acceptance
}

/// Starts the admission tasks: one for client submissions (returns their [`Submitter`]) and one
/// for the network's transaction gossip. Both end on `shutdown`: a submission is then refused
/// as [`Stopped`], not acknowledged by a node that will not propose it, and the gossip task drops
/// its network handle (the network stops once no handle is left, so a task that held one
/// forever would keep a stopped node connected to its peers).
pub fn spawn<S, N>(
    mempool: MempoolHandle<S>,
    network: N,
    gossip: mpsc::Receiver<NetworkEvent<N::Reply>>,
    shutdown: watch::Receiver<bool>,
) -> Submitter
where
    S: StateReader + Send + Sync + 'static,
    N: Network + Clone + Send + Sync + 'static,
    N::Reply: Send + 'static,
{
    let (submissions, incoming) = mpsc::channel(SUBMISSIONS_QUEUE);
    tokio::spawn(run_submissions(incoming, mempool.clone(), shutdown.clone()));
    tokio::spawn(run_tx_gossip(gossip, mempool, network, shutdown));
    Submitter { submissions }
}

/// [`MempoolHandle::precheck`] on the blocking pool.
async fn precheck<S: StateReader + Send + Sync + 'static>(
    mempool: &MempoolHandle<S>,
    encoded: Vec<Vec<u8>>,
) -> Vec<Result<Prechecked, AdmitError>> {
    let count = encoded.len();
    let mempool = mempool.clone();
    match tokio::task::spawn_blocking(move || mempool.precheck(encoded)).await {
        Ok(checked) => checked,
        // Only a panic inside the check gets here: refuse the batch rather than admit unchecked.
        Err(error) => (0..count)
            .map(|_| {
                Err(AdmitError::Store(ledger::StoreError::TaskFailed {
                    task: "the transaction check",
                    message: error.to_string(),
                }))
            })
            .collect(),
    }
}

/// [`MempoolHandle::admit`] on the blocking pool: it reads the store.
async fn admit<S: StateReader + Send + Sync + 'static>(
    mempool: &MempoolHandle<S>,
    origin: Origin,
    checked: Vec<Result<Prechecked, AdmitError>>,
) -> Option<Vec<Result<Admitted, AdmitError>>> {
    let mempool = mempool.clone();
    tokio::task::spawn_blocking(move || mempool.admit(origin, checked, Instant::now())).await.ok()
}

/// Runs until every submitter is gone or `shutdown`: takes client submissions, merges what
/// waits, checks and admits each batch, and answers each submitter with its own verdicts.
async fn run_submissions<S: StateReader + Send + Sync + 'static>(
    mut incoming: mpsc::Receiver<Submission>,
    mempool: MempoolHandle<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(SUBMISSIONS_IN_FLIGHT));
    loop {
        let next = async {
            let permit = permits.clone().acquire_owned().await.ok()?;
            Some((permit, incoming.recv().await?))
        };
        let (permit, first) = tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            next = next => match next {
                Some(next) => next,
                None => return,
            },
        };
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
        let mempool = mempool.clone();
        tokio::spawn(async move {
            let sizes: Vec<usize> = batch.iter().map(|submission| submission.transactions.len()).collect();
            let mut replies = Vec::with_capacity(batch.len());
            let mut encoded = Vec::with_capacity(count);
            for submission in batch {
                encoded.extend(submission.transactions);
                replies.push(submission.reply);
            }
            let checked = precheck(&mempool, encoded).await;
            // A panic while admitting drops the replies: their submitters hear "shutting down".
            let Some(verdicts) = admit(&mempool, Origin::Client, checked).await else { return };
            let mut verdicts = verdicts.into_iter().map(|verdict| verdict.map(|admitted| admitted.hash()));
            for (size, reply) in sizes.into_iter().zip(replies) {
                // A submitter that went away is fine.
                let _ = reply.send(verdicts.by_ref().take(size).collect());
            }
            drop(permit);
        });
    }
}

/// Runs until the network stops or `shutdown`: decodes, checks and admits transaction gossip
/// messages, in order, and gives the network each one's verdict. Messages that wait are checked
/// together, in one batch.
async fn run_tx_gossip<S, N>(
    mut incoming: mpsc::Receiver<NetworkEvent<N::Reply>>,
    mempool: MempoolHandle<S>,
    network: N,
    mut shutdown: watch::Receiver<bool>,
) where
    S: StateReader + Send + Sync + 'static,
    N: Network + Clone + Send + Sync + 'static,
{
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            event = incoming.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
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
        let mut verdicts = precheck(&mempool, encoded).await.into_iter();
        let checked: Vec<CheckedGossip> = messages
            .into_iter()
            .zip(sizes)
            .map(|((id, source, _), size)| CheckedGossip {
                id,
                source,
                transactions: size.map(|size| verdicts.by_ref().take(size).collect()),
            })
            .collect();
        // In order, each its own verdict; on the blocking pool, since admission reads the store.
        let (pool, peers) = (mempool.clone(), network.clone());
        let admitted = tokio::task::spawn_blocking(move || {
            for gossip in checked {
                admit_gossip(&pool, &peers, gossip, Instant::now());
            }
        });
        // Only a panic while admitting fails this: those messages get no verdict (gossipsub
        // forgets them), and the next ones are admitted as usual.
        let _ = admitted.await;
    }
}
