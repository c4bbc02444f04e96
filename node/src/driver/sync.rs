//! Block sync: a node behind its peers fetches certified blocks by range and applies each
//! through the audit path (link, transaction root, certificate against the set in force,
//! re-execution), then rejoins consensus at the new head.
//!
//! A peer's head is a hint, never a fact: it only makes the peer worth asking and bounds how
//! many blocks to ask for. A head is believed block by block, as each block's commit certificate
//! verifies against the set in force. (A certificate sent with the head would not do: a node
//! behind knows the validator set only up to its head plus the change delay, so it cannot check a
//! far head's certificate, and a valid certificate copied from an honest peer proves nothing about
//! the liar's willingness to serve.) What keeps a liar from stalling sync is [`SyncState`]:
//! requests rotate among the peers that claim to be ahead, and a peer that does not serve what it
//! claimed (nothing, too little, blocks that fail verification, no answer in time) loses its
//! claim and is not asked again for an exponentially growing while.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use consensus::Height;
use ledger::{CertifiedBlock, StoreError, validate::ApplyError};
use libp2p::PeerId;
use tracing::{debug, info, warn};

use super::{ChainStore, Driver, Error, Network};
use crate::p2p::protocol::SYNC_BATCH_MAX;

/// How long this node may stay one block behind a peer before fetching the block.
const ONE_BEHIND_GRACE: Duration = Duration::from_secs(2);
/// A block request unanswered for this long counts as refused, and another peer is asked (a
/// peer that never answers would otherwise hold the one request in flight until the
/// request-response timeout).
pub(super) const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long a peer that failed to serve is not asked; doubled per consecutive failure...
pub(super) const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// ...up to this.
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What sync knows: the peers' claimed heads and penalties, and the one request in flight.
#[derive(Debug, Default)]
pub(super) struct SyncState {
    /// Ordered by peer id, so rotation is deterministic.
    peers: BTreeMap<PeerId, PeerRecord>,
    in_flight: Option<InFlight>,
    /// The peer asked last: the next request goes to the next eligible peer after it.
    last_asked: Option<PeerId>,
}

/// One peer, as sync sees it.
#[derive(Debug, Default)]
struct PeerRecord {
    /// The head it claims (a hint); dropped when it fails to serve.
    claimed: Option<Height>,
    /// Failures since it last served what it claimed.
    failures: u32,
    /// Not asked before this.
    backoff_until: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    peer: PeerId,
    from: Height,
    /// The last height the answer should reach: the end of the range or the claimed head.
    until: Height,
    deadline: Instant,
}

/// A block request to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BlockRequest {
    /// Who to ask.
    pub(super) peer: PeerId,
    /// The first height wanted (this node's head + 1).
    pub(super) from: Height,
    /// How many.
    pub(super) count: u32,
}

/// What an answer to a block request brought, once its blocks were applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Answer {
    /// Height of its first block, if any.
    pub(super) first: Option<Height>,
    /// Blocks it added to the chain.
    pub(super) applied: u64,
    /// Whether a block failed verification.
    pub(super) invalid: bool,
    /// Its encoded size.
    pub(super) bytes: usize,
    /// The largest response this node accepts: an honest peer cuts an answer short only when
    /// the next block would not fit, so a short answer under half of it is withholding.
    pub(super) limit: usize,
}

/// How a peer failed to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// A block failed verification.
    Invalid,
    /// No block of a range it claimed.
    Empty,
    /// Fewer blocks than asked and claimed, in an answer far below the size limit.
    Short,
    /// No answer in time, a failed request or a dropped connection.
    Unanswered,
}

/// The judgement of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It served what it claimed (or what fit): its failures are forgiven.
    Served,
    /// Not the answer to the request in flight (a late one): its blocks count, it is not judged.
    Unsolicited,
    /// It failed; not asked again for `backoff`.
    Penalised {
        /// How.
        fault: Fault,
        /// For how long it is not asked.
        backoff: Duration,
    },
}

impl SyncState {
    /// Whether blocks are being fetched.
    pub(super) fn is_syncing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Records the head a peer claims.
    pub(super) fn on_head(&mut self, peer: PeerId, head: Height) {
        self.peers.entry(peer).or_default().claimed = Some(head);
    }

    /// A block request to `peer` failed or it disconnected: penalised if it had the request in
    /// flight; either way its claim is forgotten until it announces one again.
    pub(super) fn on_failed(&mut self, peer: PeerId, now: Instant) -> Option<Verdict> {
        if self.in_flight.is_some_and(|in_flight| in_flight.peer == peer) {
            self.in_flight = None;
            return Some(self.penalise(peer, Fault::Unanswered, now));
        }
        if let Some(record) = self.peers.get_mut(&peer) {
            record.claimed = None;
        }
        None
    }

    /// Gives up on the request in flight if its deadline passed, penalising its peer.
    pub(super) fn expire(&mut self, now: Instant) -> Option<(PeerId, Verdict)> {
        let in_flight = self.in_flight.filter(|in_flight| now >= in_flight.deadline)?;
        self.in_flight = None;
        Some((in_flight.peer, self.penalise(in_flight.peer, Fault::Unanswered, now)))
    }

    /// The next request, if none is in flight and a peer not backed off claims a head of at
    /// least `head + 2` (`head + 1` with `one_behind`: one block behind is the normal state
    /// while peers commit first). Rotates: the first such peer after the one asked last.
    pub(super) fn next_request(&mut self, head: Height, one_behind: bool, now: Instant) -> Option<BlockRequest> {
        if self.in_flight.is_some() {
            return None;
        }
        let wanted = head.saturating_add(if one_behind { 1 } else { 2 });
        let eligible = |(_, record): &(&PeerId, &PeerRecord)| {
            record.claimed.is_some_and(|claimed| claimed >= wanted)
                && record.backoff_until.is_none_or(|until| now >= until)
        };
        let after = self.last_asked.and_then(|last| {
            self.peers
                .range((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded))
                .find(eligible)
                .map(|(peer, record)| (*peer, record.claimed))
        });
        let (peer, claimed) = after.or_else(|| self.peers.iter().find(eligible).map(|(p, r)| (*p, r.claimed)))?;
        let claimed = claimed?;
        let count = u32::try_from(claimed - head).unwrap_or(u32::MAX).min(SYNC_BATCH_MAX);
        let from = head + 1;
        let until = claimed.min(head.saturating_add(u64::from(count)));
        self.in_flight = Some(InFlight { peer, from, until, deadline: now + REQUEST_DEADLINE });
        self.last_asked = Some(peer);
        Some(BlockRequest { peer, from, count })
    }

    /// Judges `peer`'s answer, given this node's head after applying it.
    pub(super) fn on_answer(&mut self, peer: PeerId, answer: Answer, head: Height, now: Instant) -> Verdict {
        let solicited = self
            .in_flight
            .filter(|in_flight| in_flight.peer == peer && answer.first.is_none_or(|first| first == in_flight.from));
        let Some(in_flight) = solicited else {
            // Blocks that fail verification are a fault whenever they come.
            return if answer.invalid { self.penalise(peer, Fault::Invalid, now) } else { Verdict::Unsolicited };
        };
        self.in_flight = None;
        let fault = if answer.invalid {
            Some(Fault::Invalid)
        } else if head >= in_flight.until {
            // All it claimed, or consensus got this node there meanwhile.
            None
        } else if answer.applied == 0 {
            Some(Fault::Empty)
        } else if answer.bytes < answer.limit / 2 {
            Some(Fault::Short)
        } else {
            // Cut by the size limit.
            None
        };
        match fault {
            Some(fault) => self.penalise(peer, fault, now),
            None => {
                let record = self.peers.entry(peer).or_default();
                record.failures = 0;
                record.backoff_until = None;
                Verdict::Served
            }
        }
    }

    /// Drops the peer's claim and backs it off: `BACKOFF_BASE` doubled per earlier failure.
    fn penalise(&mut self, peer: PeerId, fault: Fault, now: Instant) -> Verdict {
        let record = self.peers.entry(peer).or_default();
        let doublings = record.failures.min(16);
        record.failures = record.failures.saturating_add(1);
        let backoff = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX);
        record.backoff_until = Some(now + backoff);
        record.claimed = None;
        Verdict::Penalised { fault, backoff }
    }
}

impl<S: ChainStore, N: Network> Driver<S, N> {
    pub(super) fn on_peer_head(&mut self, peer: PeerId, head: Height) {
        self.sync.on_head(peer, head);
        self.request_next_blocks();
    }

    /// A failed block request, or a disconnected peer.
    pub(super) fn on_request_failed(&mut self, peer: PeerId) {
        if let Some(verdict) = self.sync.on_failed(peer, self.now()) {
            log_verdict(peer, verdict);
        }
        self.request_next_blocks();
    }

    /// Asks the next peer ahead for the blocks after ours, one request at a time.
    fn request_next_blocks(&mut self) {
        let now = self.now();
        if let Some((peer, verdict)) = self.sync.expire(now) {
            log_verdict(peer, verdict);
        }
        // One block behind is the normal state while peers commit first; fetch it only if
        // consensus has not delivered it for a while.
        let one_behind = self.now().saturating_duration_since(self.last_commit_at) > ONE_BEHIND_GRACE;
        if let Some(request) = self.sync.next_request(self.head.height, one_behind, now) {
            debug!(peer = %request.peer, from = request.from, count = request.count, "requesting blocks");
            self.network.request_blocks(request.peer, request.from, request.count);
        }
    }

    pub(super) fn on_blocks(&mut self, peer: PeerId, blocks: Vec<CertifiedBlock>) -> Result<(), Error> {
        let first_height = self.head.height;
        let first = blocks.first().map(|certified| certified.block.header.height);
        let bytes = blocks.iter().map(|certified| borsh::object_length(certified).unwrap_or(0)).sum();
        let mut invalid = false;
        for certified in blocks {
            let height = certified.block.header.height;
            if height <= self.head.height {
                continue;
            }
            match ledger::validate::apply_certified_block(self.store.as_ref(), &certified) {
                Ok(()) => self.after_commit(certified)?,
                Err(ApplyError::Block(error)) => {
                    warn!(%peer, height, %error, "peer sent an invalid block");
                    invalid = true;
                    break;
                }
                // Committed meanwhile by consensus: the next block decides what follows.
                Err(ApplyError::Store(StoreError::NotNextBlock { .. })) => break,
                Err(ApplyError::Store(error)) => return Err(error.into()),
            }
        }
        let applied = self.head.height - first_height;
        if applied > 0 {
            // The main loop starts the next height if there is work.
            info!(from = first_height + 1, to = self.head.height, %peer, "synced blocks");
        }
        let answer = Answer { first, applied, invalid, bytes, limit: self.network.max_message_bytes() };
        let verdict = self.sync.on_answer(peer, answer, self.head.height, self.now());
        log_verdict(peer, verdict);
        self.request_next_blocks();
        Ok(())
    }
}

fn log_verdict(peer: PeerId, verdict: Verdict) {
    if let Verdict::Penalised { fault, backoff } = verdict {
        warn!(%peer, ?fault, backoff = %humantime::format_duration(backoff), "sync peer did not serve what it claimed");
    }
}

#[cfg(test)]
#[path = "sync_test.rs"]
mod tests;
