//! The tap on the inbound consensus events: what the lies must know of incoming traffic. Each
//! event is shown to the wrapper, then forwarded to the driver unchanged; only a fetch of a
//! second block this node proposed (`equivocate`), which the driver never saw, is answered
//! here instead.
//!
//! The driver's own checks are repeated for what is kept or acted on, so the lies stay as
//! targeted as when they ran inside it: only messages whose signatures verify against the set
//! of their height are replayed, and only a proposal that the leader of its view signed, for
//! the next height, and whose block its digest names is re-gossiped with a tampered body.

use consensus::{Message, Replica};
use ledger::{Block, StateHistory};
use tokio::sync::mpsc;
use tracing::warn;

use super::{Behaviour, Byzantine, Chain, tamper};
use crate::{
    driver::Network,
    p2p::{
        NetworkEvent, Topic,
        protocol::{ConsensusGossip, Response},
    },
};

/// Events the tap holds for the driver, as many as the network's own channel to it: a driver
/// that falls behind still makes the network stop reading from peers.
const TAP_CAPACITY: usize = 4096;

impl<N, S> Byzantine<N, S>
where
    N: Network + Clone + Send + Sync + 'static,
    N::Reply: Send + 'static,
    S: StateHistory + Send + Sync + 'static,
{
    /// Interposes on `events` (the network's consensus events): a task shows each one to this
    /// wrapper and forwards it; the driver reads the returned channel instead. The task ends
    /// when either side closes, so it holds neither the network nor the store past the driver.
    pub fn tap(&self, mut events: mpsc::Receiver<NetworkEvent<N::Reply>>) -> mpsc::Receiver<NetworkEvent<N::Reply>> {
        let (forward, driver_events) = mpsc::channel(TAP_CAPACITY);
        let byzantine = self.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = events.recv() => event,
                    () = forward.closed() => None,
                };
                let Some(event) = event else { break };
                if let Some(event) = byzantine.observe(event)
                    && forward.send(event).await.is_err()
                {
                    break;
                }
            }
        });
        driver_events
    }
}

impl<N: Network, S: StateHistory + Send + Sync + 'static> Byzantine<N, S> {
    /// Shows an inbound event to the behaviours. Returns it to forward to the driver, or `None`
    /// when it was answered here.
    pub(super) fn observe(&self, event: NetworkEvent<N::Reply>) -> Option<NetworkEvent<N::Reply>> {
        match &event {
            NetworkEvent::Gossip { topic: Topic::Consensus, data, .. } => {
                // Decoded only for a behaviour that looks at it (blocks are megabytes).
                let wanted = self.on(Behaviour::Replay) || self.on(Behaviour::TamperBody);
                if wanted && let Ok(gossip) = borsh::from_slice::<ConsensusGossip>(data) {
                    self.on_gossip(gossip);
                }
            }
            NetworkEvent::Direct { message, .. } => self.received(message, None),
            NetworkEvent::BodyWanted { digest, .. } => {
                let own = self.state().own_blocks.get(digest).cloned();
                if let Some(block) = own {
                    if let NetworkEvent::BodyWanted { channel, .. } = event {
                        self.inner.respond(channel, Response::Body(Some(Box::new(block))));
                    }
                    return None;
                }
            }
            _ => {}
        }
        Some(event)
    }

    /// Consensus gossip received, decoded: the driver refuses a proposal whose block is not the
    /// one its digest names before it checks anything else, and so does this.
    fn on_gossip(&self, gossip: ConsensusGossip) {
        let (message, block) = match gossip {
            ConsensusGossip::Message(message) => (message, None),
            ConsensusGossip::Proposal { message, block } => {
                let (Message::PrePrepare(proposal) | Message::NewView { proposal, .. }) = &message else { return };
                if proposal.vote.digest != block.hash() {
                    return;
                }
                (message, Some(block))
            }
        };
        self.received(&message, block.as_deref());
    }

    /// A message received (with the block a proposal brought): if its signatures verify, kept
    /// for `replay`, and a leader's proposal re-gossiped with a tampered body (`tamper-body`).
    fn received(&self, message: &Message, block: Option<&Block>) {
        let regossip = block.filter(|_| self.on(Behaviour::TamperBody));
        if regossip.is_none() && !self.on(Behaviour::Replay) {
            return;
        }
        let Some(chain) = self.chain() else { return };
        if !self.verifies(&chain, message) {
            return;
        }
        if let Some(block) = regossip
            && leads(&chain, message)
        {
            warn!(height = block.header.height, "byzantine: re-gossiping a proposal with a tampered body");
            let tampered = tamper(block, &self.shared.outsider);
            let gossip = ConsensusGossip::Proposal { message: message.clone(), block: Box::new(tampered) };
            self.inner.publish(Topic::Consensus, gossip.encode());
        }
        let mut state = self.state();
        self.remember(&mut state, message);
    }

    /// Whether `message` verifies against the set of its height, as the driver checks it
    /// (messages for heights past `head + 1` it does not check: it ignores them).
    fn verifies(&self, chain: &Chain, message: &Message) -> bool {
        let height = message.height();
        let next = chain.head.height + 1;
        let chain_id = &self.shared.chain_id;
        if height == next {
            message.clone().verify(chain_id, &chain.validators).is_ok()
        } else if height < next {
            self.shared
                .store
                .validator_set_for(height.max(1))
                .is_ok_and(|validators| message.clone().verify(chain_id, &validators).is_ok())
        } else {
            false
        }
    }
}

/// Whether the driver takes the block that came with `message` (checked to be the one its
/// digest names): a proposal for the next height by the leader of its view (see
/// `driver::gossip`).
fn leads(chain: &Chain, message: &Message) -> bool {
    let proposal = match message {
        // The core takes PRE-PREPAREs of view 0 only; later views start with a NEW-VIEW.
        Message::PrePrepare(vote) if vote.vote.view == 0 => vote,
        Message::NewView { proposal, .. } => proposal,
        _ => return false,
    };
    let (height, view) = (proposal.vote.height, proposal.vote.view);
    height == chain.head.height + 1 && Replica::leader(&chain.validators, height, view) == proposal.validator
}
