//! A validator that misbehaves on purpose, for the Byzantine tests. Compiled only with the
//! `byzantine` feature, which only test builds enable (node's self dev-dependency): a release
//! build has none of this code.
//!
//! `STELE_BYZANTINE=equivocate,double-vote,garbage,oversized,bad-signature,replay,tamper-body,far-future,lie-sync`
//! (or `all`) chooses the behaviours at start. They act where the driver's messages leave it, on top of the
//! honest core, which keeps running (so the validator still takes part and its lies look like
//! its honest messages):
//! - `equivocate`: as leader, a second, different block (same transactions, another timestamp)
//!   proposed for the same height and view;
//! - `double-vote`: each PREPARE and COMMIT followed by a second one for another digest;
//! - `garbage`: random bytes on both gossip topics;
//! - `oversized`: gossip and a direct message just under this node's own size limit (run it
//!   with a larger `network.max_message_bytes` than its peers so they must refuse them);
//! - `bad-signature`: its votes with a flipped signature bit, and votes claiming another
//!   validator's index signed by a key outside the set;
//! - `replay`: messages of earlier heights (its own and those it received) sent again;
//! - `tamper-body`: another leader's true header with another body, both when it answers a
//!   body fetch and when it re-gossips that leader's signed proposal (its peers must blame it,
//!   not the proposal);
//! - `far-future`: for views it leads far past the current one (and for views just ahead),
//!   signed PRE-PREPAREs and unjustified NEW-VIEWs carrying blocks, to fill its peers' tables
//!   of proposals and so force fetches that `tamper-body` answers;
//! - `lie-sync`: to block sync, the head `u64::MAX` and an empty answer to every range (the
//!   serving task, `p2p::serve`, acts on it).

use std::{
    collections::{HashSet, VecDeque},
    time::{Duration, Instant},
};

use consensus::{
    Digest, Message, Replica, Signature, SignedViewChange, SignedVote, SigningKey, View, ViewChange, Vote, VoteKind,
};
use ledger::{Address, Block, Payload, Transaction};
use tracing::{error, warn};

use super::{ChainStore, Driver, Error, Network, Now};
use crate::p2p::{Topic, protocol::ConsensusGossip};

/// The variable that chooses the behaviours.
pub const ENV: &str = "STELE_BYZANTINE";
/// Messages kept for replay.
const REPLAY_KEPT: usize = 512;
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

/// One way to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Two proposals for one height and view.
    Equivocate,
    /// Two PREPAREs or COMMITs for one height and view.
    DoubleVote,
    /// Random bytes as gossip.
    Garbage,
    /// Messages over the peers' size limit.
    Oversized,
    /// Wrong signatures, and signatures by a key outside the set.
    BadSignature,
    /// Messages of earlier heights again.
    Replay,
    /// The true header with another body, served and re-gossiped.
    TamperBody,
    /// Proposals for views far ahead (and just ahead), to fill the peers' tables.
    FarFuture,
    /// In block sync, claims the highest possible head and answers every range with nothing
    /// (acted on by the serving task, `p2p::serve`).
    LieSync,
}

impl Behaviour {
    const ALL: [(&'static str, Behaviour); 9] = [
        ("equivocate", Behaviour::Equivocate),
        ("double-vote", Behaviour::DoubleVote),
        ("garbage", Behaviour::Garbage),
        ("oversized", Behaviour::Oversized),
        ("bad-signature", Behaviour::BadSignature),
        ("replay", Behaviour::Replay),
        ("tamper-body", Behaviour::TamperBody),
        ("far-future", Behaviour::FarFuture),
        ("lie-sync", Behaviour::LieSync),
    ];
}

/// The chosen behaviours and what they need to remember.
pub(super) struct Byzantine {
    behaviours: HashSet<Behaviour>,
    /// Feeds the pseudo-random bytes (no RNG dependency for a test feature).
    counter: u64,
    seed: u64,
    /// A key outside every validator set, for impersonation.
    outsider: SigningKey,
    /// Recent messages (sent and received), replayed once their height is past.
    seen: VecDeque<Message>,
    last_oversized: Option<Instant>,
}

impl Byzantine {
    /// The behaviours named by [`ENV`] (`None` when it is unset or empty).
    pub(super) fn from_env() -> Result<Option<Self>, Error> {
        let Ok(names) = std::env::var(ENV) else { return Ok(None) };
        let behaviours = parse(&names)?;
        if behaviours.is_empty() {
            return Ok(None);
        }
        let seed = Now::system().unix_ms;
        let outsider = SigningKey::from_seed(Digest::of(&seed.to_le_bytes()).0);
        Ok(Some(Byzantine { behaviours, counter: 0, seed, outsider, seen: VecDeque::new(), last_oversized: None }))
    }

    fn on(&self, behaviour: Behaviour) -> bool {
        self.behaviours.contains(&behaviour)
    }

    /// `len` pseudo-random bytes.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len + 32);
        while bytes.len() < len {
            self.counter += 1;
            bytes.extend_from_slice(&Digest::of_parts(&[&self.seed.to_le_bytes(), &self.counter.to_le_bytes()]).0);
        }
        bytes.truncate(len);
        bytes
    }

    fn digest(&mut self) -> Digest {
        Digest::of(&self.bytes(32))
    }

    fn remember(&mut self, message: &Message) {
        if self.on(Behaviour::Replay) {
            if self.seen.len() >= REPLAY_KEPT {
                self.seen.pop_front();
            }
            self.seen.push_back(message.clone());
        }
    }
}

/// The behaviours a comma-separated list names (`all` for every one).
/// Whether [`ENV`] names `lie-sync` (or `all`): the serving task then lies to syncing peers.
pub(crate) fn lies_in_sync() -> bool {
    std::env::var(ENV)
        .ok()
        .and_then(|names| parse(&names).ok())
        .is_some_and(|behaviours| behaviours.contains(&Behaviour::LieSync))
}

fn parse(names: &str) -> Result<HashSet<Behaviour>, Error> {
    let mut behaviours = HashSet::new();
    for name in names.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        if name == "all" {
            behaviours.extend(Behaviour::ALL.iter().map(|(_, behaviour)| *behaviour));
            continue;
        }
        let behaviour = Behaviour::ALL.iter().find(|(known, _)| *known == name).map(|(_, behaviour)| *behaviour);
        match behaviour {
            Some(behaviour) => behaviours.insert(behaviour),
            None => {
                let known: Vec<&str> = Behaviour::ALL.iter().map(|(known, _)| *known).collect();
                return Err(Error::Byzantine(format!(
                    "{ENV}: unknown behaviour {name:?} (known: all, {})",
                    known.join(", ")
                )));
            }
        };
    }
    Ok(behaviours)
}

/// Logs at start what this build is, loudly: a node that misbehaves must never pass unnoticed.
pub(super) fn announce(byzantine: Option<&Byzantine>) {
    match byzantine {
        Some(byzantine) => {
            let mut names: Vec<&str> = Behaviour::ALL
                .iter()
                .filter(|(_, behaviour)| byzantine.on(*behaviour))
                .map(|(name, _)| *name)
                .collect();
            names.sort_unstable();
            error!(behaviours = %names.join(","), "BYZANTINE TEST BUILD: this validator misbehaves on purpose");
        }
        None => warn!("Byzantine test build (feature `byzantine`): {ENV} is unset, so this node behaves"),
    }
}

impl<S: ChainStore, N: Network> Driver<S, N> {
    /// A message received and verified: kept for replay.
    pub(super) fn byzantine_received(&mut self, message: &Message) {
        if let Some(byzantine) = self.byzantine.as_mut() {
            byzantine.remember(message);
        }
    }

    /// Runs after the honest broadcast of `message`: adds the lies it calls for.
    pub(super) fn byzantine_broadcast(&mut self, message: &Message) {
        let Some(mut byzantine) = self.byzantine.take() else { return };
        let now = self.now();
        if byzantine.on(Behaviour::Equivocate) {
            self.equivocate(message);
        }
        if byzantine.on(Behaviour::DoubleVote)
            && let Message::Prepare(vote) | Message::Commit(vote) = message
        {
            let conflicting = Vote { digest: byzantine.digest(), ..vote.vote };
            let signed = SignedVote::sign(&self.settings.chain_id, conflicting, vote.validator, &self.settings.key);
            self.send_everywhere(match message {
                Message::Prepare(_) => Message::Prepare(signed),
                _ => Message::Commit(signed),
            });
        }
        if byzantine.on(Behaviour::BadSignature) {
            self.bad_signatures(&mut byzantine, message);
        }
        if byzantine.on(Behaviour::Garbage) {
            let len = 1 + (byzantine.bytes(2).iter().map(|byte| usize::from(*byte)).sum::<usize>() * 8);
            self.network.publish(Topic::Consensus, byzantine.bytes(len));
            self.network.publish(Topic::Transactions, byzantine.bytes(len));
        }
        if byzantine.on(Behaviour::Oversized)
            && byzantine.last_oversized.is_none_or(|at| now.saturating_duration_since(at) >= OVERSIZED_INTERVAL)
        {
            byzantine.last_oversized = Some(now);
            self.oversized();
        }
        if byzantine.on(Behaviour::FarFuture)
            && let Message::Prepare(vote) = message
        {
            self.far_future(&mut byzantine, vote.vote.view);
        }
        if byzantine.on(Behaviour::Replay) {
            let current = self.head.height + 1;
            let old: Vec<Message> = byzantine
                .seen
                .iter()
                .filter(|seen| seen.height() < current)
                .take(REPLAY_PER_BROADCAST)
                .cloned()
                .collect();
            // Rotate, so each broadcast replays different old messages.
            for _ in 0..old.len() {
                if let Some(front) = byzantine.seen.pop_front() {
                    byzantine.seen.push_back(front);
                }
            }
            for message in old {
                self.send_everywhere(message);
            }
        }
        byzantine.remember(message);
        self.byzantine = Some(byzantine);
    }

    /// As leader: a second block for the same height and view, with its own signed proposal.
    fn equivocate(&mut self, message: &Message) {
        let (Message::PrePrepare(proposal) | Message::NewView { proposal, .. }) = message else { return };
        let Some(honest) = self.bodies.get(&proposal.vote.digest) else { return };
        let transactions = honest.block.transactions.clone();
        let timestamp_ms = honest.block.header.timestamp_ms + 1;
        let built = ledger::build_block(
            self.store.as_ref(),
            &self.head,
            self.settings.key.public_key(),
            timestamp_ms,
            transactions,
            ledger::SignatureCheck::Unverified(&|_| true),
        );
        let Ok((block, execution)) = built else { return };
        let digest = block.hash();
        let vote = Vote { digest, ..proposal.vote };
        let signed = SignedVote::sign(&self.settings.chain_id, vote, proposal.validator, &self.settings.key);
        let conflicting = match message {
            Message::NewView { view_changes, .. } => {
                Message::NewView { proposal: signed, view_changes: view_changes.clone() }
            }
            _ => Message::PrePrepare(signed),
        };
        warn!(height = vote.height, view = vote.view, %digest, "byzantine: proposing a second block");
        for peer in self.validator_peers.iter().flatten().filter(|peer| **peer != self.network.local_peer_id()) {
            self.network.send_direct(*peer, conflicting.clone());
        }
        let gossip = ConsensusGossip::Proposal { message: conflicting, block: Box::new(block.clone()) };
        self.network.publish(Topic::Consensus, gossip.encode());
        // Served to peers that fetch it by hash.
        self.bodies.insert_own(block, execution);
    }

    /// `tamper-body`: the answer to a body fetch, with the true header and another body. Its
    /// own proposals are served intact: withholding them would only make it a silent leader
    /// (and censor the transactions submitted to it alone); the attack is on others' blocks.
    pub(super) fn byzantine_serve(&self, block: Option<Box<Block>>) -> Option<Box<Block>> {
        let own = self.settings.key.public_key();
        match (&self.byzantine, block) {
            (Some(byzantine), Some(block)) if byzantine.on(Behaviour::TamperBody) && block.header.proposer != own => {
                warn!(height = block.header.height, "byzantine: serving a tampered body");
                Some(Box::new(tamper(&block, &byzantine.outsider)))
            }
            (_, block) => block,
        }
    }

    /// `tamper-body`: a leader's signed proposal received with its block, gossiped again with
    /// the true header and another body.
    pub(super) fn byzantine_regossip(&self, message: &Message, block: &Block) {
        let Some(byzantine) = &self.byzantine else { return };
        if !byzantine.on(Behaviour::TamperBody) {
            return;
        }
        warn!(height = block.header.height, "byzantine: re-gossiping a proposal with a tampered body");
        let tampered = tamper(block, &byzantine.outsider);
        let gossip = ConsensusGossip::Proposal { message: message.clone(), block: Box::new(tampered) };
        self.network.publish(Topic::Consensus, gossip.encode());
    }

    /// `far-future`: signed proposals with blocks for views this validator leads, far past
    /// `view` and just past it, as PRE-PREPAREs and as NEW-VIEWs without justification.
    fn far_future(&mut self, byzantine: &mut Byzantine, view: View) {
        let Some(me) = self.validators.index_of(&self.settings.key.public_key()) else { return };
        let height = self.head.height + 1;
        let n = self.validators.len() as View;
        // The views after `from` that this validator leads: (height + v) % n == me.
        let led_after = |from: View| {
            let first = from + 1;
            let offset = (u64::from(me) + n - (height + first) % n) % n;
            (0..).map(move |k| first + offset + k * n)
        };
        let far = led_after(view + FAR_VIEWS + byzantine.counter % FAR_VIEWS).take(FAR_PER_BROADCAST as usize / 2);
        let near = led_after(view).take(FAR_PER_BROADCAST as usize / 2);
        for (index, proposal_view) in far.chain(near).enumerate() {
            debug_assert_eq!(Replica::leader(&self.validators, height, proposal_view), me);
            byzantine.counter += 1;
            let timestamp_ms = self.head.timestamp_ms + 1 + byzantine.counter;
            let built = ledger::build_block(
                self.store.as_ref(),
                &self.head,
                self.settings.key.public_key(),
                timestamp_ms,
                Vec::new(),
                ledger::SignatureCheck::All,
            );
            let Ok((block, _)) = built else { return };
            let vote = Vote { kind: VoteKind::PrePrepare, height, view: proposal_view, digest: block.hash() };
            let signed = SignedVote::sign(&self.settings.chain_id, vote, me, &self.settings.key);
            let message = if index % 2 == 0 {
                Message::PrePrepare(signed)
            } else {
                Message::NewView { proposal: signed, view_changes: Vec::new() }
            };
            let gossip = ConsensusGossip::Proposal { message, block: Box::new(block) };
            self.network.publish(Topic::Consensus, gossip.encode());
        }
        warn!(height, view, "byzantine: proposing for views ahead");
    }

    /// Its own vote with a broken signature, and one claiming another validator's index signed
    /// by a key outside the set.
    fn bad_signatures(&mut self, byzantine: &mut Byzantine, message: &Message) {
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
        self.send_everywhere(rewrap(flipped));
        let others = self.validators.len() as u32;
        let victim = (vote.validator + 1 + (byzantine.counter as u32 % others.saturating_sub(1).max(1))) % others;
        let forged = Vote { digest: byzantine.digest(), ..vote.vote };
        self.send_everywhere(rewrap(SignedVote::sign(&self.settings.chain_id, forged, victim, &byzantine.outsider)));
    }

    /// Gossip and a direct message to every validator, each just under this node's own size
    /// limit: over its peers' when theirs is lower, so they must refuse them unread.
    fn oversized(&self) {
        let size = self.network.max_message_bytes().saturating_sub(OVERSIZED_SLACK);
        warn!(bytes = size, "byzantine: sending oversized messages");
        self.network.publish(Topic::Consensus, vec![0xa5; size]);
        // A NEW-VIEW padded with copies of one unsigned VIEW-CHANGE: refused by its size before
        // anyone decodes it, or else by its signatures.
        let view_change = SignedViewChange {
            view_change: ViewChange { height: self.head.height + 1, view: 1, prepared: None },
            validator: 0,
            signature: Signature([0; 64]),
        };
        let one = borsh::object_length(&view_change).unwrap_or(usize::MAX).max(1);
        let proposal = SignedVote {
            vote: Vote { kind: VoteKind::PrePrepare, height: self.head.height + 1, view: 1, digest: Digest::ZERO },
            validator: 0,
            signature: Signature([0; 64]),
        };
        let message = Message::NewView { proposal, view_changes: vec![view_change; size / one] };
        let me = self.network.local_peer_id();
        for peer in self.validator_peers.iter().flatten().filter(|peer| **peer != me) {
            self.network.send_direct(*peer, message.clone());
        }
    }

    /// To every other validator directly, and as gossip.
    fn send_everywhere(&self, message: Message) {
        let me = self.network.local_peer_id();
        for peer in self.validator_peers.iter().flatten().filter(|peer| **peer != me) {
            self.network.send_direct(*peer, message.clone());
        }
        self.network.publish(Topic::Consensus, ConsensusGossip::Message(message).encode());
    }
}

/// The same header with another body: the last transaction dropped, or, for an empty block,
/// one signed by `outsider` added.
pub(crate) fn tamper(block: &Block, outsider: &SigningKey) -> Block {
    let mut tampered = block.clone();
    if tampered.transactions.pop().is_none() {
        let payload = Payload::Transfer { to: Address([0; 20]), amount: 1 };
        let transaction =
            Transaction { chain_id: block.header.chain_id.clone(), signer: outsider.public_key(), nonce: 0, payload };
        tampered.transactions.push(transaction.sign(outsider));
    }
    tampered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_body_keeps_the_header_and_fails_the_body_check() {
        let outsider = SigningKey::from_seed([3; 32]);
        let header = ledger::BlockHeader {
            chain_id: consensus::ChainId::new("byzantine").expect("chain id"),
            height: 1,
            previous_hash: Digest::ZERO,
            timestamp_ms: 1,
            proposer: outsider.public_key(),
            tx_root: Digest::ZERO,
            receipts_root: Digest::ZERO,
            state_root: Digest::ZERO,
            validator_set_digest: Digest::ZERO,
        };
        let empty = Block { header, transactions: Vec::new() };
        let once = tamper(&empty, &outsider);
        let twice = tamper(&once, &outsider);
        for (honest, tampered) in [(&empty, &once), (&once, &twice)] {
            assert_eq!(tampered.hash(), honest.hash());
            assert_ne!(tampered.transactions, honest.transactions);
        }
        assert!(super::super::body_cache::body_matches_header(&empty).is_ok());
        assert!(super::super::body_cache::body_matches_header(&once).is_err());
    }

    #[test]
    fn parses_behaviour_lists() {
        let parsed = parse(" double-vote, replay ,").expect("valid");
        assert_eq!(parsed, HashSet::from([Behaviour::DoubleVote, Behaviour::Replay]));
        assert_eq!(parse("all").expect("valid").len(), Behaviour::ALL.len());
        assert!(parse("").expect("valid").is_empty());
        let refused = parse("equivocate,lie").expect_err("unknown");
        assert!(refused.to_string().contains("\"lie\""), "{refused}");
    }
}
