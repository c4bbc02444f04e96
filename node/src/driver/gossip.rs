//! Inbound network traffic: gossip validation (nothing is forwarded before it decodes and its
//! signatures verify against the validator set of its height) and direct messages.

use std::borrow::Cow;

use consensus::{Message, MessageError, ValidatorSet, Verified};
use ledger::{BlockReader, StateHistory};
use libp2p::PeerId;
use tracing::{debug, warn};

use super::{Driver, Error, Input, admission::CheckedGossip};
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
                let acceptance = self.on_consensus_gossip(source, &data)?;
                self.network.validated(id, source, acceptance);
            }
            // Checked first, off this loop: they arrive through `on_tx_gossip`.
            NetworkEvent::Gossip { topic: Topic::Transactions, id, source, .. } => {
                self.network.validated(id, source, MessageAcceptance::Ignore);
            }
            NetworkEvent::Direct { peer, message } => {
                if let Err(Refusal::Invalid(reason)) = self.on_consensus_message(*message)? {
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
            NetworkEvent::Proposal { block: Some(block), .. } => self.on_block_body(*block)?,
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
                let digest = match &message {
                    Message::PrePrepare(vote) => vote.vote.digest,
                    Message::NewView { proposal, .. } => proposal.vote.digest,
                    _ => return Ok(MessageAcceptance::Reject),
                };
                if digest != block.hash() {
                    warn!(peer = %source, "a proposal's block does not match its digest");
                    return Ok(MessageAcceptance::Reject);
                }
                (message, Some(block))
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
