//! libp2p networking: TCP + Noise + Yamux, identify, ping, Kademlia discovery, gossipsub with
//! manual validation, and a request-response protocol for block sync. Runs as one tokio task;
//! the driver talks to it through a [`NetworkHandle`] and receives [`NetworkEvent`]s.
//!
//! Permissioned: the allow list holds the peer ids the ledger admits (validators, current and
//! scheduled) plus configured observers; connections from or to anyone else are refused at the
//! connection level, and the driver replaces the list whenever the validator set changes.

mod behaviour;
pub mod protocol;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
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
use protocol::{Request, Response, SYNC_BATCH_MAX};

use behaviour::{Behaviour, BehaviourEvent};

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

/// What the network tells the driver.
#[derive(Debug)]
pub enum NetworkEvent {
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
    /// A peer asks for a proposed block; answer with [`NetworkHandle::respond`].
    ProposalWanted {
        /// The block's header hash.
        digest: Digest,
        /// Where the answer goes.
        channel: ResponseChannel<Response>,
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
    /// A block a peer sent for [`NetworkHandle::request_proposal`].
    Proposal {
        /// The peer.
        peer: PeerId,
        /// The block, if it had it (not yet verified).
        block: Option<Box<Block>>,
    },
    /// A request to a peer failed (timeout, refused, disconnected).
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
    RequestProposal { digest: Digest },
    Respond { channel: ResponseChannel<Response>, response: Response },
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
    pub fn request_proposal(&self, digest: Digest) {
        self.send(Command::RequestProposal { digest });
    }

    /// Answers a [`NetworkEvent::ProposalWanted`].
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

/// Starts the network task. Returns once it listens; it runs until every handle is dropped.
pub async fn start(
    settings: Settings,
    store: Arc<dyn BlockReader + Send + Sync>,
) -> Result<(NetworkHandle, Events), Error> {
    let chain_id = settings.chain_id.clone();
    let limits = settings.limits;
    let local_peer_id = settings.keypair.public().to_peer_id();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(settings.keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|error| Error::Build(error.to_string()))?
        .with_behaviour(|key| {
            Behaviour::new(key, &chain_id, limits)
                .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> { Box::new(error) })
        })
        .map_err(|error| Error::Build(error.to_string()))?
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    for peer in &settings.admitted {
        swarm.behaviour_mut().allowed.allow_peer(*peer);
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
    let task = NetworkTask {
        swarm,
        chain_id: settings.chain_id,
        store,
        events,
        tx_events,
        bootstrap,
        pending: HashMap::new(),
        addresses: HashMap::new(),
        retry: std::collections::VecDeque::new(),
        max_message_bytes: limits.max_message_bytes,
    };
    tokio::spawn(task.run(command_receiver));
    Ok((
        NetworkHandle { commands, local_peer_id, max_message_bytes: limits.max_message_bytes },
        Events { consensus: consensus_events, transactions: transaction_events },
    ))
}

struct NetworkTask {
    swarm: Swarm<Behaviour>,
    chain_id: ChainId,
    store: Arc<dyn BlockReader + Send + Sync>,
    events: mpsc::Sender<NetworkEvent>,
    tx_events: mpsc::Sender<NetworkEvent>,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Outstanding requests whose answers the driver wants, by request id.
    pending: HashMap<request_response::OutboundRequestId, PeerId>,
    /// The remote address of each connected peer.
    addresses: HashMap<PeerId, Multiaddr>,
    /// Gossip waiting for room in the peers' send queues.
    retry: std::collections::VecDeque<(Topic, Vec<u8>)>,
    max_message_bytes: usize,
}

impl NetworkTask {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
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
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for peer in peers {
                    let id = self.swarm.behaviour_mut().request.send_request(&peer, Request::Status);
                    self.pending.insert(id, peer);
                }
            }
            Command::RequestBlocks { peer, from, count } => {
                let id = behaviour.request.send_request(&peer, Request::Blocks { from, count });
                self.pending.insert(id, peer);
            }
            Command::RequestProposal { digest } => {
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for peer in peers {
                    let id = self.swarm.behaviour_mut().request.send_request(&peer, Request::Proposal(digest));
                    self.pending.insert(id, peer);
                }
            }
            Command::Respond { channel, response } => {
                let _ = behaviour.request.send_response(channel, response);
            }
            Command::SetAdmitted(peers) => {
                let current: Vec<PeerId> = behaviour.allowed.allowed_peers().iter().copied().collect();
                for peer in current.iter().filter(|peer| !peers.contains(peer)) {
                    info!(%peer, "peer no longer admitted");
                    behaviour.allowed.disallow_peer(*peer);
                }
                for peer in peers {
                    behaviour.allowed.allow_peer(peer);
                }
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
                    self.pending.remove(&request_id);
                    match response {
                        Response::Status { head } => Some(NetworkEvent::PeerHead { peer, head }),
                        Response::Blocks(blocks) => Some(NetworkEvent::Blocks { peer, blocks }),
                        Response::Proposal(block) => Some(NetworkEvent::Proposal { peer, block }),
                        Response::Received => None,
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                debug!(%peer, %error, "request failed");
                self.pending.remove(&request_id).map(|_| NetworkEvent::RequestFailed { peer })
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound request failed");
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }

    /// Answers what the store can answer here; hands the rest to the driver.
    fn serve(&mut self, peer: PeerId, request: Request, channel: ResponseChannel<Response>) -> Option<NetworkEvent> {
        let response = match request {
            Request::Status => match self.store.head() {
                Ok(head) => Response::Status { head: head.height },
                Err(error) => {
                    warn!(%error, "cannot read the head for a peer");
                    return None;
                }
            },
            Request::Blocks { from, count } => Response::Blocks(self.read_blocks(from, count)),
            Request::Proposal(digest) => return Some(NetworkEvent::ProposalWanted { digest, channel }),
            Request::Consensus(message) => {
                let _ = self.swarm.behaviour_mut().request.send_response(channel, Response::Received);
                return Some(NetworkEvent::Direct { peer, message });
            }
        };
        let _ = self.swarm.behaviour_mut().request.send_response(channel, response);
        None
    }

    /// Consecutive certified blocks from `from`, within the batch and size limits.
    fn read_blocks(&self, from: Height, count: u32) -> Vec<CertifiedBlock> {
        let budget = self.max_message_bytes.saturating_sub(1024);
        let (mut blocks, mut bytes) = (Vec::new(), 0usize);
        let count = u64::from(count.min(SYNC_BATCH_MAX));
        for height in from.max(1)..from.max(1).saturating_add(count) {
            let block = match self.store.block(height) {
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
        blocks
    }
}
