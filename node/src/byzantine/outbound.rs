//! Where messages leave the node: every request passes to the real network, and the lies a
//! behaviour calls for follow the honest message they imitate.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use consensus::{
    Digest, Height, Message, Replica, Signature, SignedViewChange, SignedVote, View, ViewChange, Vote, VoteKind,
};
use ledger::{Block, StateHistory};
use libp2p::PeerId;
use tracing::warn;

use super::{Behaviour, Byzantine, Chain, State, tamper};
use crate::{
    driver::Network,
    p2p::{
        MessageAcceptance, MessageId, Topic,
        protocol::{ConsensusGossip, Response},
    },
};

/// Old messages sent again per message this node broadcasts.
const REPLAY_PER_BROADCAST: usize = 2;
/// Oversized messages are sent at most this often (each is megabytes).
const OVERSIZED_INTERVAL: Duration = Duration::from_secs(2);
/// Room left below the size limit for gossipsub's and the codec's framing.
const OVERSIZED_SLACK: usize = 4096;
/// `far-future` proposes for views this far past the current one, and beyond.
const FAR_VIEWS: View = 1_000;
/// Proposals `far-future` sends per PREPARE this node broadcasts (far ahead, and just ahead).
const FAR_PER_BROADCAST: u64 = 4;

impl<N: Network, S: StateHistory + Send + Sync + 'static> Network for Byzantine<N, S> {
    type Reply = N::Reply;

    fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id()
    }

    /// The driver publishes consensus gossip only to broadcast (after sending each validator
    /// its direct copy): the lies that broadcast calls for follow it.
    fn publish(&self, topic: Topic, data: Vec<u8>) {
        let broadcast = match topic {
            Topic::Consensus => borsh::from_slice::<ConsensusGossip>(&data).ok(),
            Topic::Transactions => None,
        };
        self.inner.publish(topic, data);
        if let Some(gossip) = broadcast {
            self.after_broadcast(gossip);
        }
    }

    fn validated(&self, id: MessageId, source: PeerId, acceptance: MessageAcceptance) {
        self.inner.validated(id, source, acceptance);
    }

    fn send_direct(&self, peer: PeerId, message: Message) {
        self.inner.send_direct(peer, message);
    }

    fn ask_heads(&self) {
        self.inner.ask_heads();
    }

    fn request_blocks(&self, peer: PeerId, from: Height, count: u32) {
        self.inner.request_blocks(peer, from, count);
    }

    fn request_body(&self, digest: Digest) {
        self.inner.request_body(digest);
    }

    /// `tamper-body`: a body fetch answered with the true header and another body. Its own
    /// proposals are served intact: withholding them would only make it a silent leader (and
    /// censor the transactions submitted to it alone); the attack is on others' blocks.
    fn respond(&self, reply: Self::Reply, response: Response) {
        let response = match response {
            Response::Body(Some(block))
                if self.on(Behaviour::TamperBody) && block.header.proposer != self.shared.key.public_key() =>
            {
                warn!(height = block.header.height, "byzantine: serving a tampered body");
                Response::Body(Some(Box::new(tamper(&block, &self.shared.outsider))))
            }
            response => response,
        };
        self.inner.respond(reply, response);
    }

    fn set_admitted(&self, peers: HashSet<PeerId>) {
        self.inner.set_admitted(peers);
    }

    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }
}

impl<N: Network, S: StateHistory + Send + Sync + 'static> Byzantine<N, S> {
    /// Runs after the honest broadcast of `gossip`'s message: adds the lies it calls for.
    fn after_broadcast(&self, gossip: ConsensusGossip) {
        let (message, block) = match gossip {
            ConsensusGossip::Message(message) => (message, None),
            ConsensusGossip::Proposal { message, block } => (message, Some(block)),
        };
        // Read before taking the state, which reading the chain takes too.
        let Some(chain) = self.chain() else { return };
        let mut state = self.state();
        let state = &mut *state;
        let seed = self.shared.seed;
        if self.on(Behaviour::Equivocate)
            && let Some(block) = &block
        {
            self.equivocate(state, &chain, &message, block);
        }
        if self.on(Behaviour::DoubleVote)
            && let Message::Prepare(vote) | Message::Commit(vote) = &message
        {
            let conflicting = Vote { digest: state.digest(seed), ..vote.vote };
            let signed = SignedVote::sign(&self.shared.chain_id, conflicting, vote.validator, &self.shared.key);
            self.send_everywhere(
                &chain,
                match message {
                    Message::Prepare(_) => Message::Prepare(signed),
                    _ => Message::Commit(signed),
                },
            );
        }
        if self.on(Behaviour::BadSignature) {
            self.bad_signatures(state, &chain, &message);
        }
        if self.on(Behaviour::Garbage) {
            let len = 1 + (state.bytes(seed, 2).iter().map(|byte| usize::from(*byte)).sum::<usize>() * 8);
            self.inner.publish(Topic::Consensus, state.bytes(seed, len));
            self.inner.publish(Topic::Transactions, state.bytes(seed, len));
        }
        let now = Instant::now();
        if self.on(Behaviour::Oversized)
            && state.last_oversized.is_none_or(|at| now.saturating_duration_since(at) >= OVERSIZED_INTERVAL)
        {
            state.last_oversized = Some(now);
            self.oversized(&chain);
        }
        if self.on(Behaviour::FarFuture)
            && let Message::Prepare(vote) = &message
        {
            self.far_future(state, &chain, vote.vote.view);
        }
        if self.on(Behaviour::Replay) {
            let current = chain.head.height + 1;
            let old: Vec<Message> =
                state.seen.iter().filter(|seen| seen.height() < current).take(REPLAY_PER_BROADCAST).cloned().collect();
            // Rotate, so each broadcast replays different old messages.
            for _ in 0..old.len() {
                if let Some(front) = state.seen.pop_front() {
                    state.seen.push_back(front);
                }
            }
            for message in old {
                self.send_everywhere(&chain, message);
            }
        }
        self.remember(state, &message);
    }

    /// As leader: a second block for the same height and view as `honest`, with its own signed
    /// proposal, kept to serve to peers that fetch it by hash.
    fn equivocate(&self, state: &mut State, chain: &Chain, message: &Message, honest: &Block) {
        let (Message::PrePrepare(proposal) | Message::NewView { proposal, .. }) = message else { return };
        let key = &self.shared.key;
        let built = ledger::build_block(
            self.shared.store.as_ref(),
            &chain.head,
            key.public_key(),
            honest.header.timestamp_ms + 1,
            honest.transactions.clone(),
            ledger::SignatureCheck::Unverified(&|_| true),
        );
        let Ok((block, _)) = built else { return };
        let digest = block.hash();
        let vote = Vote { digest, ..proposal.vote };
        let signed = SignedVote::sign(&self.shared.chain_id, vote, proposal.validator, key);
        let conflicting = match message {
            Message::NewView { view_changes, .. } => {
                Message::NewView { proposal: signed, view_changes: view_changes.clone() }
            }
            _ => Message::PrePrepare(signed),
        };
        warn!(height = vote.height, view = vote.view, %digest, "byzantine: proposing a second block");
        for peer in &chain.peers {
            self.inner.send_direct(*peer, conflicting.clone());
        }
        let gossip = ConsensusGossip::Proposal { message: conflicting, block: Box::new(block.clone()) };
        self.inner.publish(Topic::Consensus, gossip.encode());
        state.keep_own(block, &chain.head);
    }

    /// `far-future`: signed proposals with blocks for views this validator leads, far past
    /// `view` and just past it, as PRE-PREPAREs and as NEW-VIEWs without justification.
    fn far_future(&self, state: &mut State, chain: &Chain, view: View) {
        let key = &self.shared.key;
        let Some(me) = chain.validators.index_of(&key.public_key()) else { return };
        let height = chain.head.height + 1;
        let n = chain.validators.len() as View;
        // The views after `from` that this validator leads: (height + v) % n == me.
        let led_after = |from: View| {
            let first = from + 1;
            let offset = (u64::from(me) + n - (height + first) % n) % n;
            (0..).map(move |k| first + offset + k * n)
        };
        let far = led_after(view + FAR_VIEWS + state.counter % FAR_VIEWS).take(FAR_PER_BROADCAST as usize / 2);
        let near = led_after(view).take(FAR_PER_BROADCAST as usize / 2);
        for (index, proposal_view) in far.chain(near).enumerate() {
            debug_assert_eq!(Replica::leader(&chain.validators, height, proposal_view), me);
            state.counter += 1;
            let built = ledger::build_block(
                self.shared.store.as_ref(),
                &chain.head,
                key.public_key(),
                chain.head.timestamp_ms + 1 + state.counter,
                Vec::new(),
                ledger::SignatureCheck::All,
            );
            let Ok((block, _)) = built else { return };
            let vote = Vote { kind: VoteKind::PrePrepare, height, view: proposal_view, digest: block.hash() };
            let signed = SignedVote::sign(&self.shared.chain_id, vote, me, key);
            let message = if index % 2 == 0 {
                Message::PrePrepare(signed)
            } else {
                Message::NewView { proposal: signed, view_changes: Vec::new() }
            };
            let gossip = ConsensusGossip::Proposal { message, block: Box::new(block) };
            self.inner.publish(Topic::Consensus, gossip.encode());
        }
        warn!(height, view, "byzantine: proposing for views ahead");
    }

    /// Its own vote with a broken signature, and one claiming another validator's index signed
    /// by a key outside the set.
    fn bad_signatures(&self, state: &mut State, chain: &Chain, message: &Message) {
        let (Message::PrePrepare(vote) | Message::Prepare(vote) | Message::Commit(vote)) = message else { return };
        let rewrap = |signed: SignedVote| match message {
            Message::PrePrepare(_) => Message::PrePrepare(signed),
            Message::Prepare(_) => Message::Prepare(signed),
            _ => Message::Commit(signed),
        };
        let mut flipped = *vote;
        let mut signature = flipped.signature.0;
        signature[0] ^= 0x01;
        flipped.signature = Signature(signature);
        self.send_everywhere(chain, rewrap(flipped));
        let others = chain.validators.len() as u32;
        let victim = (vote.validator + 1 + (state.counter as u32 % others.saturating_sub(1).max(1))) % others;
        let forged = Vote { digest: state.digest(self.shared.seed), ..vote.vote };
        let signed = SignedVote::sign(&self.shared.chain_id, forged, victim, &self.shared.outsider);
        self.send_everywhere(chain, rewrap(signed));
    }

    /// Gossip and a direct message to every validator, each just under this node's own size
    /// limit: over its peers' when theirs is lower, so they must refuse them unread.
    fn oversized(&self, chain: &Chain) {
        let size = self.inner.max_message_bytes().saturating_sub(OVERSIZED_SLACK);
        warn!(bytes = size, "byzantine: sending oversized messages");
        self.inner.publish(Topic::Consensus, vec![0xa5; size]);
        // A NEW-VIEW padded with copies of one unsigned VIEW-CHANGE: refused by its size before
        // anyone decodes it, or else by its signatures.
        let height = chain.head.height + 1;
        let view_change = SignedViewChange {
            view_change: ViewChange { height, view: 1, prepared: None },
            validator: 0,
            signature: Signature([0; 64]),
        };
        let one = borsh::object_length(&view_change).unwrap_or(usize::MAX).max(1);
        let proposal = SignedVote {
            vote: Vote { kind: VoteKind::PrePrepare, height, view: 1, digest: Digest::ZERO },
            validator: 0,
            signature: Signature([0; 64]),
        };
        let message = Message::NewView { proposal, view_changes: vec![view_change; size / one] };
        for peer in &chain.peers {
            self.inner.send_direct(*peer, message.clone());
        }
    }

    /// To every other validator directly, and as gossip: as the driver broadcasts.
    fn send_everywhere(&self, chain: &Chain, message: Message) {
        for peer in &chain.peers {
            self.inner.send_direct(*peer, message.clone());
        }
        self.inner.publish(Topic::Consensus, ConsensusGossip::Message(message).encode());
    }
}
