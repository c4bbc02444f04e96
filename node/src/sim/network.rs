//! The simulated network a driver talks to: it only records what the driver asks, in order;
//! the world ([`super::World`]) turns each request into deliveries, with the scenario's faults.

use std::{cell::RefCell, collections::HashSet, rc::Rc};

use consensus::{Digest, Height, Message};
use libp2p::PeerId;

use crate::{
    driver::Network,
    p2p::{MessageAcceptance, MessageId, Topic, protocol::Response},
};

/// The simulation's index of a node.
pub type NodeIndex = usize;

/// One thing a driver asked of the network.
#[derive(Debug)]
pub enum Outgoing {
    Publish(Topic, Vec<u8>),
    /// The verdict on a gossip message of the peer.
    Validated(PeerId, MessageAcceptance),
    Direct(PeerId, Message),
    AskHeads,
    RequestBlocks(PeerId, Height, u32),
    RequestBody(Digest),
    /// An answer to a body request of the node at the index.
    Respond(NodeIndex, Response),
    SetAdmitted,
}

/// A node's end of the simulated network.
pub struct SimNetwork {
    pub peer_id: PeerId,
    pub max_message_bytes: usize,
    pub outbox: Rc<RefCell<Vec<Outgoing>>>,
}

impl SimNetwork {
    fn push(&self, outgoing: Outgoing) {
        self.outbox.borrow_mut().push(outgoing);
    }
}

impl Network for SimNetwork {
    type Reply = NodeIndex;

    fn local_peer_id(&self) -> PeerId {
        self.peer_id
    }

    fn publish(&self, topic: Topic, data: Vec<u8>) {
        self.push(Outgoing::Publish(topic, data));
    }

    fn validated(&self, _: MessageId, source: PeerId, acceptance: MessageAcceptance) {
        self.push(Outgoing::Validated(source, acceptance));
    }

    fn send_direct(&self, peer: PeerId, message: Message) {
        self.push(Outgoing::Direct(peer, message));
    }

    fn ask_heads(&self) {
        self.push(Outgoing::AskHeads);
    }

    fn request_blocks(&self, peer: PeerId, from: Height, count: u32) {
        self.push(Outgoing::RequestBlocks(peer, from, count));
    }

    fn request_body(&self, digest: Digest) {
        self.push(Outgoing::RequestBody(digest));
    }

    fn respond(&self, reply: NodeIndex, response: Response) {
        self.push(Outgoing::Respond(reply, response));
    }

    fn set_admitted(&self, _: HashSet<PeerId>) {
        self.push(Outgoing::SetAdmitted);
    }

    fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }
}
