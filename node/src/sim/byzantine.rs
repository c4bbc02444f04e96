//! A Byzantine validator in the simulation: an honest driver behind a network that lies. What
//! the driver asks to send is rewritten on its way out ([`rewrite`]), and what peers ask it to
//! serve is answered falsely ([`Behaviour::LieSync`]), so the honest core keeps taking part and
//! its lies look like its honest messages, as the node's own `byzantine` feature does.

use consensus::{ChainId, Digest, Message, SignedVote, SigningKey, Vote};

use super::network::Outgoing;
use crate::byzantine::tamper;
use crate::p2p::{Topic, protocol::ConsensusGossip, protocol::Response};

/// One way to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends nothing at all (it still receives and commits).
    Silent,
    /// Its proposals gossiped with another body than their headers commit to, and every body
    /// it serves tampered the same way.
    TamperBody,
    /// Each PREPARE and COMMIT followed by a second one for another digest.
    DoubleVote,
    /// Claims the highest possible head and answers every block range with nothing.
    LieSync,
    /// Random bytes on both gossip topics with everything it publishes.
    Garbage,
}

impl Behaviour {
    /// Every behaviour, for a seed to choose from.
    pub const ALL: [Behaviour; 5] =
        [Behaviour::Silent, Behaviour::TamperBody, Behaviour::DoubleVote, Behaviour::LieSync, Behaviour::Garbage];
}

/// What the Byzantine node's requests become on the wire.
pub fn rewrite(
    behaviour: Behaviour,
    outgoing: Outgoing,
    chain_id: &ChainId,
    key: &SigningKey,
    rng: &mut fastrand::Rng,
) -> Vec<Outgoing> {
    match (behaviour, outgoing) {
        (Behaviour::Silent, _) => Vec::new(),
        (Behaviour::TamperBody, Outgoing::Respond(to, Response::Body(Some(block)))) => {
            vec![Outgoing::Respond(to, Response::Body(Some(Box::new(tamper(&block, key)))))]
        }
        (Behaviour::TamperBody, Outgoing::Publish(Topic::Consensus, data)) => {
            match borsh::from_slice::<ConsensusGossip>(&data) {
                Ok(ConsensusGossip::Proposal { message, block }) => {
                    let tampered = ConsensusGossip::Proposal { message, block: Box::new(tamper(&block, key)) };
                    vec![Outgoing::Publish(Topic::Consensus, tampered.encode())]
                }
                _ => vec![Outgoing::Publish(Topic::Consensus, data)],
            }
        }
        (Behaviour::DoubleVote, Outgoing::Direct(peer, message)) => {
            let conflicting = conflicting_vote(&message, chain_id, key, rng);
            let mut out = vec![Outgoing::Direct(peer, message)];
            out.extend(conflicting.map(|message| Outgoing::Direct(peer, message)));
            out
        }
        (Behaviour::Garbage, Outgoing::Publish(topic, data)) => {
            let len = rng.usize(1..2_000);
            let garbage: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            vec![
                Outgoing::Publish(topic, data),
                Outgoing::Publish(Topic::Consensus, garbage.clone()),
                Outgoing::Publish(Topic::Transactions, garbage),
            ]
        }
        (_, outgoing) => vec![outgoing],
    }
}

/// A second vote of the same kind, height and view for another digest, signed by `key`.
fn conflicting_vote(
    message: &Message,
    chain_id: &ChainId,
    key: &SigningKey,
    rng: &mut fastrand::Rng,
) -> Option<Message> {
    let (Message::Prepare(vote) | Message::Commit(vote)) = message else { return None };
    let other = Vote { digest: Digest::of(&rng.u64(..).to_le_bytes()), ..vote.vote };
    let signed = SignedVote::sign(chain_id, other, vote.validator, key);
    Some(match message {
        Message::Prepare(_) => Message::Prepare(signed),
        _ => Message::Commit(signed),
    })
}
