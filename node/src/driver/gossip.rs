//! Inbound network traffic: gossip validation (nothing is forwarded before it decodes and its
//! signatures verify against the validator set of its height) and direct messages.

use std::borrow::Cow;

use consensus::{Message, MessageError, Replica, ValidatorSet, Verified};
use ledger::{Block, BlockReader, StateHistory};
use libp2p::PeerId;
use tracing::{debug, warn};

use super::{Driver, Error, Input, admission::CheckedGossip, proposals::PROPOSALS_MAX};
use crate::{
    mempool::{AdmitError, Prechecked},
    p2p::{
        MessageAcceptance, NetworkEvent, Topic,
        protocol::{ConsensusGossip, Response},
    },
};

/// Why a consensus message was not fed to the core.
enum Refusal {
    /// The sender misbehaved: penalise.
    Invalid(String),
    /// Not useful now (too far ahead, or the store could not say): drop quietly.
    Ignored,
}

impl Driver {
    pub(super) fn on_network(&mut self, event: NetworkEvent) -> Result<(), Error> {
        match event {
            NetworkEvent::Gossip { topic: Topic::Consensus, id, source, data } => {
                self.delivered_by = Some(source);
                let acceptance = self.on_consensus_gossip(source, &data);
                self.delivered_by = None;
                self.network.validated(id, source, acceptance?);
            }
            // Checked first, off this loop: they arrive through `on_tx_gossip`.
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
            NetworkEvent::ProposalWanted { digest, channel } => {
                let block = match self.proposals.get(&digest) {
                    Some(proposal) => Some(Box::new(proposal.block.clone())),
                    None => match self.store.height_of(&digest)? {
                        Some(height) => self.store.block(height)?.map(|certified| Box::new(certified.block)),
                        None => None,
                    },
                };
                self.network.respond(channel, Response::Proposal(block));
            }
            NetworkEvent::Proposal { block: Some(block), .. } => self.on_fetched_body(*block)?,
            NetworkEvent::Proposal { block: None, .. } => {}
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
                let proposal = match &message {
                    Message::PrePrepare(vote) => vote,
                    Message::NewView { proposal, .. } => proposal,
                    _ => return Ok(MessageAcceptance::Reject),
                };
                if proposal.vote.digest != block.hash() {
                    warn!(peer = %source, "a proposal's block does not match its digest");
                    return Ok(MessageAcceptance::Reject);
                }
                // Only the leader of the proposal's view may bring a block along: any validator
                // can sign PRE-PREPAREs, and a Byzantine one would otherwise fill the table of
                // proposals with blocks for views it does not lead.
                let (height, view) = (proposal.vote.height, proposal.vote.view);
                let leads = height == self.head.height + 1
                    && Replica::leader(&self.validators, height, view) == proposal.validator;
                (message, leads.then_some(block))
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
        if let Some(block) = block {
            self.on_block_body(*block)?;
        }
        self.feed_verified(verified)?;
        Ok(MessageAcceptance::Accept)
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
    /// waits for it; then it is always kept, making room if unsolicited bodies filled the table
    /// (else a Byzantine leader's extra proposals could keep out the block a height needs).
    fn on_fetched_body(&mut self, block: Block) -> Result<(), Error> {
        let digest = block.hash();
        let awaited = self.awaiting_validation.contains_key(&digest)
            || self.awaiting_block.as_ref().is_some_and(|certificate| certificate.digest == digest);
        if !awaited || block.header.height != self.head.height + 1 {
            return Ok(());
        }
        if self.proposals.len() >= PROPOSALS_MAX && !self.proposals.contains_key(&digest) {
            // Refused bodies go first, then those never checked, then valid ones (fetched
            // again if the height decides on one).
            let rank = |verdict: Option<bool>| match verdict {
                Some(false) => 0,
                None => 1,
                Some(true) => 2,
            };
            let victim =
                self.proposals.iter().min_by_key(|(_, proposal)| rank(proposal.verdict)).map(|(digest, _)| *digest);
            if let Some(victim) = victim {
                debug!(%victim, "proposals full: dropping one for a block that is waited for");
                self.proposals.remove(&victim);
            }
        }
        self.on_block_body(block)
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
        #[cfg(feature = "byzantine")]
        self.byzantine_received(verified.message());
        if verified.message().height() == self.head.height + 1 {
            self.start_height()?;
        }
        self.feed(Input::Message(verified))
    }

    /// Admits gossiped transactions (decoded and their signatures checked already). Rejects the
    /// message only for what the sender should have caught (it gossips only what it admitted):
    /// bad encoding, chain or signature.
    pub(super) fn on_tx_gossip(&mut self, gossip: CheckedGossip) -> Result<(), Error> {
        let CheckedGossip { id, source, transactions } = gossip;
        let acceptance = match transactions {
            None => MessageAcceptance::Reject,
            Some(checked) => self.admit_gossiped(checked),
        };
        self.network.validated(id, source, acceptance);
        Ok(())
    }

    fn admit_gossiped(&mut self, checked: Vec<Result<Prechecked, AdmitError>>) -> MessageAcceptance {
        let verdicts = self.mempool.admit_prechecked(self.store.as_ref(), checked);
        self.update_mempool_metrics();
        // Limits and signatures are the same on every node (genesis), so an invalid
        // transaction is one the sender should never have admitted.
        let sender_fault = verdicts.iter().any(|verdict| matches!(verdict, Err(AdmitError::Invalid(_))));
        let admitted = verdicts.iter().any(Result::is_ok);
        if sender_fault {
            MessageAcceptance::Reject
        } else if admitted {
            MessageAcceptance::Accept
        } else {
            MessageAcceptance::Ignore
        }
    }
}
