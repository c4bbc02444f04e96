//! libp2p networking: TCP + Noise + Yamux, identify, ping, Kademlia discovery, gossipsub with
//! manual validation, and a request-response protocol for block sync. Runs as one tokio task;
//! the driver talks to it through a [`NetworkHandle`] and receives [`NetworkEvent`]s.
//!
//! Admitted peers can still flood, so before anything reaches the driver each peer's consensus
//! messages and requests are charged to its [`budget`] (over it: dropped, and the peer stays
//! muted while it keeps on), and consensus messages seen moments ago are dropped by a hash of
//! their bytes ([`seen`]) before the driver spends signature checks on them. Heads and block
//! ranges are read from the store by a [`serve`] task, never on the swarm loop.
//!
//! Permissioned: the allow list holds the peer ids the ledger admits (validators, current and
//! scheduled) plus configured observers; connections from or to anyone else are refused at the
//! connection level, and the driver replaces the list whenever the validator set changes.

mod behaviour;
pub mod budget;
pub mod protocol;
pub mod seen;
pub mod serve;
#[cfg(test)]
mod test_support;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use consensus::{ChainId, Digest, Height, Message};
use futures::StreamExt;
use ledger::{Block, BlockReader, CertifiedBlock};
use libp2p::{
    Multiaddr, PeerId, Swarm, gossipsub, identify,
    identity::Keypair,
    kad,
    multiaddr::Protocol,
    noise,
    request_response::{self, ResponseChannel},
    swarm::SwarmEvent,
    tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

pub use behaviour::{Limits, consensus_topic, transactions_topic};
pub use gossipsub::{MessageAcceptance, MessageId};
use protocol::{Request, Response};

use behaviour::{Behaviour, BehaviourEvent};
use budget::{Admission, Budgets};
use seen::{Path, SeenMessages};

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport or a behaviour could not be built.
    #[error("cannot build the libp2p swarm: {0}")]
    Build(String),
    /// The listen address is unusable.
    #[error("cannot listen on {address}: {message}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        message: String,
    },
}

/// How to run the network.
pub struct Settings {
    /// The node's libp2p identity.
    pub keypair: Keypair,
    /// The chain (topics and protocol names include it).
    pub chain_id: ChainId,
    /// Address to listen on.
    pub listen: Multiaddr,
    /// The address other hosts dial to reach this node (without `/p2p/`), if not the listen
    /// addresses: announced to peers (identify, and through them Kademlia) instead of them, since
    /// a wildcard or NAT-ed listen address means nothing on another host.
    pub external_address: Option<Multiaddr>,
    /// Peers dialled at start and re-dialled while disconnected (each ends in `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Peer ids admitted at start.
    pub admitted: HashSet<PeerId>,
    /// Connection and message limits.
    pub limits: Limits,
}

/// Which gossip topic a message came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Consensus messages and proposals.
    Consensus,
    /// Transactions.
    Transactions,
}

/// What the network tells the driver. `R` is where the answer to a body request goes (a
/// libp2p response channel; something else on a simulated network).
#[derive(Debug)]
pub enum NetworkEvent<R = ResponseChannel<Response>> {
    /// A gossip message; the driver must answer [`NetworkHandle::validated`] (it is forwarded
    /// only if accepted).
    Gossip {
        /// Its topic.
        topic: Topic,
        /// Its id.
        id: MessageId,
        /// The peer that forwarded it.
        source: PeerId,
        /// Its payload.
        data: Vec<u8>,
    },
    /// A consensus message a peer sent to this node alone.
    Direct {
        /// The sender.
        peer: PeerId,
        /// The message (not yet verified).
        message: Box<Message>,
    },
    /// A peer asks for a proposed block's body; answer with [`NetworkHandle::respond`].
    BodyWanted {
        /// The block's header hash.
        digest: Digest,
        /// Where the answer goes.
        channel: R,
    },
    /// A peer's head height.
    PeerHead {
        /// The peer.
        peer: PeerId,
        /// Its head.
        head: Height,
    },
    /// Blocks a peer sent for [`NetworkHandle::request_blocks`].
    Blocks {
        /// The peer.
        peer: PeerId,
        /// Consecutive certified blocks (not yet verified).
        blocks: Vec<CertifiedBlock>,
    },
    /// A block body a peer sent for [`NetworkHandle::request_body`].
    Body {
        /// The peer.
        peer: PeerId,
        /// The block, if it had it (not yet verified).
        block: Option<Box<Block>>,
    },
    /// A block request ([`NetworkHandle::request_blocks`]) failed: timeout, refused,
    /// disconnected, or answered with something else than blocks.
    RequestFailed {
        /// The peer.
        peer: PeerId,
    },
    /// A peer connected (first connection).
    Connected(PeerId),
    /// A peer's last connection closed.
    Disconnected(PeerId),
}

/// What the network delivers, on two channels so the driver can serve consensus before
/// transaction gossip (a flood of transactions must not starve votes).
pub struct Events {
    /// Everything but transaction gossip.
    pub consensus: mpsc::Receiver<NetworkEvent>,
    /// Transaction gossip.
    pub transactions: mpsc::Receiver<NetworkEvent>,
}

/// A connected peer, as `net_peers` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: PeerId,
    /// The address of one connection.
    pub address: Multiaddr,
    /// Its gossipsub score (negative after rejected messages).
    pub score: Option<f64>,
}

enum Command {
    Publish { topic: Topic, data: Vec<u8> },
    Validated { id: MessageId, source: PeerId, acceptance: MessageAcceptance },
    SendDirect { peer: PeerId, message: Message },
    AskHeads,
    RequestBlocks { peer: PeerId, from: Height, count: u32 },
    RequestBody { digest: Digest },
    Respond { channel: ResponseChannel<Response>, response: Response },
    Call { peer: PeerId, request: Request, reply: oneshot::Sender<Response> },
    SetAdmitted(HashSet<PeerId>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    ListenAddresses(oneshot::Sender<Vec<Multiaddr>>),
}

/// The driver's side of the network. Cheap to clone; every method returns at once.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::UnboundedSender<Command>,
    local_peer_id: PeerId,
    max_message_bytes: usize,
}

impl NetworkHandle {
    fn send(&self, command: Command) {
        // The network task only ends at shutdown; commands sent after that do not matter.
        let _ = self.commands.send(command);
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Gossips a payload on a topic.
    pub fn publish(&self, topic: Topic, data: Vec<u8>) {
        self.send(Command::Publish { topic, data });
    }

    /// The verdict on a gossip message: accepted ones are forwarded; rejected ones count against
    /// the peer that sent them.
    pub fn validated(&self, id: MessageId, source: PeerId, acceptance: MessageAcceptance) {
        self.send(Command::Validated { id, source, acceptance });
    }

    /// Sends a consensus message to one peer.
    pub fn send_direct(&self, peer: PeerId, message: Message) {
        self.send(Command::SendDirect { peer, message });
    }

    /// Asks every connected peer for its head ([`NetworkEvent::PeerHead`] answers).
    pub fn ask_heads(&self) {
        self.send(Command::AskHeads);
    }

    /// Asks `peer` for certified blocks from `from` on.
    pub fn request_blocks(&self, peer: PeerId, from: Height, count: u32) {
        self.send(Command::RequestBlocks { peer, from, count });
    }

    /// Asks every connected peer for a proposed block by its hash.
    pub fn request_body(&self, digest: Digest) {
        self.send(Command::RequestBody { digest });
    }

    /// Asks `peer` and returns its answer to the caller (not to the driver); `None` if the
    /// request failed (timeout, refused, disconnected). The answer is the peer's, unchecked.
    pub async fn call(&self, peer: PeerId, request: Request) -> Option<Response> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Call { peer, request, reply });
        answer.await.ok()
    }

    /// Answers a [`NetworkEvent::BodyWanted`].
    pub fn respond(&self, channel: ResponseChannel<Response>, response: Response) {
        self.send(Command::Respond { channel, response });
    }

    /// Replaces the admitted peers; connections to peers no longer admitted are closed.
    pub fn set_admitted(&self, peers: HashSet<PeerId>) {
        self.send(Command::SetAdmitted(peers));
    }

    /// The largest message this node sends or accepts, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Peers(reply));
        answer.await.unwrap_or_default()
    }

    /// The addresses the node listens on (with the port the OS picked, if any).
    pub async fn listen_addresses(&self) -> Vec<Multiaddr> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ListenAddresses(reply));
        answer.await.unwrap_or_default()
    }
}

/// Capacity of the event channel to the driver: when the driver falls behind, the network
/// stops reading from peers instead of buffering without bound.
const EVENT_CAPACITY: usize = 4096;
/// Gossip refused because every peer's send queue was full is retried this often...
const RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// ...keeping at most this many messages.
const RETRY_MAX: usize = 4096;
/// How often disconnected bootstrap peers are dialled again and Kademlia refreshed.
const REDIAL_INTERVAL: Duration = Duration::from_secs(3);
/// Peers are asked for their heads at most this often, however often the driver asks: it asks
/// on every message from a height ahead, and a peer sending many would otherwise make this node
/// flood every peer with requests (and go over their budgets, losing their blocks).
const HEADS_INTERVAL_MIN: Duration = Duration::from_millis(250);

/// Starts the network task. Returns once it listens; it runs until every handle is dropped.
pub async fn start(
    settings: Settings,
    store: Arc<dyn BlockReader + Send + Sync>,
) -> Result<(NetworkHandle, Events), Error> {
    let chain_id = settings.chain_id.clone();
    let limits = settings.limits;
    let local_peer_id = settings.keypair.public().to_peer_id();
    let announce_listen = settings.external_address.is_none();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(settings.keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|error| Error::Build(error.to_string()))?
        .with_behaviour(|key| {
            Behaviour::new(key, &chain_id, limits, announce_listen)
                .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> { Box::new(error) })
        })
        .map_err(|error| Error::Build(error.to_string()))?
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    for peer in &settings.admitted {
        swarm.behaviour_mut().allowed.allow_peer(*peer);
    }
    if let Some(address) = settings.external_address.clone() {
        info!(%address, "announcing the external address");
        swarm.add_external_address(address);
    }
    swarm
        .listen_on(settings.listen.clone())
        .map_err(|error| Error::Listen { address: settings.listen.clone(), message: error.to_string() })?;
    // Wait for the listener so callers (and tests) can read the bound port.
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, peer = %local_peer_id, "listening");
                break;
            }
            SwarmEvent::ListenerError { error, .. } | SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                return Err(Error::Listen { address: settings.listen, message: error.to_string() });
            }
            _ => {}
        }
    }
    let bootstrap: Vec<(PeerId, Multiaddr)> = settings
        .bootstrap
        .iter()
        .filter_map(|address| match address.iter().last() {
            Some(Protocol::P2p(peer)) => Some((peer, address.clone())),
            _ => None,
        })
        .filter(|(peer, _)| *peer != local_peer_id)
        .collect();
    for (peer, address) in &bootstrap {
        swarm.behaviour_mut().kademlia.add_address(peer, address.clone());
    }
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let (events, consensus_events) = mpsc::channel(EVENT_CAPACITY);
    let (tx_events, transaction_events) = mpsc::channel(EVENT_CAPACITY);
    let (server, served) = serve::spawn(store, limits.max_message_bytes);
    let task = NetworkTask {
        swarm,
        chain_id: settings.chain_id,
        events,
        tx_events,
        bootstrap,
        pending: HashMap::new(),
        calls: HashMap::new(),
        addresses: HashMap::new(),
        retry: std::collections::VecDeque::new(),
        server,
        budgets: Budgets::new(budget::Settings::for_message_size(limits.max_message_bytes)),
        seen: SeenMessages::new(seen::CAPACITY, seen::EXPIRY),
        heads_asked_at: None,
    };
    tokio::spawn(task.run(command_receiver, served));
    Ok((
        NetworkHandle { commands, local_peer_id, max_message_bytes: limits.max_message_bytes },
        Events { consensus: consensus_events, transactions: transaction_events },
    ))
}

/// The kind of an outstanding request, so only the answer asked for reaches the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    Status,
    Blocks,
    Body,
}

/// What becomes of an inbound consensus message.
enum Intake {
    /// New and within its sender's budget: on to the driver.
    Fresh,
    /// The same bytes came moments ago.
    Duplicate,
    /// Over its sender's budget.
    OverBudget,
}

/// Reads served off the swarm loop; their answers go back through a response channel.
type ServeJobs = mpsc::Sender<serve::Job<ResponseChannel<Response>>>;
type ServedReads = mpsc::Receiver<serve::Served<ResponseChannel<Response>>>;

struct NetworkTask {
    swarm: Swarm<Behaviour>,
    chain_id: ChainId,
    events: mpsc::Sender<NetworkEvent>,
    tx_events: mpsc::Sender<NetworkEvent>,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Outstanding requests whose answers the driver wants, by request id.
    pending: HashMap<request_response::OutboundRequestId, (PeerId, Asked)>,
    /// Outstanding [`NetworkHandle::call`]s, by request id: dropping the sender fails the call.
    calls: HashMap<request_response::OutboundRequestId, oneshot::Sender<Response>>,
    /// The remote address of each connected peer.
    addresses: HashMap<PeerId, Multiaddr>,
    /// Gossip waiting for room in the peers' send queues.
    retry: std::collections::VecDeque<(Topic, Vec<u8>)>,
    /// Where heads and block ranges are read for peers.
    server: ServeJobs,
    /// What each peer may still send.
    budgets: Budgets,
    /// Consensus messages received moments ago.
    seen: SeenMessages,
    /// When peers were last asked for their heads.
    heads_asked_at: Option<Instant>,
}

impl NetworkTask {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, mut served: ServedReads) {
        let mut redial = tokio::time::interval(REDIAL_INTERVAL);
        let mut retry = tokio::time::interval(RETRY_INTERVAL);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => {
                    if let Some(event) = self.swarm_event(event) {
                        let channel = match &event {
                            NetworkEvent::Gossip { topic: Topic::Transactions, .. } => &self.tx_events,
                            _ => &self.events,
                        };
                        if channel.send(event).await.is_err() {
                            break;
                        }
                    }
                }
                Some(served) = served.recv() => self.respond_served(served),
                _ = redial.tick() => self.redial(),
                _ = retry.tick(), if !self.retry.is_empty() => self.retry_publishing(),
            }
        }
        debug!("network task stopped");
    }

    /// Publishes, keeping what the peers' send queues could not take for a later retry (a
    /// dropped transaction batch would otherwise reach only this node's mempool).
    fn publish(&mut self, topic: Topic, data: Vec<u8>) {
        let gossip_topic = match topic {
            Topic::Consensus => consensus_topic(&self.chain_id),
            Topic::Transactions => transactions_topic(&self.chain_id),
        };
        match self.swarm.behaviour_mut().gossipsub.publish(gossip_topic, data.clone()) {
            Ok(_) => {}
            Err(gossipsub::PublishError::AllQueuesFull(_)) => {
                if self.retry.len() >= RETRY_MAX {
                    warn!("gossip retry queue full; dropping the oldest message");
                    self.retry.pop_front();
                }
                self.retry.push_back((topic, data));
            }
            // With no peer subscribed yet (alone, or just started) there is nobody to tell;
            // consensus retransmits what matters on timeouts.
            Err(error) => debug!(%error, "gossip not published"),
        }
    }

    /// Publishes what waited for room in the send queues, in order.
    fn retry_publishing(&mut self) {
        for _ in 0..self.retry.len() {
            let Some((topic, data)) = self.retry.pop_front() else { break };
            self.publish(topic, data);
        }
    }

    fn redial(&mut self) {
        for (peer, address) in self.bootstrap.clone() {
            if !self.swarm.is_connected(&peer) && self.swarm.behaviour().allowed.allowed_peers().contains(&peer) {
                let _ = self.swarm.dial(address);
            }
        }
        if self.swarm.connected_peers().next().is_some() {
            let _ = self.swarm.behaviour_mut().kademlia.bootstrap();
        }
    }

    fn command(&mut self, command: Command) {
        let behaviour = self.swarm.behaviour_mut();
        match command {
            Command::Publish { topic, data } => self.publish(topic, data),
            Command::Validated { id, source, acceptance } => {
                behaviour.gossipsub.report_message_validation_result(&id, &source, acceptance);
            }
            Command::SendDirect { peer, message } => {
                if self.swarm.is_connected(&peer) {
                    self.swarm.behaviour_mut().request.send_request(&peer, Request::Consensus(Box::new(message)));
                }
            }
            Command::AskHeads => {
                let now = Instant::now();
                if self.heads_asked_at.is_some_and(|at| now.saturating_duration_since(at) < HEADS_INTERVAL_MIN) {
                    return;
                }
                self.heads_asked_at = Some(now);
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for peer in peers {
                    let id = self.swarm.behaviour_mut().request.send_request(&peer, Request::Status);
                    self.pending.insert(id, (peer, Asked::Status));
                }
            }
            Command::RequestBlocks { peer, from, count } => {
                let id = behaviour.request.send_request(&peer, Request::Blocks { from, count });
                self.pending.insert(id, (peer, Asked::Blocks));
            }
            Command::RequestBody { digest } => {
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for peer in peers {
                    let id = self.swarm.behaviour_mut().request.send_request(&peer, Request::Body(digest));
                    self.pending.insert(id, (peer, Asked::Body));
                }
            }
            Command::Respond { channel, response } => {
                let _ = behaviour.request.send_response(channel, response);
            }
            Command::Call { peer, request, reply } => {
                // Not connected: the reply is dropped and the call fails at once.
                if self.swarm.is_connected(&peer) {
                    let id = self.swarm.behaviour_mut().request.send_request(&peer, request);
                    self.calls.insert(id, reply);
                }
            }
            Command::SetAdmitted(peers) => {
                let current: Vec<PeerId> = behaviour.allowed.allowed_peers().iter().copied().collect();
                for peer in current.iter().filter(|peer| !peers.contains(peer)) {
                    info!(%peer, "peer no longer admitted");
                    behaviour.allowed.disallow_peer(*peer);
                }
                for peer in &peers {
                    behaviour.allowed.allow_peer(*peer);
                }
                self.budgets.retain(|peer| peers.contains(peer));
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_infos());
            }
            Command::ListenAddresses(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let mut infos: Vec<PeerInfo> = self
            .swarm
            .connected_peers()
            .map(|peer| PeerInfo {
                peer_id: *peer,
                address: self.addresses.get(peer).cloned().unwrap_or_else(Multiaddr::empty),
                score: self.swarm.behaviour().gossipsub.peer_score(peer),
            })
            .collect();
        infos.sort_by_key(|info| info.peer_id);
        infos
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) -> Option<NetworkEvent> {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                self.addresses.insert(peer_id, endpoint.get_remote_address().clone());
                (num_established.get() == 1).then(|| {
                    info!(peer = %peer_id, address = %endpoint.get_remote_address(), "peer connected");
                    NetworkEvent::Connected(peer_id)
                })
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                info!(peer = %peer_id, "peer disconnected");
                self.addresses.remove(&peer_id);
                Some(NetworkEvent::Disconnected(peer_id))
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                debug!(address = %send_back_addr, %error, "incoming connection refused");
                None
            }
            SwarmEvent::Behaviour(event) => self.behaviour_event(event),
            _ => None,
        }
    }

    fn behaviour_event(&mut self, event: BehaviourEvent) -> Option<NetworkEvent> {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                let topic = if message.topic == consensus_topic(&self.chain_id).hash() {
                    Topic::Consensus
                } else if message.topic == transactions_topic(&self.chain_id).hash() {
                    Topic::Transactions
                } else {
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Reject,
                    );
                    return None;
                };
                if topic == Topic::Consensus {
                    // Charged to the author (gossipsub messages are signed): a peer forwarding
                    // another's flood is not at fault, and honest peers forward only what they
                    // accepted within the author's budget.
                    let author = message.source.unwrap_or(propagation_source);
                    match self.admit_consensus(author, Path::Gossip, &message.data, Instant::now()) {
                        Intake::Fresh => {}
                        // Not forwarded, and no score penalty: a forwarder may be honest, and an
                        // honest author's retransmission is not a fault.
                        Intake::Duplicate | Intake::OverBudget => {
                            self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                                &message_id,
                                &propagation_source,
                                MessageAcceptance::Ignore,
                            );
                            return None;
                        }
                    }
                }
                Some(NetworkEvent::Gossip { topic, id: message_id, source: propagation_source, data: message.data })
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for address in info.listen_addrs {
                    self.swarm.behaviour_mut().kademlia.add_address(&peer_id, address);
                }
                None
            }
            BehaviourEvent::Kademlia(kad::Event::RoutingUpdated { peer, addresses, .. }) => {
                // Discovery: dial every admitted peer Kademlia learns about.
                if !self.swarm.is_connected(&peer) && self.swarm.behaviour().allowed.allowed_peers().contains(&peer) {
                    let _ = self.swarm.dial(addresses.first().clone());
                }
                None
            }
            BehaviourEvent::Request(event) => self.request_event(event),
            _ => None,
        }
    }

    fn request_event(&mut self, event: request_response::Event<Request, Response>) -> Option<NetworkEvent> {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => self.serve(peer, request, channel),
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.calls.remove(&request_id) {
                        let _ = reply.send(response);
                        return None;
                    }
                    let asked = self.pending.remove(&request_id).map(|(_, asked)| asked);
                    match (asked, response) {
                        (Some(Asked::Status), Response::Status { head }) => Some(NetworkEvent::PeerHead { peer, head }),
                        (Some(Asked::Blocks), Response::Blocks(blocks)) => Some(NetworkEvent::Blocks { peer, blocks }),
                        (Some(Asked::Body), Response::Body(block)) => Some(NetworkEvent::Body { peer, block }),
                        (None, Response::Received) => None,
                        // An answer to another question (a head in reply to a vote, say) is
                        // dropped; for a block request it counts as a failed one.
                        (asked, _) => {
                            debug!(%peer, ?asked, "answer of the wrong kind");
                            (asked == Some(Asked::Blocks)).then_some(NetworkEvent::RequestFailed { peer })
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                debug!(%peer, %error, "request failed");
                if self.calls.remove(&request_id).is_some() {
                    return None;
                }
                let asked = self.pending.remove(&request_id).map(|(_, asked)| asked);
                (asked == Some(Asked::Blocks)).then_some(NetworkEvent::RequestFailed { peer })
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound request failed");
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }

    /// Checks a consensus message against its sender's budget, then against the messages seen
    /// moments ago, before the driver spends signature checks on it.
    fn admit_consensus(&mut self, peer: PeerId, path: Path, bytes: &[u8], now: Instant) -> Intake {
        if let Admission::OverBudget { first } = self.budgets.consensus(peer, bytes.len(), now) {
            log_over_budget(peer, "consensus messages", first);
            return Intake::OverBudget;
        }
        if self.seen.first_sight(path, bytes, now) { Intake::Fresh } else { Intake::Duplicate }
    }

    /// Whether `peer` may make another request now.
    fn request_admitted(&mut self, peer: PeerId, now: Instant) -> bool {
        match self.budgets.request(peer, now) {
            Admission::Admitted => true,
            Admission::OverBudget { first } => {
                log_over_budget(peer, "requests", first);
                false
            }
        }
    }

    /// Routes a peer's request: consensus messages and proposal fetches to the driver, reads of
    /// the chain to the serving task. Dropping a request's channel unanswered (over budget, or
    /// the serving queue full) fails it on the asker's side.
    fn serve(&mut self, peer: PeerId, request: Request, channel: ResponseChannel<Response>) -> Option<NetworkEvent> {
        let now = Instant::now();
        let read = match request {
            Request::Consensus(message) => {
                let bytes = borsh::to_vec(&message).expect("encoding to a Vec cannot fail");
                let intake = self.admit_consensus(peer, Path::Direct, &bytes, now);
                if let Intake::Fresh | Intake::Duplicate = intake {
                    let _ = self.swarm.behaviour_mut().request.send_response(channel, Response::Received);
                }
                return matches!(intake, Intake::Fresh).then_some(NetworkEvent::Direct { peer, message });
            }
            Request::Body(digest) => {
                return self.request_admitted(peer, now).then_some(NetworkEvent::BodyWanted { digest, channel });
            }
            Request::Status => serve::Read::Head,
            Request::Blocks { from, count } => serve::Read::Blocks { from, count },
            Request::CertifiedHeads { at } => serve::Read::CertifiedHeads { at },
        };
        if self.request_admitted(peer, now)
            && let Err(error) = self.server.try_send(serve::Job { peer, read, reply: channel })
        {
            debug!(%peer, %error, "not serving a read: the queue is full");
        }
        None
    }

    /// Sends a read's answer and charges its size to the asker.
    fn respond_served(&mut self, served: serve::Served<ResponseChannel<Response>>) {
        self.budgets.served(served.peer, served.bytes, Instant::now());
        if let Some(response) = served.response {
            let _ = self.swarm.behaviour_mut().request.send_response(served.reply, response);
        }
    }
}

/// Logs a peer going over budget once per flood; every further drop at debug level.
fn log_over_budget(peer: PeerId, traffic: &str, first: bool) {
    if first {
        warn!(%peer, traffic, "peer over budget: dropping its traffic until it slows down");
    } else {
        debug!(%peer, traffic, "peer over budget: dropped");
    }
}

#[cfg(test)]
#[path = "network_test.rs"]
mod tests;
