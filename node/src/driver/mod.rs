//! The consensus driver: the only loop that executes the core's outputs. It owns the replica
//! and the write side of the store; the network, the RPC server and the metrics endpoint talk to
//! it through channels. Transactions are admitted off this loop (`crate::mempool::admission`):
//! the driver only reaps the mempool for proposals, asks it whether there is work, prunes it
//! after each block and relays what it queued for gossip.
//!
//! It is a state machine over its [`ports`]: a [`ChainStore`], a [`Network`] and the time
//! ([`Now`]), each an input. [`Driver::run`] is the node's loop (RocksDB, libp2p, the system
//! clock); the whole-node simulation steps the same driver with [`Driver::boot`],
//! [`Driver::handle`] over `MemStore`, a simulated network and virtual
//! time, so every path here runs deterministically in tests.
//!
//! Order matters and is kept here: a `Persist` output is synced to RocksDB before any later
//! output runs (so a restarted validator never signs twice); a decided block is committed in
//! one atomic write before subscribers hear of it and before the next height starts.

mod body_cache;
pub mod evidence;
mod gossip;
pub mod ports;
mod proposals;
mod relay;
mod sync;

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use consensus::{
    ChainId, CommitCertificate, Digest, Height, Input, Message, Output, Replica, SafetyState, SigningKey, Timer,
    ValidatorSet,
};
use ledger::{BlockHeader, CertifiedBlock, StoreError, state::read_params};
use libp2p::PeerId;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::{
    mempool::MempoolHandle,
    metrics::Metrics,
    p2p::{NetworkEvent, Topic},
};

pub use ports::{ChainStore, Network, Now};

use body_cache::BodyCache;
use relay::TxRelay;

/// A failure that stops the node: the store could not be read or written, so continuing could
/// lose a block or sign twice.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// The stored safety state is unreadable.
    #[error("the saved consensus safety state is corrupt: {0}")]
    SafetyState(String),
    /// This node's state does not follow its own chain head (found executing a decided block).
    #[error("the local state is corrupt: decided block {height} cannot execute on it: {error}")]
    StateCorrupt {
        /// The decided block's height.
        height: Height,
        /// What execution found.
        error: Box<ledger::ExecutionError>,
    },
}

/// How the driver runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The chain.
    pub chain_id: ChainId,
    /// This node's consensus key (an observer's key is not in any validator set).
    pub key: SigningKey,
    /// With nothing to do, still start a height (an empty block) this often; `None` never.
    pub empty_block_interval: Option<Duration>,
    /// Peer ids admitted besides the validators.
    pub observers: HashSet<PeerId>,
}

/// What the RPC side asks of the driver.
enum Request {
    Status(oneshot::Sender<Status>),
}

/// The driver's state, for `chain_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The consensus view of the height being decided.
    pub view: consensus::View,
    /// Whether this node's key is in the set of the next height.
    pub validator: bool,
    /// Whether a sync request is in flight.
    pub syncing: bool,
}

/// The driver stopped; the node is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the node is shutting down")]
pub struct Stopped;

/// How the rest of the node reaches the driver. Cheap to clone.
#[derive(Clone)]
pub struct DriverHandle {
    requests: mpsc::Sender<Request>,
    /// Weak, so that the channel closes when the driver stops: subscribers (block
    /// subscriptions, `tx_submitAndWait` calls) then end at once instead of holding shutdown.
    commits: broadcast::WeakSender<Arc<CertifiedBlock>>,
}

impl DriverHandle {
    /// The driver's state.
    pub async fn status(&self) -> Result<Status, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Status(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Every block committed from now on, in order (a slow receiver misses blocks and is told
    /// how many, see [`broadcast::error::RecvError::Lagged`]); closed once the driver stopped.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CertifiedBlock>> {
        match self.commits.upgrade() {
            Some(commits) => commits.subscribe(),
            None => broadcast::channel(1).1,
        }
    }
}

/// Blocks are announced to subscribers through a buffer this deep.
const COMMIT_BUFFER: usize = 1024;
/// At boot, how long to wait for a quorum of peers before starting the next height anyway.
const BOOT_GRACE: Duration = Duration::from_secs(3);
/// How often peers are asked for their heads (to notice being behind).
const HEADS_INTERVAL: Duration = Duration::from_secs(1);

/// What happens to a driver; [`Driver::handle`] takes one at a time.
pub enum Event<R> {
    /// The network delivered something (transaction gossip goes to the mempool's admission
    /// instead).
    Network(NetworkEvent<R>),
    /// The mempool admitted transactions: a height may start, gossip may be due.
    Admitted,
    /// Time passed: whatever is due by [`Driver::next_deadline`] runs.
    Tick,
}

/// The consensus driver. Build with [`Driver::new`]; a node runs it with [`Driver::run`], a
/// simulation steps it with [`Driver::boot`] and [`Driver::handle`].
pub struct Driver<S, N> {
    settings: Settings,
    store: Arc<S>,
    replica: Replica,
    /// Shared with the admission tasks: the driver reaps, asks for work and prunes.
    mempool: MempoolHandle<S>,
    network: N,
    metrics: Arc<Metrics>,
    commits: broadcast::Sender<Arc<CertifiedBlock>>,
    requests: mpsc::Receiver<Request>,
    /// The time of the event being handled.
    now: Now,
    /// The last committed header.
    head: BlockHeader,
    /// The set that certifies `head + 1`, and who its members are on the network.
    validators: ValidatorSet,
    validator_peers: Vec<Option<PeerId>>,
    /// Peer ids the network admits now.
    admitted: HashSet<PeerId>,
    /// Whether the core works on `head + 1` (false while idle between blocks).
    started: bool,
    started_at: Instant,
    last_commit_at: Instant,
    /// View timers the core asked for, with their deadlines.
    timers: BTreeMap<Timer, Instant>,
    /// Blocks proposed for `head + 1`, by header hash (bodies that match their headers only).
    bodies: BodyCache,
    /// Proposals the core asked to validate whose block has not arrived.
    awaiting_validation: BTreeMap<Digest, Height>,
    /// Proposals only too early by this node's clock, and when to check them again.
    early: BTreeMap<Digest, (Height, Instant)>,
    /// A decision whose block has not arrived (or was refused, see `refused`).
    awaiting_block: Option<CommitCertificate>,
    /// A decided block this node's checks refused, and when to fetch and check it again.
    refused: Option<(Digest, Instant)>,
    /// Block sync bookkeeping.
    sync: sync::SyncState,
    /// Gossip of the transactions the mempool queued for it.
    relay: TxRelay,
    /// Connected peers.
    connected: usize,
    /// Before the first height starts (waiting for peers), until when at most.
    booting: Option<Instant>,
    /// When peers are next asked for their heads (and missing bodies again).
    next_heads: Instant,
    /// The peer that delivered the message being fed, named in evidence it reveals.
    delivered_by: Option<PeerId>,
}

impl<S: ChainStore, N: Network> Driver<S, N> {
    /// Prepares a driver over an open store and the node's mempool, at the time `now`.
    /// Returns it with the handle RPC uses.
    pub fn new(
        settings: Settings,
        store: Arc<S>,
        network: N,
        mempool: MempoolHandle<S>,
        metrics: Arc<Metrics>,
        now: Now,
    ) -> Result<(Self, DriverHandle), Error> {
        let head = store.head()?;
        let params = read_params(store.as_ref())?;
        let replica = Replica::new(consensus::Config {
            chain_id: settings.chain_id.clone(),
            key: settings.key.clone(),
            view_timeout_ms: params.view_timeout_ms,
            view_timeout_max_ms: params.view_timeout_max_ms,
        });
        let (commits, _) = broadcast::channel(COMMIT_BUFFER);
        let (request_sender, requests) = mpsc::channel(1024);
        let validators = store.validator_set_for(head.height + 1)?;
        let driver = Driver {
            settings,
            store,
            replica,
            mempool,
            network,
            metrics,
            commits: commits.clone(),
            requests,
            now,
            head,
            validators,
            validator_peers: Vec::new(),
            admitted: HashSet::new(),
            started: false,
            started_at: now.instant,
            last_commit_at: now.instant,
            timers: BTreeMap::new(),
            bodies: BodyCache::default(),
            awaiting_validation: BTreeMap::new(),
            early: BTreeMap::new(),
            awaiting_block: None,
            refused: None,
            sync: sync::SyncState::default(),
            relay: TxRelay::new(now.instant),
            connected: 0,
            booting: None,
            next_heads: now.instant,
            delivered_by: None,
        };
        Ok((driver, DriverHandle { requests: request_sender, commits: commits.downgrade() }))
    }

    /// Runs until `shutdown` turns true or a fatal error, on this machine's clocks: boots (see
    /// [`Driver::boot`]), then hands every event to [`Driver::handle`].
    pub async fn run(
        mut self,
        mut consensus_events: mpsc::Receiver<NetworkEvent<N::Reply>>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mempool = self.mempool.clone();
        self.boot(Now::system())?;
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep_until(deadline.into()) => self.handle(Now::system(), Event::Tick)?,
                // Consensus first, then requests, then the mempool's news: a flood of
                // transactions must not starve votes.
                event = consensus_events.recv() => match event {
                    Some(event) => self.handle(Now::system(), Event::Network(event))?,
                    None => break,
                },
                Some(request) = self.requests.recv() => {
                    self.now = Now::system();
                    self.on_request(request)?;
                    self.after_event()?;
                }
                () = mempool.changed() => self.handle(Now::system(), Event::Admitted)?,
            }
        }
        info!(height = self.head.height, "driver stopped");
        Ok(())
    }

    /// Starts the driver at `now`: restores the core from the saved safety state and waits for
    /// a quorum of peers (at most [`BOOT_GRACE`]) before starting the next height, so that a
    /// restarted network shows liveness at once and view 0 is not wasted on a leader nobody
    /// hears.
    pub fn boot(&mut self, now: Now) -> Result<(), Error> {
        self.now = now;
        self.refresh_validators()?;
        self.metrics.height.set(height_gauge(self.head.height));
        if let Some(bytes) = self.store.load_safety_state()? {
            let state = SafetyState::decode(&bytes).map_err(Error::SafetyState)?;
            info!(height = state.height, view = state.view, "restoring consensus safety state");
            if state.height > self.head.height + 1 {
                // Blocks this validator committed were lost (unsynced writes and a power cut);
                // the core follows the heights up to the state's without voting.
                warn!(
                    safety_height = state.height,
                    head = self.head.height,
                    "the saved safety state is ahead of the chain: not voting until the chain reaches it"
                );
            }
            self.feed(Input::Restore(state))?;
        }
        info!(height = self.head.height, "chain head");
        self.booting = Some(now.instant + BOOT_GRACE);
        self.next_heads = now.instant;
        self.relay = TxRelay::new(now.instant);
        self.after_event()
    }

    /// Handles one event that happened at `now`, then starts the next height if there is work.
    pub fn handle(&mut self, now: Now, event: Event<N::Reply>) -> Result<(), Error> {
        self.now = now;
        match event {
            Event::Network(event) => self.on_network(event)?,
            Event::Admitted => self.relay.run(self.now.instant, self.last_commit_at, &self.mempool, &self.network)?,
            Event::Tick => self.on_deadline()?,
        }
        self.after_event()
    }

    /// What follows every event: the first height starts once a quorum of peers is connected
    /// (or the boot grace ran out), a later one when there is work.
    fn after_event(&mut self) -> Result<(), Error> {
        if let Some(until) = self.booting
            && (self.now.instant >= until || self.connected + 1 >= self.validators.quorum())
        {
            self.booting = None;
            self.start_height()?;
        }
        self.maybe_start_height()
    }

    /// The node's mempool, as this driver shares it.
    pub fn mempool(&self) -> &MempoolHandle<S> {
        &self.mempool
    }

    /// The last committed header.
    pub fn head(&self) -> &BlockHeader {
        &self.head
    }

    /// The time of the event handled last.
    fn now(&self) -> Instant {
        self.now.instant
    }

    /// Feeds one input and executes the outputs, and those of the inputs they lead to, in order.
    fn feed(&mut self, input: Input) -> Result<(), Error> {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let view_before = self.replica.view();
            let outputs = self.replica.handle(input);
            if self.replica.view() > view_before && self.replica.height() == self.head.height + 1 {
                self.metrics.view_changes.inc();
                info!(height = self.replica.height(), view = self.replica.view(), "view change");
            }
            self.metrics.view.set(i64::try_from(self.replica.view()).unwrap_or(i64::MAX));
            // One synced write per input, not one per vote signed: within one step the core's
            // safety state only grows, so its last state, written where the first stood, is
            // durable before every output that followed any of them.
            let mut latest = outputs.iter().rev().find_map(|output| match output {
                Output::Persist(state) => Some(state.clone()),
                _ => None,
            });
            for output in outputs {
                match output {
                    Output::Persist(_) => {
                        if let Some(state) = latest.take() {
                            self.execute(Output::Persist(state), &mut inputs)?;
                        }
                    }
                    output => self.execute(output, &mut inputs)?,
                }
            }
        }
        Ok(())
    }

    fn execute(&mut self, output: Output, inputs: &mut VecDeque<Input>) -> Result<(), Error> {
        match output {
            Output::Persist(state) => self.store.save_safety_state(&state.encode())?,
            Output::Broadcast(message) => self.broadcast(message),
            Output::Send { to, message } => {
                if let Some(Some(peer)) = self.validator_peers.get(to as usize) {
                    self.network.send_direct(*peer, message);
                }
            }
            Output::StartTimer { timer, after_ms } => {
                self.timers.insert(timer, self.now() + Duration::from_millis(after_ms));
            }
            Output::RequestProposal { height, view } => {
                if let Some(digest) = self.build_proposal(height, view)? {
                    inputs.push_back(Input::ProposalReady { height, view, digest });
                }
            }
            Output::ValidateValue { height, view, digest } => {
                self.bodies.mark_awaited(&digest);
                match self.validate_proposal(height, &digest) {
                    Some(verdict) => inputs.push_back(Input::ValueValidated { height, digest, verdict }),
                    None => {
                        debug!(height, view, %digest, "proposal body missing; fetching it");
                        self.awaiting_validation.insert(digest, height);
                        self.network.request_body(digest);
                    }
                }
            }
            Output::Decide(certificate) => self.on_decide(certificate)?,
            Output::CertifiedAhead(certificate) => {
                // Behind: block sync catches up from the peers' heads.
                debug!(
                    height = certificate.height,
                    head = self.head.height,
                    "a later height is certified; asking peers for their heads"
                );
                self.network.ask_heads();
            }
            Output::Evidence(evidence) => self.on_evidence(evidence)?,
        }
        Ok(())
    }

    /// Records conflicting votes of one validator, once per (height, view, kind, validator):
    /// the core reports every further copy of the conflict, which is neither new nor logged.
    fn on_evidence(&mut self, evidence: consensus::Evidence) -> Result<(), Error> {
        let consensus::Evidence { first, second } = evidence;
        // The core only compares votes of the height it works on, whose set the driver holds.
        let Some(public_key) = self.validators.get(first.validator).copied() else { return Ok(()) };
        let record = rpc::EvidenceRecord {
            public_key,
            first,
            second,
            seen_at_ms: self.now.unix_ms,
            peer: self.delivered_by.map(|peer| peer.to_string()),
        };
        if evidence::save(self.store.as_ref(), &record)? {
            self.metrics.evidence.inc();
            warn!(
                validator = first.validator,
                %public_key,
                height = first.vote.height,
                view = first.vote.view,
                kind = ?first.vote.kind,
                peer = ?record.peer,
                "validator signed conflicting votes; evidence recorded"
            );
        }
        Ok(())
    }

    /// Sends a consensus message to every validator: over gossipsub (a proposal with its block)
    /// and also directly to each validator over request-response, so votes never depend on
    /// gossipsub's send queues, which drop messages under a transaction flood. The core ignores
    /// the duplicate; a validator that misses a block body fetches it by hash.
    fn broadcast(&mut self, message: Message) {
        let me = self.network.local_peer_id();
        for peer in self.validator_peers.iter().flatten().filter(|peer| **peer != me) {
            self.network.send_direct(*peer, message.clone());
        }
        let proposed = match &message {
            Message::PrePrepare(vote) => Some(vote.vote.digest),
            Message::NewView { proposal, .. } => Some(proposal.vote.digest),
            _ => None,
        };
        let gossip = match proposed.and_then(|digest| self.bodies.get(&digest)) {
            Some(proposal) => {
                crate::p2p::protocol::ConsensusGossip::Proposal { message, block: Box::new(proposal.block.clone()) }
            }
            None => crate::p2p::protocol::ConsensusGossip::Message(message),
        };
        self.network.publish(Topic::Consensus, gossip.encode());
    }

    /// Everything that follows a commit, whichever path it came by (decision or sync).
    fn after_commit(&mut self, certified: CertifiedBlock) -> Result<(), Error> {
        let header = certified.block.header.clone();
        let txs = certified.block.transactions.len();
        let bytes: usize = certified.block.transactions.iter().map(|tx| tx.encoded_len()).sum();
        let latency = self.now().saturating_duration_since(self.started_at).as_secs_f64();
        info!(height = header.height, txs, hash = %header.hash(), "committed");
        self.head = header;
        self.started = false;
        self.last_commit_at = self.now();
        self.metrics.block_committed(self.head.height, txs, bytes, latency);
        self.timers.retain(|timer, _| timer.height > self.head.height);
        self.bodies.retain_above(self.head.height);
        self.awaiting_validation.retain(|_, height| *height > self.head.height);
        self.early.retain(|_, (height, _)| *height > self.head.height);
        if self.awaiting_block.as_ref().is_some_and(|certificate| certificate.height <= self.head.height) {
            self.awaiting_block = None;
            self.refused = None;
        }
        // The block may also have closed nonce gaps: those transactions are queued for gossip.
        let dropped = self.mempool.after_commit(self.now())?;
        debug!(dropped, pending = self.mempool.size().0, "mempool pruned");
        self.refresh_validators()?;
        // Nobody listening is fine.
        let _ = self.commits.send(Arc::new(certified));
        Ok(())
    }

    /// Reloads the set for `head + 1`, its members' peer ids, and the admitted peers (every
    /// validator of the current and scheduled sets, plus the observers).
    fn refresh_validators(&mut self) -> Result<(), Error> {
        let next = self.head.height + 1;
        self.validators = self.store.validator_set_for(next)?;
        let schedule = self.store.validator_schedule_at(self.head.height)?;
        let peer_of = |peer_id: &str| peer_id.parse::<PeerId>().ok();
        self.validator_peers = schedule.validators_at(next).iter().map(|info| peer_of(&info.peer_id)).collect();
        let mut admitted: HashSet<PeerId> = self.settings.observers.clone();
        admitted.extend(schedule.entries.iter().flat_map(|(_, set)| set.iter().filter_map(|v| peer_of(&v.peer_id))));
        if admitted != self.admitted {
            info!(peers = admitted.len(), "admitted peers updated");
            self.network.set_admitted(admitted.clone());
            self.admitted = admitted;
        }
        Ok(())
    }

    /// Starts `head + 1` in the core if there is work: a transaction a block could carry. Called
    /// by the main loop after each event, never from inside `feed` (a single validator decides
    /// within `feed`, and starting the next height there would recurse).
    fn maybe_start_height(&mut self) -> Result<(), Error> {
        if !self.started && self.booting.is_none() && self.mempool.has_ready()? {
            self.start_height()?;
        }
        Ok(())
    }

    fn start_height(&mut self) -> Result<(), Error> {
        if self.started {
            return Ok(());
        }
        let height = self.head.height + 1;
        // The certificate alone: reading the whole block would re-check its body every height.
        let previous = if self.head.height == 0 {
            None
        } else {
            self.store.certified_header(self.head.height)?.map(|(_, certificate)| certificate)
        };
        self.started = true;
        self.started_at = self.now();
        debug!(height, "starting height");
        self.feed(Input::StartHeight { height, validators: self.validators.clone(), previous })?;
        // A decision may have arrived with the inputs (a peer's certificate): commit follows.
        Ok(())
    }

    /// When the driver next has something to do by itself (a [`Event::Tick`] is due).
    pub fn next_deadline(&self) -> Instant {
        let far = self.now() + Duration::from_secs(3600);
        let timers = self.timers.values().chain(self.early.values().map(|(_, at)| at)).min().copied().unwrap_or(far);
        let idle = match (self.started, self.settings.empty_block_interval) {
            (false, Some(interval)) => self.last_commit_at + interval,
            _ => far,
        };
        let periodic = self.next_heads.min(self.relay.next_deadline(self.mempool.outbox_len()));
        timers.min(idle).min(periodic).min(self.booting.unwrap_or(far))
    }

    fn on_deadline(&mut self) -> Result<(), Error> {
        let now = self.now();
        if now >= self.next_heads {
            self.next_heads = now + HEADS_INTERVAL;
            self.network.ask_heads();
            self.refetch_missing_bodies();
        }
        self.relay.run(now, self.last_commit_at, &self.mempool, &self.network)?;
        if !self.started
            && self.settings.empty_block_interval.is_some_and(|interval| now >= self.last_commit_at + interval)
        {
            self.start_height()?;
        }
        let due: Vec<Timer> = self.timers.iter().filter(|(_, at)| **at <= now).map(|(timer, _)| *timer).collect();
        for timer in due {
            self.timers.remove(&timer);
            self.feed(Input::TimerFired(timer))?;
        }
        self.recheck_early(now)
    }

    fn on_request(&mut self, request: Request) -> Result<(), Error> {
        match request {
            Request::Status(reply) => {
                let _ = reply.send(Status {
                    view: self.replica.view(),
                    validator: self.validators.index_of(&self.settings.key.public_key()).is_some(),
                    syncing: self.sync.is_syncing(),
                });
            }
        }
        Ok(())
    }

    /// Asks peers again for block bodies still missing: a decided block's (the core ignores
    /// timers once it decided, so without its body this node would wait forever; one it refused
    /// only when its retry is due) and those of proposals waiting for validation. A first
    /// request can fail under load, or be answered first by a peer that lies.
    fn refetch_missing_bodies(&self) {
        let now = self.now();
        let missing = self
            .awaiting_block
            .iter()
            .map(|certificate| certificate.digest)
            .filter(|digest| self.refused.is_none_or(|(refused, until)| refused != *digest || now >= until));
        for digest in missing.chain(self.awaiting_validation.keys().copied()) {
            debug!(%digest, "asking peers again for a missing block body");
            self.network.request_body(digest);
        }
    }
}

fn height_gauge(height: Height) -> i64 {
    i64::try_from(height).unwrap_or(i64::MAX)
}
