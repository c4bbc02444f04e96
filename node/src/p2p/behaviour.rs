//! The libp2p behaviours a node runs, and how they are configured.

use std::{collections::HashMap, io, time::Duration};

use consensus::ChainId;
use libp2p::{
    StreamProtocol, allow_block_list, connection_limits, gossipsub, identify,
    identity::Keypair,
    kad, ping,
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
};

use super::protocol::{Codec, REQUEST_PROTOCOL};

/// Every behaviour of a node. The allow list comes first, so a connection from a peer the
/// ledger does not admit is refused before any other protocol sees it.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Permissioned membership: only admitted peer ids may connect (either way).
    pub allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    /// Caps on connections.
    pub limits: connection_limits::Behaviour,
    /// Transactions and consensus messages.
    pub gossipsub: gossipsub::Behaviour,
    /// Peer discovery.
    pub kademlia: kad::Behaviour<kad::store::MemoryStore>,
    /// Learns peers' listen addresses for Kademlia.
    pub identify: identify::Behaviour,
    /// Keeps connections alive and measures round trips.
    pub ping: ping::Behaviour,
    /// Block sync, proposal fetch and direct consensus messages.
    pub request: request_response::Behaviour<Codec>,
}

/// Limits applied to the swarm.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most established connections.
    pub max_connections: u32,
    /// Largest gossip message or request/response.
    pub max_message_bytes: usize,
}

/// The gossip topic of consensus messages of one chain.
pub fn consensus_topic(chain_id: &ChainId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("stele/{chain_id}/consensus/1"))
}

/// The gossip topic of transactions of one chain.
pub fn transactions_topic(chain_id: &ChainId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("stele/{chain_id}/transactions/1"))
}

impl Behaviour {
    /// Builds the behaviours for `chain_id` with the node's identity. Without `announce_listen`
    /// identify tells peers only the external addresses (the swarm's), not the listen ones.
    pub fn new(key: &Keypair, chain_id: &ChainId, limits: Limits, announce_listen: bool) -> io::Result<Self> {
        let peer_id = key.public().to_peer_id();
        let gossipsub = gossipsub(key, chain_id, limits).map_err(io::Error::other)?;
        let kad_protocol = StreamProtocol::try_from_owned(format!("/stele/{chain_id}/kad/1"))
            .map_err(|error| io::Error::other(error.to_string()))?;
        let mut kademlia =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad::Config::new(kad_protocol));
        // Loopback and private networks never confirm an external address; every node serves.
        kademlia.set_mode(Some(kad::Mode::Server));
        let connection_limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(limits.max_connections))
            .with_max_pending_incoming(Some(limits.max_connections))
            .with_max_established_per_peer(Some(2));
        Ok(Behaviour {
            allowed: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(connection_limits),
            gossipsub,
            kademlia,
            identify: identify::Behaviour::new(
                identify::Config::new(format!("/stele/{chain_id}/1"), key.public())
                    .with_hide_listen_addrs(!announce_listen),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            request: request_response::Behaviour::with_codec(
                Codec { max_bytes: limits.max_message_bytes },
                [(REQUEST_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            ),
        })
    }
}

/// Gossipsub with signed messages, manual validation (nothing is forwarded before the node
/// checked it) and peer scoring that penalises senders of rejected messages. Message ids are the
/// default (author and sequence number), not content hashes: the consensus core retransmits
/// identical messages on timeouts, and a content-addressed id would make gossipsub refuse every
/// retransmission for the length of its duplicate cache (a liveness bug seen under load).
fn gossipsub(key: &Keypair, chain_id: &ChainId, limits: Limits) -> Result<gossipsub::Behaviour, String> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(limits.max_message_bytes)
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .map_err(|error| error.to_string())?;
    let mut behaviour = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)?;
    // Only misbehaviour scores: a quiet permissioned network must not penalise idle honest peers
    // (P3 mesh-delivery deficits) or many peers on one host (IP colocation), and rewards for time
    // in the mesh would mask penalties.
    let topic_score = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // P4: every rejected message counts against the peer that forwarded it.
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.9,
        ..gossipsub::TopicScoreParams::default()
    };
    let topics: HashMap<_, _> = [consensus_topic(chain_id).hash(), transactions_topic(chain_id).hash()]
        .into_iter()
        .map(|topic| (topic, topic_score.clone()))
        .collect();
    let params = gossipsub::PeerScoreParams {
        topics,
        ip_colocation_factor_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    behaviour.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;
    behaviour.subscribe(&consensus_topic(chain_id)).map_err(|error| error.to_string())?;
    behaviour.subscribe(&transactions_topic(chain_id)).map_err(|error| error.to_string())?;
    Ok(behaviour)
}
