//! Per-peer budgets: token buckets bounding the consensus messages, bytes and requests one
//! admitted peer can make this node handle per second. Time is a parameter, so the arithmetic
//! is tested without a clock.
//!
//! Going over budget is penalised, not merely rate-limited: a refused message is charged like an
//! admitted one (down to one burst of debt), so a peer that keeps flooding stays muted until it
//! slows below its rate, while an honest peer's bursts stay far below the limits.

use std::{collections::HashMap, time::Instant};

use libp2p::PeerId;

/// A refill rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held, and most debt owed.
    pub burst: f64,
}

/// A token bucket over explicit time.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket { rate, tokens: rate.burst, updated: now }
    }

    fn refill(&mut self, now: Instant) {
        // A `now` before the last one adds nothing (and never takes).
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.updated = self.updated.max(now);
    }

    /// Whether any token is left at `now`. One item is let through whatever its cost, so a
    /// burst smaller than the largest message cannot starve it; its cost becomes debt.
    pub fn has_room(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens > 0.0
    }

    /// Takes `cost` tokens, going at most one burst into debt.
    pub fn charge(&mut self, cost: f64, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - cost).max(-self.rate.burst);
    }
}

/// The rates of one kind of traffic: items and bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Messages or requests.
    pub items: Rate,
    /// Their bytes (for requests, the bytes served in answer).
    pub bytes: Rate,
}

/// Whether an item fits its peer's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Within budget.
    Admitted,
    /// Over budget: drop it. `first` on the first refusal since the peer was last admitted, so
    /// a flood is logged once, not per message.
    OverBudget {
        /// Whether the peer was within budget until now.
        first: bool,
    },
}

/// One peer's budget for one kind of traffic.
#[derive(Clone, Debug)]
pub struct PeerBudget {
    items: TokenBucket,
    bytes: TokenBucket,
    refusing: bool,
}

impl PeerBudget {
    /// A full budget at `now`.
    pub fn new(limits: Limits, now: Instant) -> Self {
        PeerBudget {
            items: TokenBucket::new(limits.items, now),
            bytes: TokenBucket::new(limits.bytes, now),
            refusing: false,
        }
    }

    /// Admits one item of `bytes` if both buckets have room, and charges it either way.
    pub fn admit(&mut self, bytes: usize, now: Instant) -> Admission {
        let admitted = self.items.has_room(now) & self.bytes.has_room(now);
        self.items.charge(1.0, now);
        self.bytes.charge(bytes as f64, now);
        let first = !self.refusing;
        self.refusing = !admitted;
        if admitted { Admission::Admitted } else { Admission::OverBudget { first } }
    }

    /// Charges bytes known only once the work is done (the size of an answer).
    pub fn charge_bytes(&mut self, bytes: usize, now: Instant) {
        self.bytes.charge(bytes as f64, now);
    }
}

/// The default budgets, scaled to the largest message so a peer can always send the largest
/// one; far above what an honest peer sends (a few consensus messages and one proposal per
/// height, a head poll per second, one block request at a time while syncing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Consensus messages, gossiped (counted against their author) and direct.
    pub consensus: Limits,
    /// Requests (heads, block ranges, proposals) and the bytes served in answer.
    pub requests: Limits,
}

impl Settings {
    /// The defaults for a node whose largest message is `max_message_bytes`.
    pub fn for_message_size(max_message_bytes: usize) -> Self {
        let bytes = Rate { per_second: 4.0 * max_message_bytes as f64, burst: 4.0 * max_message_bytes as f64 };
        Settings {
            consensus: Limits { items: Rate { per_second: 1000.0, burst: 2000.0 }, bytes },
            requests: Limits { items: Rate { per_second: 100.0, burst: 200.0 }, bytes },
        }
    }
}

/// Every peer's budgets. Admitted peers only can connect, so the map is as bounded as the
/// admitted set; budgets outlive connections, so reconnecting does not refill them.
#[derive(Debug)]
pub struct Budgets {
    settings: Settings,
    peers: HashMap<PeerId, (PeerBudget, PeerBudget)>,
}

impl Budgets {
    /// No peer spent anything yet.
    pub fn new(settings: Settings) -> Self {
        Budgets { settings, peers: HashMap::new() }
    }

    fn peer(&mut self, peer: PeerId, now: Instant) -> &mut (PeerBudget, PeerBudget) {
        let settings = self.settings;
        self.peers
            .entry(peer)
            .or_insert_with(|| (PeerBudget::new(settings.consensus, now), PeerBudget::new(settings.requests, now)))
    }

    /// A consensus message of `bytes` from `peer` (its author or direct sender).
    pub fn consensus(&mut self, peer: PeerId, bytes: usize, now: Instant) -> Admission {
        self.peer(peer, now).0.admit(bytes, now)
    }

    /// A request from `peer`.
    pub fn request(&mut self, peer: PeerId, now: Instant) -> Admission {
        self.peer(peer, now).1.admit(0, now)
    }

    /// `bytes` served to `peer`.
    pub fn served(&mut self, peer: PeerId, bytes: usize, now: Instant) {
        self.peer(peer, now).1.charge_bytes(bytes, now);
    }

    /// Forgets peers no longer admitted.
    pub fn retain(&mut self, admitted: impl Fn(&PeerId) -> bool) {
        self.peers.retain(|peer, _| admitted(peer));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: Limits =
        Limits { items: Rate { per_second: 10.0, burst: 20.0 }, bytes: Rate { per_second: 1000.0, burst: 1000.0 } };

    /// How many of `count` items sent at `now` are admitted.
    fn admitted(budget: &mut PeerBudget, count: usize, bytes: usize, now: Instant) -> usize {
        (0..count).filter(|_| budget.admit(bytes, now) == Admission::Admitted).count()
    }

    #[test]
    fn a_burst_is_admitted_then_refused_until_the_bucket_refills() {
        let start = Instant::now();
        let mut budget = PeerBudget::new(LIMITS, start);
        assert_eq!(admitted(&mut budget, 20, 1, start), 20);
        assert_eq!(budget.admit(1, start), Admission::OverBudget { first: true });
        assert_eq!(budget.admit(1, start), Admission::OverBudget { first: false });
        // The two refused items were charged: a second refills ten tokens, two of which repay them.
        let later = start + Duration::from_secs(1);
        assert_eq!(admitted(&mut budget, 100, 1, later), 8);
    }

    #[test]
    fn a_peer_that_keeps_flooding_stays_muted() {
        let start = Instant::now();
        let mut budget = PeerBudget::new(LIMITS, start);
        let mut through = 0;
        // Twice the rate for a minute: a plain rate limit would let 600 through.
        for tick in 0..1200u64 {
            let now = start + Duration::from_millis(50 * tick);
            through += admitted(&mut budget, 1, 1, now);
        }
        assert!(through <= 40, "{through} admitted");
        // Quiet for a while, then welcome again.
        let after = start + Duration::from_secs(60 + 10);
        assert_eq!(budget.admit(1, after), Admission::Admitted);
    }

    #[test]
    fn bytes_are_budgeted_and_one_message_larger_than_the_burst_still_passes() {
        let start = Instant::now();
        let mut budget = PeerBudget::new(LIMITS, start);
        assert_eq!(budget.admit(5000, start), Admission::Admitted);
        assert_eq!(budget.admit(1, start), Admission::OverBudget { first: true });
        assert_eq!(budget.admit(1, start + Duration::from_millis(100)), Admission::OverBudget { first: false });
        // The debt is capped at one burst, so it is repaid within two bursts' time.
        assert_eq!(budget.admit(1, start + Duration::from_secs(3)), Admission::Admitted);
    }

    #[test]
    fn served_bytes_count_against_the_next_requests() {
        let start = Instant::now();
        let settings = Settings { consensus: LIMITS, requests: LIMITS };
        let mut budgets = Budgets::new(settings);
        let (peer, other) = (PeerId::random(), PeerId::random());
        assert_eq!(budgets.request(peer, start), Admission::Admitted);
        budgets.served(peer, 2000, start);
        assert_eq!(budgets.request(peer, start), Admission::OverBudget { first: true });
        assert_eq!(budgets.request(other, start), Admission::Admitted, "budgets are per peer");
        assert_eq!(budgets.consensus(peer, 10, start), Admission::Admitted, "and per kind");
        budgets.retain(|kept| *kept == other);
        assert_eq!(budgets.request(peer, start), Admission::Admitted, "a forgotten peer starts afresh");
    }

    #[test]
    fn time_going_backwards_neither_refills_nor_panics() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut budget = PeerBudget::new(LIMITS, start);
        assert_eq!(admitted(&mut budget, 25, 1, start), 20);
        assert_eq!(admitted(&mut budget, 5, 1, start - Duration::from_secs(10)), 0);
    }
}
