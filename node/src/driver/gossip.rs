//! Inbound network traffic: gossip validation (nothing is forwarded before it decodes and its
//! signatures verify against the validator set of its height) and direct messages.

use std::borrow::Cow;

use consensus::{Message, MessageError, Replica, ValidatorSet, Verified};
use ledger::Block;
use libp2p::PeerId;
use tracing::{debug, warn};

use super::{ChainStore, Driver, Error, Input, Network, proposals::Unasked};
use crate::p2p::{
    MessageAcceptance, NetworkEvent, Topic,
    protocol::{ConsensusGossip, Response},
};

/// Why a consensus message was not fed to the core.
enum Refusal {
    /// The sender misbehaved: penalise.
    Invalid(String),
    /// Not useful now (too far ahead, or the store could not say): drop quietly.
    Ignored,
}

impl<S: ChainStore, N: Network> Driver<S, N> {
    pub(super) fn on_network(&mut self, event: NetworkEvent<N::Reply>) -> Result<(), Error> {
        match event {
            NetworkEvent::Gossip { topic: Topic::Consensus, id, source, data } => {
                self.delivered_by = Some(source);
                let acceptance = self.on_consensus_gossip(source, &data);
                self.delivered_by = None;
                self.network.validated(id, source, acceptance?);
            }
            // The mempool's admission takes them, off this loop (`crate::mempool::admission`).
            NetworkEvent::Gossip { topic: Topic::Transactions, id, source, .. } => {
                self.network.validated(id, source, MessageAcceptance::Ignore);
            }
            NetworkEvent::Direct { peer, message } => {
                self.delivered_by = Some(peer);
                let verdict = self.on_consensus_message(*message);
                self.delivered_by = None;
                if let Err(Refusal::Invalid(reason)) = verdict? {
                    warn!(%peer, %reason, "invalid direct message");
                }
            }
            NetworkEvent::BodyWanted { digest, channel } => {
                let block = match self.bodies.get(&digest) {
                    Some(cached) => Some(Box::new(cached.block.clone())),
                    None => match self.store.height_of(&digest)? {
                        Some(height) => self.store.block(height)?.map(|certified| Box::new(certified.block)),
                        None => None,
                    },
                };
                self.network.respond(channel, Response::Body(block));
            }
            NetworkEvent::Body { peer, block: Some(block) } => self.on_fetched_body(peer, *block)?,
            NetworkEvent::Body { block: None, .. } => {}
            NetworkEvent::PeerHead { peer, head } => self.on_peer_head(peer, head),
            NetworkEvent::Blocks { peer, blocks } => self.on_blocks(peer, blocks)?,
            NetworkEvent::RequestFailed { peer } => self.on_request_failed(peer),
            NetworkEvent::Connected(_) => {
                self.connected += 1;
                self.metrics.peers.inc();
            }
            NetworkEvent::Disconnected(peer) => {
                self.connected = self.connected.saturating_sub(1);
                self.metrics.peers.dec();
                self.on_request_failed(peer);
            }
        }
        Ok(())
    }

    fn on_consensus_gossip(&mut self, source: PeerId, data: &[u8]) -> Result<MessageAcceptance, Error> {
        let gossip: ConsensusGossip = match borsh::from_slice(data) {
            Ok(gossip) => gossip,
            Err(error) => {
                warn!(peer = %source, %error, "undecodable consensus gossip");
                return Ok(MessageAcceptance::Reject);
            }
        };
        let (message, block) = match gossip {
            ConsensusGossip::Message(message) => (message, None),
            ConsensusGossip::Proposal { message, block } => {
                let (proposal, re_proposed) = match &message {
                    // The core takes PRE-PREPAREs of view 0 only (later views start with a
                    // NEW-VIEW): a block with one for another view is of no use.
                    Message::PrePrepare(vote) => (vote, vote.vote.view != 0),
                    Message::NewView { proposal, view_changes } => {
                        let prepared = view_changes
                            .iter()
                            .filter_map(|signed| signed.view_change.prepared.as_ref())
                            .max_by_key(|prepared| prepared.view);
                        (proposal, prepared.is_some_and(|prepared| prepared.digest == proposal.vote.digest))
                    }
                    _ => return Ok(MessageAcceptance::Reject),
                };
                if proposal.vote.digest != block.hash() {
                    warn!(peer = %source, "a proposal's block does not match its digest");
                    return Ok(MessageAcceptance::Reject);
                }
                // Only the leader of the proposal's view may bring a block along: any validator
                // can sign PRE-PREPAREs, and a Byzantine one would otherwise fill the cache of
                // proposals with blocks for views it does not lead. A fresh block must name that
                // leader as its proposer; a re-proposed one was built by an earlier view's.
                let (height, view) = (proposal.vote.height, proposal.vote.view);
                let leads = height == self.head.height + 1
                    && Replica::leader(&self.validators, height, view) == proposal.validator
                    && !matches!(message, Message::PrePrepare(_) if view != 0);
                let unasked = Unasked {
                    proposer: proposal.validator,
                    view,
                    leader_key: if re_proposed { None } else { self.validators.get(proposal.validator).copied() },
                };
                (message, leads.then_some((block, unasked)))
            }
        };
        let verified = match self.verify(message) {
            Ok(verified) => verified,
            Err(Refusal::Invalid(reason)) => {
                warn!(peer = %source, %reason, "invalid consensus gossip");
                return Ok(MessageAcceptance::Reject);
            }
            Err(Refusal::Ignored) => return Ok(MessageAcceptance::Ignore),
        };
        // The block first: the core may ask to validate it as soon as it sees the proposal.
        let mut acceptance = MessageAcceptance::Accept;
        if let Some((block, unasked)) = block
            && let Err(mismatch) = self.on_block_body(*block, Some(unasked))?
        {
            // The leader's signed proposal with another body than its header commits to: the
            // forwarder lied (honest nodes check before forwarding). The proposal itself is
            // genuine, so the core still gets it, and fetches the true body by hash.
            warn!(peer = %source, %mismatch, "a proposal came with a body its header does not commit to");
            acceptance = MessageAcceptance::Reject;
        }
        self.feed_verified(verified)?;
        Ok(acceptance)
    }

    fn on_consensus_message(&mut self, message: Message) -> Result<Result<(), Refusal>, Error> {
        match self.verify(message) {
            Ok(verified) => {
                self.feed_verified(verified)?;
                Ok(Ok(()))
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    /// A block body fetched by hash. Anyone may answer a fetch, so it is kept only if something
    /// waits for it (then always, making room if unasked bodies filled the cache, else a
    /// Byzantine leader's extra proposals could keep out the block a height needs). A body its
    /// header does not commit to is dropped and blamed on the peer that sent it; the fetch went
    /// to every connected peer, so the others' answers still arrive, and the missing body is
    /// asked for again each `HEADS_INTERVAL` until one matches.
    fn on_fetched_body(&mut self, peer: PeerId, block: Block) -> Result<(), Error> {
        if let Err(mismatch) = self.on_block_body(block, None)? {
            // No peer-scoring call exists for request-response answers yet: logged.
            warn!(%peer, %mismatch, "a peer answered a body fetch with a body its header does not commit to");
        }
        Ok(())
    }

    /// Checks a message's signatures against the set of its height (known up to `head + 1`).
    fn verify(&mut self, message: Message) -> Result<Verified<Message>, Refusal> {
        let height = message.height();
        if height > self.head.height + 1 {
            // From the future: this node is behind. Sync will catch it up.
            debug!(height, head = self.head.height, "message from a height ahead; asking peers for their heads");
            self.network.ask_heads();
            return Err(Refusal::Ignored);
        }
        // The next height's set is held; only messages about older heights read one.
        let validators: Cow<'_, ValidatorSet> = if height == self.head.height + 1 {
            Cow::Borrowed(&self.validators)
        } else {
            match self.store.validator_set_for(height.max(1)) {
                Ok(validators) => Cow::Owned(validators),
                Err(error) => {
                    debug!(height, %error, "no validator set for an old message");
                    return Err(Refusal::Ignored);
                }
            }
        };
        message
            .verify(&self.settings.chain_id, &validators)
            .map_err(|error: MessageError| Refusal::Invalid(format!("height {height}: {error}")))
    }

    /// Feeds a verified message; one for the next height wakes an idle node.
    fn feed_verified(&mut self, verified: Verified<Message>) -> Result<(), Error> {
        if verified.message().height() == self.head.height + 1 {
            self.start_height()?;
        }
        self.feed(Input::Message(verified))
    }
}
