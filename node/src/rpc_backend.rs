//! The node's side of the JSON-RPC API: [`rpc::Backend`] over the store, the driver and the
//! network.
//!
//! The readiness probe (`GET /ready`, [`rpc::probes`]) must not wait for the driver's loop,
//! which serves consensus first, nor ask the network task once per probe: [`NodeBackend::new`]
//! starts a small task that asks both once a second (the driver whether it is syncing, the
//! network which peers are connected) and publishes the answers with their time in a watch
//! channel, which [`rpc::Backend::readiness`] reads along with the store's head and validator
//! set.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use consensus::Digest;
use jsonrpsee::core::async_trait;
use ledger::{BlockReader, CertifiedBlock, RocksStore, StateHistory, StoreError};
use rpc::{EvidenceRecord, NodeStatus, Peer, Readiness, SubmitError, SyncState};
use tokio::sync::{broadcast, watch};

use crate::{
    agreement::AgreementHandle,
    driver::{DriverHandle, Stopped},
    mempool::{MempoolHandle, admission::Submitter},
    p2p::NetworkHandle,
    scrub::ScrubHandle,
};

/// What the RPC server reads and calls.
pub struct NodeBackend {
    /// The store (read while the driver writes).
    pub store: Arc<RocksStore>,
    /// Hash of the genesis document.
    pub genesis_hash: Digest,
    /// The driver.
    pub driver: DriverHandle,
    /// The mempool, read for `is_pending` and the status.
    pub mempool: MempoolHandle<RocksStore>,
    /// Where submissions go.
    pub submitter: Submitter,
    /// The network.
    pub network: NetworkHandle,
    /// The driver's and the network's last answers, for the readiness probe.
    live: watch::Receiver<Live>,
    /// The background scrub's progress and findings.
    scrub: ScrubHandle,
    /// The comparisons with peers and the divergence evidence.
    agreement: AgreementHandle,
}

/// The driver and the network are asked this often for what the readiness probe needs...
const LIVE_INTERVAL: Duration = Duration::from_secs(1);
/// ...each answer awaited at most this long (the next round asks again)...
const LIVE_TIMEOUT: Duration = Duration::from_secs(2);
/// ...and an answer older than this is not trusted (the probe says "not known").
const LIVE_STALE: Duration = Duration::from_secs(10);
/// For this long after the node starts it is not called synced: the driver asks its peers for
/// their heads once a second, and until the first answers it cannot know it is behind.
const SYNC_WARMUP: Duration = Duration::from_secs(3);

/// The driver's and the network's last answers, with when they came.
#[derive(Clone, Debug)]
struct Live {
    started: Instant,
    /// Whether the driver was fetching blocks from a peer ahead.
    syncing: Option<(Instant, bool)>,
    /// The peer ids of the connected peers.
    peers: Option<(Instant, HashSet<String>)>,
}

/// Starts the task that asks the driver and the network once a second and publishes their
/// answers; it ends on `shutdown`, when the driver has stopped, or when nobody reads them.
fn watch_live(
    driver: DriverHandle,
    network: NetworkHandle,
    mut shutdown: watch::Receiver<bool>,
) -> watch::Receiver<Live> {
    let (sender, receiver) = watch::channel(Live { started: Instant::now(), syncing: None, peers: None });
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(LIVE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let round = async {
                ticks.tick().await;
                tokio::join!(
                    tokio::time::timeout(LIVE_TIMEOUT, driver.status()),
                    tokio::time::timeout(LIVE_TIMEOUT, network.peers()),
                )
            };
            let (status, peers) = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                () = sender.closed() => break,
                answers = round => answers,
            };
            let now = Instant::now();
            match status {
                Ok(Ok(status)) => sender.send_modify(|live| live.syncing = Some((now, status.syncing))),
                Ok(Err(Stopped)) => break,
                Err(_) => {}
            }
            if let Ok(peers) = peers {
                let ids: HashSet<String> = peers.into_iter().map(|peer| peer.peer_id.to_string()).collect();
                sender.send_modify(|live| live.peers = Some((now, ids)));
            }
        }
    });
    receiver
}

impl NodeBackend {
    /// The backend over these parts; starts the task that publishes what the readiness probe
    /// reads (it ends on `shutdown`). Call inside the node's runtime.
    pub fn new(
        store: Arc<RocksStore>,
        genesis_hash: Digest,
        (driver, mempool, submitter): (DriverHandle, MempoolHandle<RocksStore>, Submitter),
        network: NetworkHandle,
        checks: (ScrubHandle, AgreementHandle),
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let live = watch_live(driver.clone(), network.clone(), shutdown);
        let (scrub, agreement) = checks;
        NodeBackend { store, genesis_hash, driver, mempool, submitter, network, live, scrub, agreement }
    }
}

#[async_trait]
impl rpc::Backend for NodeBackend {
    type Store = RocksStore;

    fn store(&self) -> &RocksStore {
        &self.store
    }

    fn genesis_hash(&self) -> Digest {
        self.genesis_hash
    }

    async fn submit(&self, transaction: Vec<u8>) -> Result<Digest, SubmitError> {
        let verdicts = self
            .submitter
            .submit(vec![transaction])
            .await
            .map_err(|error| SubmitError::Unavailable(error.to_string()))?;
        match verdicts.into_iter().next() {
            Some(verdict) => verdict.map_err(SubmitError::Refused),
            None => Err(SubmitError::Unavailable("no verdict".to_string())),
        }
    }

    async fn is_pending(&self, hash: Digest) -> bool {
        self.mempool.contains(&hash)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<CertifiedBlock>> {
        self.driver.subscribe()
    }

    async fn status(&self) -> NodeStatus {
        let peers = self.network.peers().await.len();
        match self.driver.status().await {
            Ok(status) => NodeStatus {
                view: status.view,
                validator: status.validator,
                syncing: status.syncing,
                peers,
                mempool_txs: self.mempool.size().0,
            },
            Err(_) => NodeStatus { view: 0, validator: false, syncing: false, peers, mempool_txs: 0 },
        }
    }

    fn evidence(&self) -> Result<Vec<EvidenceRecord>, ledger::StoreError> {
        crate::driver::evidence::load(self.store.as_ref())
    }

    /// The head and the next height's validator set from the store (point reads); sync and
    /// connections from what [`watch_live`] last published. This node counts as a validator
    /// when its peer id is in the set: that is the identity its peers admit and send votes to.
    fn readiness(&self) -> Result<Readiness, StoreError> {
        let head = self.store.head()?;
        let schedule = self.store.validator_schedule_at(head.height)?;
        let members = schedule.validators_at(head.height + 1);
        let me = self.network.local_peer_id().to_string();
        let now = Instant::now();
        let live = self.live.borrow();
        let fresh = |at: Instant| now.saturating_duration_since(at) < LIVE_STALE;
        let validators_connected = match &live.peers {
            Some((at, peers)) if fresh(*at) => {
                Some(members.iter().filter(|member| member.peer_id != me && peers.contains(&member.peer_id)).count())
            }
            _ => None,
        };
        let up = now.saturating_duration_since(live.started);
        let sync = match live.syncing {
            _ if up < SYNC_WARMUP => SyncState::Unknown(format!(
                "the node started {:.1} s ago and may not have heard its peers' heads yet",
                up.as_secs_f64()
            )),
            Some((at, syncing)) if fresh(at) => {
                if syncing {
                    SyncState::Behind
                } else {
                    SyncState::Synced
                }
            }
            Some((at, _)) => SyncState::Unknown(format!(
                "the consensus driver has not answered a status request for {} s",
                now.saturating_duration_since(at).as_secs()
            )),
            None => SyncState::Unknown("the consensus driver has not answered a status request yet".to_string()),
        };
        Ok(Readiness {
            height: head.height,
            block_time_ms: head.timestamp_ms,
            sync,
            validator: members.iter().any(|member| member.peer_id == me),
            validators: members.len(),
            validators_connected,
            damaged: self.scrub.damaged(),
            diverged: self.agreement.diverged(),
        })
    }

    fn scrub(&self) -> Option<rpc::types::ScrubStatus> {
        Some(self.scrub.status())
    }

    fn agreement(&self) -> Option<rpc::types::AgreementStatus> {
        Some(self.agreement.status())
    }

    fn divergences(&self) -> Vec<rpc::types::Divergence> {
        self.agreement.divergences()
    }

    async fn peers(&self) -> Vec<Peer> {
        self.network
            .peers()
            .await
            .into_iter()
            .map(|peer| Peer {
                peer_id: peer.peer_id.to_string(),
                address: peer.address.to_string(),
                score: peer.score,
            })
            .collect()
    }
}
