//! The whole-node simulation: `n` complete nodes (the driver with its mempool, block sync and
//! ledger execution, over `MemStore`) on a seeded simulated network in virtual time, with
//! clients submitting transfers, and faults: drops, duplicates, delays, partitions, clock
//! skew, and crashes with a restart from the persisted store only.
//!
//! Everything runs on one thread from one seed, so a seed replays exactly (the same trace
//! hash). Checked while it runs: agreement block by block (the consensus simulation's checker),
//! validity (only proposed blocks are committed), no honest double-sign, no honest gossip
//! rejected by an honest node. Checked at the end: every acknowledged transfer committed
//! exactly once on every node, one chain on every node, `audit_chain` of every store, and
//! liveness (all of it by the deadline, once the network is stable after `gst_ms`).

mod byzantine;
pub(crate) mod network;
mod tests;

// The consensus simulation's invariant checkers, shared rather than copied.
#[allow(dead_code, unused_imports)]
#[path = "../../../consensus/tests/sim/invariants/mod.rs"]
mod invariants;

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet, HashMap},
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use consensus::{ChainId, Digest, Height, Message, SigningKey};
use ledger::{
    Address, BlockReader, Genesis, GenesisAccount, MemStore, Params, Payload, Role, Transaction, ValidatorInfo,
    audit::audit_chain,
};
use libp2p::PeerId;

use crate::{
    driver::{self, Driver, Event, Now},
    mempool::{
        MempoolConfig, MempoolHandle, Origin,
        admission::{CheckedGossip, admit_gossip, decode_tx_gossip},
    },
    metrics::Metrics,
    p2p::{MessageAcceptance, MessageId, NetworkEvent, Topic, protocol::ConsensusGossip, protocol::Response},
};

pub use byzantine::Behaviour;
pub use invariants::Violation;
use network::{NodeIndex, Outgoing, SimNetwork};

/// Block timestamps start here (virtual time 0).
const GENESIS_TIME_MS: u64 = 1_700_000_000_000;
/// A block request whose request or answer is lost fails after this long.
const REQUEST_TIMEOUT_MS: u64 = 2_000;
/// A client asks again for a transfer not committed this long after it last sent it.
const RESUBMIT_AFTER_MS: u64 = 3_000;
/// How often the end condition is checked.
const SETTLED_CHECK_MS: u64 = 250;
/// Ticks of one node at one instant before the run counts as a busy loop.
const TICKS_AT_ONCE_MAX: u32 = 1_000;
/// The message size limit every simulated node has.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// One run's configuration, all derived from its seed and fault mix.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The fault mix's name.
    pub name: &'static str,
    /// The seed.
    pub seed: u64,
    /// Validators.
    pub n: usize,
    /// Before `gst_ms`: the chance a message is lost.
    pub drop_rate: f64,
    /// The chance a message arrives twice.
    pub duplicate_rate: f64,
    /// Messages take 1 to this many milliseconds.
    pub max_delay_ms: u64,
    /// Before `gst_ms`: the network splits and heals at random.
    pub partitions: bool,
    /// Before `gst_ms`: a node (at most f at once) crashes and restarts from its store.
    pub crashes: bool,
    /// Each node's wall clock is off by up to this much, either way.
    pub clock_skew_ms: u64,
    /// Accounts submitting transfers.
    pub clients: usize,
    /// Transfers each client submits, in nonce order.
    pub transfers_per_client: u64,
    /// When the network becomes stable: no more losses, partitions or crashes.
    pub gst_ms: u64,
    /// Everything must be done by then.
    pub deadline_ms: u64,
    /// A validator that lies, and how (at most f = 1 of 4).
    pub byzantine: Option<(NodeIndex, Behaviour)>,
}

impl Scenario {
    /// The scenario of a fault mix for a seed.
    pub fn of_mix(name: &'static str, seed: u64) -> Scenario {
        let mut scenario = Scenario {
            name,
            seed,
            n: 4,
            drop_rate: 0.05,
            duplicate_rate: 0.05,
            max_delay_ms: 40,
            partitions: false,
            crashes: false,
            clock_skew_ms: 0,
            clients: 3,
            transfers_per_client: 6,
            gst_ms: 6_000,
            deadline_ms: 120_000,
            byzantine: None,
        };
        match name {
            "calm" => {
                scenario.drop_rate = 0.0;
                scenario.duplicate_rate = 0.0;
            }
            "lossy" => {
                scenario.drop_rate = 0.25;
                scenario.duplicate_rate = 0.15;
                scenario.max_delay_ms = 150;
            }
            "partitions" => scenario.partitions = true,
            "crashes" => scenario.crashes = true,
            "skew" => scenario.clock_skew_ms = 400,
            "mixed" => {
                scenario.drop_rate = 0.1;
                scenario.partitions = true;
                scenario.crashes = true;
                scenario.clock_skew_ms = 200;
            }
            "byzantine" => {
                let behaviour = Behaviour::ALL[(seed % Behaviour::ALL.len() as u64) as usize];
                scenario.byzantine = Some(((seed / Behaviour::ALL.len() as u64 % 4) as usize, behaviour));
            }
            other => panic!("unknown fault mix {other}"),
        }
        scenario
    }
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    /// The first broken invariant, if any.
    pub violation: Option<Violation>,
    /// A hash of every event handled, in order: equal for two runs of one seed.
    pub trace: Digest,
    /// The common head height at the end.
    pub height: Height,
    /// Transfers acknowledged to clients (each committed exactly once, if no violation).
    pub acknowledged: usize,
    /// Events handled.
    pub events: u64,
    /// Virtual time at the end, in milliseconds.
    pub virtual_ms: u64,
}

/// Something scheduled to happen.
enum Scheduled {
    /// A network event reaches a node.
    Deliver {
        to: NodeIndex,
        event: NetworkEvent<NodeIndex>,
    },
    /// A transaction gossip message reaches a node (checked there, as the node's task would).
    TxGossip {
        to: NodeIndex,
        from: NodeIndex,
        data: Vec<u8>,
    },
    /// `from` asks `to` for its head.
    HeadQuery {
        to: NodeIndex,
        from: NodeIndex,
    },
    /// `from` asks `to` for blocks.
    BlocksQuery {
        to: NodeIndex,
        from: NodeIndex,
        height: Height,
        count: u32,
    },
    /// A client's turn to submit.
    Client(usize),
    Crash(NodeIndex),
    Restart(NodeIndex),
    /// The network splits into the nodes marked true and the rest; `None` heals it.
    Partition(Option<Vec<bool>>),
}

/// One simulated machine.
struct Host {
    key: SigningKey,
    peer_id: PeerId,
    store: Arc<MemStore>,
    outbox: Rc<RefCell<Vec<Outgoing>>>,
    driver: Option<Driver<MemStore, SimNetwork>>,
    /// The running driver's metrics.
    metrics: Arc<Metrics>,
    skew_ms: i64,
    /// The highest height checked for agreement.
    checked_height: Height,
}

/// A client: one account submitting transfers in nonce order.
struct Client {
    key: SigningKey,
    next_nonce: u64,
    /// Acknowledged transfers not yet seen committed, with when they were last sent.
    pending: Vec<(Vec<u8>, Digest, u64)>,
}

/// The simulated world.
pub struct World {
    scenario: Scenario,
    rng: fastrand::Rng,
    genesis: Genesis,
    hosts: Vec<Host>,
    clients: Vec<Client>,
    queue: BTreeMap<(u64, u64), Scheduled>,
    sequence: u64,
    now_ms: u64,
    base: Instant,
    partition: Option<Vec<bool>>,
    trace: Digest,
    events: u64,
    acknowledged: BTreeSet<Digest>,
    agreement: invariants::Agreement,
    validity: invariants::Validity,
    double_sign: invariants::NoHonestDoubleSign,
}

fn chain_id() -> ChainId {
    ChainId::new("sim").expect("a valid chain id")
}

impl World {
    /// Builds the world of a scenario: the genesis, one store per node, the clients.
    pub fn new(scenario: Scenario) -> World {
        let mut rng = fastrand::Rng::with_seed(scenario.seed);
        let keys: Vec<SigningKey> = (0..scenario.n).map(|i| SigningKey::from_seed([i as u8 + 1; 32])).collect();
        let peer_ids: Vec<PeerId> = (0..scenario.n)
            .map(|i| {
                let keypair = libp2p::identity::Keypair::ed25519_from_bytes([i as u8 + 101; 32])
                    .expect("32 bytes are an ed25519 seed");
                keypair.public().to_peer_id()
            })
            .collect();
        let clients: Vec<Client> = (0..scenario.clients)
            .map(|i| Client { key: SigningKey::from_seed([i as u8 + 201; 32]), next_nonce: 0, pending: Vec::new() })
            .collect();
        let genesis = Genesis {
            chain_id: chain_id(),
            genesis_time_ms: GENESIS_TIME_MS,
            validators: keys
                .iter()
                .zip(&peer_ids)
                .enumerate()
                .map(|(i, (key, peer_id))| ValidatorInfo {
                    name: format!("v{i}"),
                    public_key: key.public_key(),
                    peer_id: peer_id.to_string(),
                })
                .collect(),
            accounts: clients
                .iter()
                .map(|client| GenesisAccount {
                    address: Address::of(&client.key.public_key()),
                    balance: 1_000_000,
                    roles: vec![Role::Transact],
                })
                .collect(),
            params: Params::default(),
        };
        let hosts = keys
            .into_iter()
            .zip(peer_ids)
            .map(|(key, peer_id)| {
                let skew = scenario.clock_skew_ms as i64;
                Host {
                    key,
                    peer_id,
                    store: Arc::new(MemStore::new(&genesis).expect("a genesis store")),
                    outbox: Rc::new(RefCell::new(Vec::new())),
                    driver: None,
                    metrics: Arc::new(Metrics::default()),
                    skew_ms: if skew == 0 { 0 } else { rng.i64(-skew..=skew) },
                    checked_height: 0,
                }
            })
            .collect();
        World {
            scenario,
            rng,
            genesis,
            hosts,
            clients,
            queue: BTreeMap::new(),
            sequence: 0,
            now_ms: 0,
            base: Instant::now(),
            partition: None,
            trace: Digest::of(b"stele whole-node simulation"),
            events: 0,
            acknowledged: BTreeSet::new(),
            agreement: invariants::Agreement::default(),
            validity: invariants::Validity::default(),
            double_sign: invariants::NoHonestDoubleSign::default(),
        }
    }

    /// Runs to the end: success once every transfer is committed on every node after the
    /// network stabilised, or the first violation.
    pub fn run(mut self) -> Outcome {
        let violation = self.simulate().err();
        let height = self
            .honest()
            .iter()
            .map(|index| self.hosts[*index].store.head().map(|head| head.height).unwrap_or(0))
            .min();
        Outcome {
            violation,
            trace: self.trace,
            height: height.unwrap_or(0),
            acknowledged: self.acknowledged.len(),
            events: self.events,
            virtual_ms: self.now_ms,
        }
    }

    fn simulate(&mut self) -> Result<(), Violation> {
        for index in 0..self.hosts.len() {
            self.start(index)?;
        }
        for client in 0..self.clients.len() {
            let at = self.rng.u64(100..1_000);
            self.schedule(at, Scheduled::Client(client));
        }
        self.schedule_faults();
        let mut next_settled_check = self.scenario.gst_ms;
        let mut ticks_at_once: HashMap<NodeIndex, (u64, u32)> = HashMap::new();
        loop {
            let delivery = self.queue.first_key_value().map(|((at, _), _)| *at).unwrap_or(u64::MAX);
            let (tick_at, ticking) = self.next_tick();
            let at = delivery.min(tick_at).min(next_settled_check);
            if at > self.scenario.deadline_ms {
                return Err(self.liveness_failure());
            }
            self.now_ms = self.now_ms.max(at);
            if at == next_settled_check {
                if self.settled()? {
                    return self.final_checks();
                }
                next_settled_check += SETTLED_CHECK_MS;
            } else if tick_at <= delivery {
                let index = ticking.expect("a tick time comes with its node");
                let count = ticks_at_once.entry(index).or_insert((at, 0));
                *count = if count.0 == at { (at, count.1 + 1) } else { (at, 1) };
                if count.1 > TICKS_AT_ONCE_MAX {
                    return Err(violation("busy loop", format!("node {index} is due again and again at {at} ms")));
                }
                self.record(index, b"tick", &[]);
                self.step(index, Event::Tick)?;
            } else {
                let (_, scheduled) = self.queue.pop_first().expect("a delivery is scheduled");
                self.happen(scheduled)?;
            }
        }
    }

    /// The earliest due time of a running driver, and whose it is (lowest index first).
    fn next_tick(&self) -> (u64, Option<NodeIndex>) {
        let mut earliest = (u64::MAX, None);
        for (index, host) in self.hosts.iter().enumerate() {
            if let Some(driver) = &host.driver {
                let due = driver.next_deadline().saturating_duration_since(self.base);
                let due_ms = due.as_micros().div_ceil(1_000) as u64;
                if due_ms.max(self.now_ms) < earliest.0 {
                    earliest = (due_ms.max(self.now_ms), Some(index));
                }
            }
        }
        earliest
    }

    fn now_of(&self, index: NodeIndex) -> Now {
        let unix_ms = (GENESIS_TIME_MS + self.now_ms).saturating_add_signed(self.hosts[index].skew_ms);
        Now { instant: self.base + Duration::from_millis(self.now_ms), unix_ms }
    }

    fn schedule(&mut self, at: u64, scheduled: Scheduled) {
        self.sequence += 1;
        self.queue.insert((at, self.sequence), scheduled);
    }

    /// Mixes one handled event into the trace hash.
    fn record(&mut self, node: NodeIndex, kind: &[u8], payload: &[u8]) {
        self.events += 1;
        let mut bytes = Vec::with_capacity(64 + kind.len() + payload.len());
        bytes.extend_from_slice(&self.trace.0);
        bytes.extend_from_slice(&self.now_ms.to_le_bytes());
        bytes.extend_from_slice(&(node as u64).to_le_bytes());
        bytes.extend_from_slice(kind);
        bytes.extend_from_slice(payload);
        self.trace = Digest::of(&bytes);
    }

    fn schedule_faults(&mut self) {
        let gst = self.scenario.gst_ms;
        if self.scenario.partitions {
            let mut at = self.rng.u64(500..2_000);
            while at < gst {
                let sides: Vec<bool> = (0..self.hosts.len()).map(|_| self.rng.bool()).collect();
                self.schedule(at, Scheduled::Partition(Some(sides)));
                at += self.rng.u64(300..2_000);
                self.schedule(at.min(gst), Scheduled::Partition(None));
                at += self.rng.u64(500..2_000);
            }
            self.schedule(gst, Scheduled::Partition(None));
        }
        if self.scenario.crashes {
            // One node at a time (f = 1 of 4), each back before the network stabilises.
            let mut at = self.rng.u64(500..2_000);
            while at + 500 < gst {
                let index = self.rng.usize(0..self.hosts.len());
                let back = (at + self.rng.u64(300..3_000)).min(gst);
                self.schedule(at, Scheduled::Crash(index));
                self.schedule(back, Scheduled::Restart(index));
                at = back + self.rng.u64(200..2_000);
            }
        }
    }

    /// Starts (or restarts) a node's driver from its store alone, connected to every running
    /// node.
    fn start(&mut self, index: NodeIndex) -> Result<(), Violation> {
        let host = &self.hosts[index];
        let network =
            SimNetwork { peer_id: host.peer_id, max_message_bytes: MAX_MESSAGE_BYTES, outbox: host.outbox.clone() };
        let settings = driver::Settings {
            chain_id: chain_id(),
            key: host.key.clone(),
            empty_block_interval: None,
            observers: Default::default(),
        };
        let now = self.now_of(index);
        let metrics = Arc::new(Metrics::default());
        let mempool = MempoolHandle::new(chain_id(), MempoolConfig::default(), host.store.clone(), metrics.clone());
        let (mut driver, _handle) =
            Driver::new(settings, host.store.clone(), network, mempool, metrics.clone(), now)
                .map_err(|error| violation("node error", format!("node {index} cannot start: {error}")))?;
        driver.boot(now).map_err(|error| violation("node error", format!("node {index} cannot boot: {error}")))?;
        self.hosts[index].driver = Some(driver);
        self.hosts[index].metrics = metrics;
        self.record(index, b"start", &[]);
        self.drain(index)?;
        for other in 0..self.hosts.len() {
            if other != index && self.hosts[other].driver.is_some() {
                let (peer, other_peer) = (self.hosts[index].peer_id, self.hosts[other].peer_id);
                self.schedule(
                    self.now_ms,
                    Scheduled::Deliver { to: index, event: NetworkEvent::Connected(other_peer) },
                );
                self.schedule(self.now_ms, Scheduled::Deliver { to: other, event: NetworkEvent::Connected(peer) });
            }
        }
        Ok(())
    }

    fn happen(&mut self, scheduled: Scheduled) -> Result<(), Violation> {
        match scheduled {
            Scheduled::Deliver { to, event } => {
                if self.hosts[to].driver.is_some() {
                    let fingerprint = fingerprint(&event);
                    self.record(to, b"event", &fingerprint);
                    // A lying forwarder passes other leaders' proposals on (with its own body).
                    let forward = match (&event, self.scenario.byzantine) {
                        (
                            NetworkEvent::Gossip { topic: Topic::Consensus, data, .. },
                            Some((byzantine, Behaviour::TamperBody)),
                        ) if byzantine == to => Some(data.clone()),
                        _ => None,
                    };
                    self.step(to, Event::Network(event))?;
                    if let Some(data) = forward {
                        self.hosts[to].outbox.borrow_mut().push(Outgoing::Publish(Topic::Consensus, data));
                        self.drain(to)?;
                    }
                }
            }
            Scheduled::TxGossip { to, from, data } => {
                let now = self.now_of(to);
                let host = &self.hosts[to];
                let Some(driver) = &host.driver else { return Ok(()) };
                // What the node's admission task does, off the driver; then the driver's wake-up.
                let id = MessageId::new(&Digest::of(&data).0);
                let transactions = decode_tx_gossip(&data).map(|encoded| driver.mempool().precheck(encoded));
                let gossip = CheckedGossip { id, source: self.hosts[from].peer_id, transactions };
                let network = SimNetwork {
                    peer_id: host.peer_id,
                    max_message_bytes: MAX_MESSAGE_BYTES,
                    outbox: host.outbox.clone(),
                };
                admit_gossip(driver.mempool(), &network, gossip, now.instant);
                self.record(to, b"tx gossip", &Digest::of(&data).0);
                self.step(to, Event::Admitted)?;
            }
            Scheduled::HeadQuery { to, from } => {
                if self.hosts[to].driver.is_some() {
                    let head = self.hosts[to].store.head().map(|head| head.height).unwrap_or(0);
                    let head = if self.lies_in_sync(to) { Height::MAX } else { head };
                    let peer = self.hosts[to].peer_id;
                    self.send(to, from, || Scheduled::Deliver {
                        to: from,
                        event: NetworkEvent::PeerHead { peer, head },
                    });
                }
            }
            Scheduled::BlocksQuery { to, from, height, count } => {
                let peer = self.hosts[to].peer_id;
                let answered = self.hosts[to].driver.is_some() && {
                    let store = self.hosts[to].store.clone();
                    let (mut blocks, _) =
                        crate::p2p::serve::read_blocks(store.as_ref(), height, count, MAX_MESSAGE_BYTES);
                    if self.lies_in_sync(to) {
                        blocks.clear();
                    }
                    self.send(to, from, || Scheduled::Deliver {
                        to: from,
                        event: NetworkEvent::Blocks { peer, blocks: blocks.clone() },
                    })
                };
                if !answered {
                    let at = self.now_ms + REQUEST_TIMEOUT_MS;
                    self.schedule(at, Scheduled::Deliver { to: from, event: NetworkEvent::RequestFailed { peer } });
                }
            }
            Scheduled::Client(client) => self.client_turn(client)?,
            Scheduled::Crash(index) => {
                if self.hosts[index].driver.take().is_some() {
                    self.hosts[index].outbox.borrow_mut().clear();
                    self.record(index, b"crash", &[]);
                    let peer = self.hosts[index].peer_id;
                    for other in 0..self.hosts.len() {
                        if other != index && self.hosts[other].driver.is_some() {
                            self.schedule(
                                self.now_ms,
                                Scheduled::Deliver { to: other, event: NetworkEvent::Disconnected(peer) },
                            );
                        }
                    }
                }
            }
            Scheduled::Restart(index) => {
                if self.hosts[index].driver.is_none() {
                    self.start(index)?;
                }
            }
            Scheduled::Partition(sides) => {
                self.record(usize::MAX, b"partition", &[u8::from(sides.is_some())]);
                self.partition = sides;
            }
        }
        Ok(())
    }

    /// Hands an event to a node's driver, then carries out what it asked of the network.
    fn step(&mut self, index: NodeIndex, event: Event<NodeIndex>) -> Result<(), Violation> {
        let now = self.now_of(index);
        let Some(driver) = self.hosts[index].driver.as_mut() else { return Ok(()) };
        driver.handle(now, event).map_err(|error| violation("node error", format!("node {index} stopped: {error}")))?;
        self.drain(index)?;
        self.check_new_blocks(index)
    }

    /// Turns what a node asked of the network into deliveries.
    fn drain(&mut self, index: NodeIndex) -> Result<(), Violation> {
        let mut outgoing: Vec<Outgoing> = std::mem::take(&mut *self.hosts[index].outbox.borrow_mut());
        if let Some((byzantine, behaviour)) = self.scenario.byzantine
            && byzantine == index
        {
            let key = self.hosts[index].key.clone();
            outgoing = outgoing
                .into_iter()
                .flat_map(|request| byzantine::rewrite(behaviour, request, &chain_id(), &key, &mut self.rng))
                .collect();
        }
        let me = self.hosts[index].peer_id;
        for request in outgoing {
            match request {
                Outgoing::Publish(Topic::Consensus, data) => {
                    if let Ok(gossip) = borsh::from_slice::<ConsensusGossip>(&data) {
                        let (ConsensusGossip::Message(message) | ConsensusGossip::Proposal { message, .. }) = &gossip;
                        self.sent_by(index, message)?;
                    }
                    let id = MessageId::new(&Digest::of(&data).0);
                    for other in self.others(index) {
                        self.send(index, other, || Scheduled::Deliver {
                            to: other,
                            event: NetworkEvent::Gossip {
                                topic: Topic::Consensus,
                                id: id.clone(),
                                source: me,
                                data: data.clone(),
                            },
                        });
                    }
                }
                Outgoing::Publish(Topic::Transactions, data) => {
                    for other in self.others(index) {
                        self.send(index, other, || Scheduled::TxGossip { to: other, from: index, data: data.clone() });
                    }
                }
                Outgoing::Validated(source, acceptance) => {
                    let sender = self.index_of(&source);
                    if acceptance == MessageAcceptance::Reject && sender.is_some_and(|sender| self.is_honest(sender)) {
                        return Err(violation(
                            "honest gossip rejected",
                            format!("node {index} rejected a gossip message of honest node {sender:?}"),
                        ));
                    }
                }
                Outgoing::Direct(peer, message) => {
                    self.sent_by(index, &message)?;
                    if let Some(to) = self.index_of(&peer) {
                        self.send(index, to, || Scheduled::Deliver {
                            to,
                            event: NetworkEvent::Direct { peer: me, message: Box::new(message.clone()) },
                        });
                    }
                }
                Outgoing::AskHeads => {
                    for other in self.others(index) {
                        self.send(index, other, || Scheduled::HeadQuery { to: other, from: index });
                    }
                }
                Outgoing::RequestBlocks(peer, height, count) => {
                    if let Some(to) = self.index_of(&peer) {
                        let sent = self.send(index, to, || Scheduled::BlocksQuery { to, from: index, height, count });
                        if !sent {
                            let at = self.now_ms + REQUEST_TIMEOUT_MS;
                            self.schedule(
                                at,
                                Scheduled::Deliver { to: index, event: NetworkEvent::RequestFailed { peer } },
                            );
                        }
                    }
                }
                Outgoing::RequestBody(digest) => {
                    for other in self.others(index) {
                        self.send(index, other, || Scheduled::Deliver {
                            to: other,
                            event: NetworkEvent::BodyWanted { digest, channel: index },
                        });
                    }
                }
                Outgoing::Respond(to, Response::Body(block)) => {
                    self.send(index, to, || Scheduled::Deliver {
                        to,
                        event: NetworkEvent::Body { peer: me, block: block.clone() },
                    });
                }
                Outgoing::Respond(..) | Outgoing::SetAdmitted => {}
            }
        }
        Ok(())
    }

    fn is_honest(&self, index: NodeIndex) -> bool {
        self.scenario.byzantine.is_none_or(|(byzantine, _)| byzantine != index)
    }

    fn honest(&self) -> Vec<NodeIndex> {
        (0..self.hosts.len()).filter(|index| self.is_honest(*index)).collect()
    }

    fn lies_in_sync(&self, index: NodeIndex) -> bool {
        self.scenario.byzantine == Some((index, Behaviour::LieSync))
    }

    /// Every node but `index`.
    fn others(&self, index: NodeIndex) -> Vec<NodeIndex> {
        (0..self.hosts.len()).filter(|other| *other != index).collect()
    }

    fn index_of(&self, peer: &PeerId) -> Option<NodeIndex> {
        self.hosts.iter().position(|host| host.peer_id == *peer)
    }

    /// Sends from one node to another through the faults: lost to a partition, a stopped
    /// receiver or (before GST) at random; delayed; sometimes twice. Returns whether it left.
    fn send(&mut self, from: NodeIndex, to: NodeIndex, make: impl Fn() -> Scheduled) -> bool {
        let before_gst = self.now_ms < self.scenario.gst_ms;
        let parted = self.partition.as_ref().is_some_and(|sides| sides[from] != sides[to]);
        if parted || self.hosts[to].driver.is_none() || (before_gst && self.rng.f64() < self.scenario.drop_rate) {
            return false;
        }
        let copies = if self.rng.f64() < self.scenario.duplicate_rate { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now_ms + self.rng.u64(1..=self.scenario.max_delay_ms.max(1));
            self.schedule(at, make());
        }
        true
    }

    /// Checks the votes a node signed in a message it sent, and notes what it proposed.
    fn sent_by(&mut self, index: NodeIndex, message: &Message) -> Result<(), Violation> {
        match message {
            Message::PrePrepare(vote) => self.validity.proposed(vote.vote.digest),
            Message::NewView { proposal, .. } => self.validity.proposed(proposal.vote.digest),
            _ => {}
        }
        if !self.is_honest(index) {
            return Ok(());
        }
        self.double_sign.check(index as u32, message)
    }

    /// Agreement and validity for the blocks a node committed since it was last checked.
    fn check_new_blocks(&mut self, index: NodeIndex) -> Result<(), Violation> {
        if !self.is_honest(index) {
            return Ok(());
        }
        // Nobody here proposes an invalid block (a Byzantine one lies only about bodies and
        // votes), so an honest node that refuses a proposal was fooled.
        if self.hosts[index].metrics.proposals_rejected.get() > 0 {
            return Err(violation("no valid proposal refused", format!("node {index} refused a proposal")));
        }
        let store = self.hosts[index].store.clone();
        let head = store.head().map_err(|error| violation("store", error.to_string()))?.height;
        for height in self.hosts[index].checked_height + 1..=head {
            let header = store
                .header(height)
                .ok()
                .flatten()
                .ok_or_else(|| violation("store", format!("node {index} has no header at {height}")))?;
            let digest = header.hash();
            self.agreement.check(index, height, digest)?;
            self.validity.check(index, height, digest)?;
        }
        self.hosts[index].checked_height = head;
        Ok(())
    }

    /// A client submits its next transfer (or sends again one not committed) to a node.
    fn client_turn(&mut self, client: usize) -> Result<(), Violation> {
        // Only honest nodes: a Byzantine one may acknowledge and drop a transfer.
        let running: Vec<NodeIndex> = self.honest().into_iter().filter(|i| self.hosts[*i].driver.is_some()).collect();
        let done = self.clients[client].next_nonce >= self.scenario.transfers_per_client
            && self.clients[client].pending.is_empty();
        if done {
            return Ok(());
        }
        let next_turn = self.now_ms + self.rng.u64(50..600);
        self.schedule(next_turn, Scheduled::Client(client));
        if running.is_empty() {
            return Ok(());
        }
        let node = running[self.rng.usize(0..running.len())];
        let store = self.hosts[node].store.clone();
        // Committed transfers are done; those waiting too long are sent again.
        self.clients[client].pending.retain(|(_, hash, _)| store.tx_location(hash).ok().flatten().is_none());
        let now_ms = self.now_ms;
        let mut batch: Vec<Vec<u8>> = Vec::new();
        for (encoded, _, sent_at) in &mut self.clients[client].pending {
            if now_ms >= *sent_at + RESUBMIT_AFTER_MS {
                *sent_at = now_ms;
                batch.push(encoded.clone());
            }
        }
        let fresh = self.clients[client].next_nonce < self.scenario.transfers_per_client;
        if fresh {
            let nonce = self.clients[client].next_nonce;
            let to = (client + 1 + self.rng.usize(0..self.clients.len() - 1)) % self.clients.len();
            let transaction = Transaction {
                chain_id: chain_id(),
                signer: self.clients[client].key.public_key(),
                nonce,
                payload: Payload::Transfer {
                    to: Address::of(&self.clients[to].key.public_key()),
                    amount: self.rng.u64(1..100),
                },
            }
            .sign(&self.clients[client].key);
            batch.push(transaction.encode());
        }
        if batch.is_empty() {
            return Ok(());
        }
        let now = self.now_of(node);
        let Some(driver) = self.hosts[node].driver.as_ref() else { return Ok(()) };
        let checked = driver.mempool().precheck(batch.clone());
        let verdicts: Vec<_> = driver
            .mempool()
            .admit(Origin::Client, checked, now.instant)
            .into_iter()
            .map(|verdict| verdict.map(|admitted| admitted.hash()))
            .collect();
        let mut payload = Vec::new();
        for (encoded, verdict) in batch.iter().zip(&verdicts) {
            payload.extend_from_slice(&Digest::of(encoded).0);
            payload.push(u8::from(verdict.is_ok()));
        }
        self.record(node, b"submit", &payload);
        if fresh && let (Some(encoded), Some(Ok(hash))) = (batch.last(), verdicts.last()) {
            self.acknowledged.insert(*hash);
            self.clients[client].pending.push((encoded.clone(), *hash, now_ms));
            self.clients[client].next_nonce += 1;
        }
        // The node's mempool wakes its driver, as a running node's does.
        self.step(node, Event::Admitted)
    }

    /// After GST: every node runs, every transfer is acknowledged and on every node's chain,
    /// and the chains end at one head.
    fn settled(&mut self) -> Result<bool, Violation> {
        let honest = self.honest();
        if honest.iter().any(|index| self.hosts[*index].driver.is_none()) {
            return Ok(false);
        }
        if self.clients.iter().any(|client| client.next_nonce < self.scenario.transfers_per_client) {
            return Ok(false);
        }
        let heads: Vec<Digest> = honest
            .iter()
            .map(|index| self.hosts[*index].store.head().map(|head| head.hash()).unwrap_or_default())
            .collect();
        if heads.iter().any(|head| *head != heads[0]) {
            return Ok(false);
        }
        let store = &self.hosts[honest[0]].store;
        Ok(self.acknowledged.iter().all(|hash| store.tx_location(hash).ok().flatten().is_some()))
    }

    /// One chain everywhere, each acknowledged transfer in it once, and every store audits.
    fn final_checks(&mut self) -> Result<(), Violation> {
        for index in self.honest() {
            let host = &self.hosts[index];
            let head = host.store.head().map_err(|error| violation("store", error.to_string()))?.height;
            let mut seen = BTreeSet::new();
            for height in 1..=head {
                let certified = host
                    .store
                    .block(height)
                    .ok()
                    .flatten()
                    .ok_or_else(|| violation("store", format!("node {index} has no block at {height}")))?;
                for transaction in &certified.block.transactions {
                    if !seen.insert(transaction.hash()) {
                        return Err(violation(
                            "exactly once",
                            format!("node {index} committed transaction {} twice", transaction.hash()),
                        ));
                    }
                }
            }
            if let Some(missing) = self.acknowledged.iter().find(|hash| !seen.contains(*hash)) {
                return Err(violation("exactly once", format!("node {index} lacks acknowledged transfer {missing}")));
            }
            audit_chain(host.store.as_ref(), &self.genesis, |_| {})
                .map_err(|failure| violation("audit", format!("node {index}: {failure:?}")))?;
        }
        Ok(())
    }

    fn liveness_failure(&self) -> Violation {
        let heads: Vec<Height> =
            self.hosts.iter().map(|host| host.store.head().map(|head| head.height).unwrap_or(0)).collect();
        let running: Vec<bool> = self.hosts.iter().map(|host| host.driver.is_some()).collect();
        violation(
            "liveness",
            format!(
                "not settled by {} ms: heads {heads:?}, running {running:?}, {} transfers acknowledged",
                self.scenario.deadline_ms,
                self.acknowledged.len()
            ),
        )
    }
}

fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// The bytes of a network event that go into the trace.
fn fingerprint(event: &NetworkEvent<NodeIndex>) -> Vec<u8> {
    match event {
        NetworkEvent::Gossip { data, .. } => Digest::of(data).0.to_vec(),
        NetworkEvent::Direct { message, .. } => message.encode(),
        NetworkEvent::BodyWanted { digest, channel } => [&digest.0[..], &channel.to_le_bytes()].concat(),
        NetworkEvent::PeerHead { head, .. } => head.to_le_bytes().to_vec(),
        NetworkEvent::Blocks { blocks, .. } => blocks.iter().flat_map(|block| block.block.hash().0).collect(),
        NetworkEvent::Body { block, .. } => block.as_ref().map(|block| block.hash().0.to_vec()).unwrap_or_default(),
        NetworkEvent::RequestFailed { peer } | NetworkEvent::Connected(peer) | NetworkEvent::Disconnected(peer) => {
            peer.to_bytes()
        }
    }
}
