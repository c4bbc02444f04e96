//! Consensus messages seen lately, by a hash of their bytes, so a replayed message is dropped
//! before the driver checks its signatures (a replayed NEW-VIEW costs 2f+1 verifications).
//!
//! Entries expire after a short time, shorter than any retransmission: the consensus core sends
//! identical messages again on timeouts and to laggards, and a copy this node dropped the first
//! time (from a height it had not reached) must get through later. A replay therefore costs at
//! most one verification per message and expiry period, and per-peer budgets bound the rest.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use consensus::Digest;

/// How a message came: one message arriving both ways is not a replay (and the gossip copy
/// must still be forwarded to peers that only hear gossip, such as observers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// A gossip payload.
    Gossip,
    /// A consensus message sent to this node alone.
    Direct,
}

/// The default number of hashes kept: far more than the per-peer budgets let through in one
/// expiry period, so a flood cannot push out the entries a replay would hit.
pub const CAPACITY: usize = 65_536;
/// The default expiry.
pub const EXPIRY: Duration = Duration::from_secs(1);

/// A bounded set of recent message hashes over explicit time.
#[derive(Debug)]
pub struct SeenMessages {
    capacity: usize,
    expiry: Duration,
    seen: HashMap<Digest, Instant>,
    /// Insertion order (entries are never refreshed, so it is also expiry order).
    order: VecDeque<(Digest, Instant)>,
}

impl SeenMessages {
    /// Keeps at most `capacity` hashes, each for `expiry`.
    pub fn new(capacity: usize, expiry: Duration) -> Self {
        SeenMessages { capacity: capacity.max(1), expiry, seen: HashMap::new(), order: VecDeque::new() }
    }

    /// Records the message; false if the same bytes came the same way within the expiry.
    pub fn first_sight(&mut self, path: Path, bytes: &[u8], now: Instant) -> bool {
        let tag: &[u8] = match path {
            Path::Gossip => b"gossip",
            Path::Direct => b"direct",
        };
        let digest = Digest::of_parts(&[tag, bytes]);
        while let Some((oldest, at)) = self.order.front().copied() {
            if now.saturating_duration_since(at) < self.expiry {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&oldest);
        }
        if self.seen.contains_key(&digest) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some((oldest, _)) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(digest, now);
        self.order.push_back((digest, now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_within_the_expiry_is_refused_and_one_after_it_passes() {
        let start = Instant::now();
        let mut seen = SeenMessages::new(16, Duration::from_secs(1));
        assert!(seen.first_sight(Path::Direct, b"new-view", start));
        assert!(!seen.first_sight(Path::Direct, b"new-view", start));
        assert!(!seen.first_sight(Path::Direct, b"new-view", start + Duration::from_millis(999)));
        assert!(seen.first_sight(Path::Direct, b"other", start));
        // A retransmission after the expiry gets through, once.
        let later = start + Duration::from_secs(1);
        assert!(seen.first_sight(Path::Direct, b"new-view", later));
        assert!(!seen.first_sight(Path::Direct, b"new-view", later));
    }

    #[test]
    fn the_same_bytes_by_gossip_and_direct_are_not_duplicates() {
        let now = Instant::now();
        let mut seen = SeenMessages::new(16, Duration::from_secs(1));
        assert!(seen.first_sight(Path::Direct, b"prepare", now));
        assert!(seen.first_sight(Path::Gossip, b"prepare", now));
        assert!(!seen.first_sight(Path::Gossip, b"prepare", now));
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_the_oldest_first() {
        let now = Instant::now();
        let mut seen = SeenMessages::new(3, Duration::from_secs(60));
        for message in [b"a", b"b", b"c", b"d"] {
            assert!(seen.first_sight(Path::Gossip, message, now));
        }
        assert_eq!((seen.seen.len(), seen.order.len()), (3, 3));
        assert!(!seen.first_sight(Path::Gossip, b"d", now));
        assert!(!seen.first_sight(Path::Gossip, b"c", now));
        assert!(seen.first_sight(Path::Gossip, b"a", now), "the oldest was pushed out");
        assert_eq!((seen.seen.len(), seen.order.len()), (3, 3));
    }

    #[test]
    fn expired_entries_are_dropped() {
        let start = Instant::now();
        let mut seen = SeenMessages::new(100, Duration::from_secs(1));
        for index in 0u8..50 {
            seen.first_sight(Path::Gossip, &[index], start);
        }
        seen.first_sight(Path::Gossip, b"later", start + Duration::from_secs(2));
        assert_eq!((seen.seen.len(), seen.order.len()), (1, 1));
    }
}
