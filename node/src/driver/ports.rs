//! What the driver runs over, as traits: a chain store, a network and the time. A node runs it
//! on RocksDB, libp2p and the system clock; the whole-node simulation (`crate::sim`) runs the
//! same driver on `MemStore`, a seeded simulated network and virtual time.

use std::{
    collections::HashSet,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use consensus::{Digest, Height, Message};
use ledger::{BlockReader, BlockWriter, LocalRecords, StateHistory};
use libp2p::PeerId;

use crate::p2p::{MessageAcceptance, MessageId, NetworkHandle, Topic, protocol::Response};

/// Everything the driver reads and writes: the chain (blocks, state history, proofs), and this
/// node's own records (safety state, evidence). Implemented by every store that has them all.
pub trait ChainStore: BlockReader + BlockWriter + StateHistory + LocalRecords + Send + Sync + 'static {}

impl<T: BlockReader + BlockWriter + StateHistory + LocalRecords + Send + Sync + 'static> ChainStore for T {}

/// What the driver asks of the network. Every method returns at once; answers come back as
/// [`crate::p2p::NetworkEvent`]s.
pub trait Network {
    /// Where the answer to a [`crate::p2p::NetworkEvent::BodyWanted`] goes.
    type Reply;

    /// This node's peer id.
    fn local_peer_id(&self) -> PeerId;
    /// Gossips a payload on a topic.
    fn publish(&self, topic: Topic, data: Vec<u8>);
    /// The verdict on a gossip message: accepted ones are forwarded; rejected ones count
    /// against the peer that sent them.
    fn validated(&self, id: MessageId, source: PeerId, acceptance: MessageAcceptance);
    /// Sends a consensus message to one peer.
    fn send_direct(&self, peer: PeerId, message: Message);
    /// Asks every connected peer for its head.
    fn ask_heads(&self);
    /// Asks `peer` for certified blocks from `from` on.
    fn request_blocks(&self, peer: PeerId, from: Height, count: u32);
    /// Asks every connected peer for a proposed block by its hash.
    fn request_body(&self, digest: Digest);
    /// Answers a body request.
    fn respond(&self, reply: Self::Reply, response: Response);
    /// Replaces the admitted peers.
    fn set_admitted(&self, peers: HashSet<PeerId>);
    /// The largest message this node sends or accepts, in bytes.
    fn max_message_bytes(&self) -> usize;
}

impl Network for NetworkHandle {
    type Reply = libp2p::request_response::ResponseChannel<Response>;

    fn local_peer_id(&self) -> PeerId {
        NetworkHandle::local_peer_id(self)
    }

    fn publish(&self, topic: Topic, data: Vec<u8>) {
        NetworkHandle::publish(self, topic, data);
    }

    fn validated(&self, id: MessageId, source: PeerId, acceptance: MessageAcceptance) {
        NetworkHandle::validated(self, id, source, acceptance);
    }

    fn send_direct(&self, peer: PeerId, message: Message) {
        NetworkHandle::send_direct(self, peer, message);
    }

    fn ask_heads(&self) {
        NetworkHandle::ask_heads(self);
    }

    fn request_blocks(&self, peer: PeerId, from: Height, count: u32) {
        NetworkHandle::request_blocks(self, peer, from, count);
    }

    fn request_body(&self, digest: Digest) {
        NetworkHandle::request_body(self, digest);
    }

    fn respond(&self, reply: Self::Reply, response: Response) {
        NetworkHandle::respond(self, reply, response);
    }

    fn set_admitted(&self, peers: HashSet<PeerId>) {
        NetworkHandle::set_admitted(self, peers);
    }

    fn max_message_bytes(&self) -> usize {
        NetworkHandle::max_message_bytes(self)
    }
}

/// The time an event happens at, as the driver sees it: an instant for its timers and the wall
/// clock for block timestamps. An input like any other, so that a simulation can give virtual
/// time (and skewed clocks).
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// For timers and intervals.
    pub instant: Instant,
    /// Milliseconds since the Unix epoch, for block timestamps.
    pub unix_ms: u64,
}

impl Now {
    /// This machine's clocks.
    pub fn system() -> Now {
        let unix_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis() as u64).unwrap_or(0);
        Now { instant: Instant::now(), unix_ms }
    }
}
