use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::{Answer, BACKOFF_BASE, BACKOFF_MAX, BlockRequest, Fault, REQUEST_DEADLINE, SyncState, Verdict};
use crate::p2p::protocol::SYNC_BATCH_MAX;

const LIMIT: usize = 16 * 1024 * 1024;

/// An answer that applied `applied` blocks from `from`, each of `block_bytes`.
fn served(from: u64, applied: u64, block_bytes: usize) -> Answer {
    Answer {
        first: (applied > 0).then_some(from),
        applied,
        invalid: false,
        bytes: block_bytes * applied as usize,
        limit: LIMIT,
    }
}

fn empty() -> Answer {
    Answer { first: None, applied: 0, invalid: false, bytes: 0, limit: LIMIT }
}

/// Two peers, the first one first in rotation order.
fn two_peers() -> (PeerId, PeerId) {
    let mut peers = [PeerId::random(), PeerId::random()];
    peers.sort();
    (peers[0], peers[1])
}

fn penalised(verdict: Verdict) -> Option<Fault> {
    match verdict {
        Verdict::Penalised { fault, .. } => Some(fault),
        _ => None,
    }
}

#[test]
fn a_liar_claiming_the_highest_head_and_answering_nothing_does_not_stall_sync() {
    // The liar comes first in rotation: it is asked first.
    let (liar, honest) = two_peers();
    let target = 2_000;
    let mut sync = SyncState::default();
    let mut now = Instant::now();
    let mut head = 0;
    let (mut asked_liar, mut asked_honest) = (0, 0);
    // Bounded: without rotation and back-off the liar (highest head) is asked every time.
    for _ in 0..100 {
        // Both re-announce on every poll, as peers answer Status each second.
        sync.on_head(liar, u64::MAX);
        sync.on_head(honest, target);
        if let Some(BlockRequest { peer, from, count }) = sync.next_request(head, false, now) {
            assert_eq!(from, head + 1);
            if peer == liar {
                asked_liar += 1;
                assert_eq!(penalised(sync.on_answer(peer, empty(), head, now)), Some(Fault::Empty));
            } else {
                asked_honest += 1;
                let applied = u64::from(count).min(target - head);
                head += applied;
                assert_eq!(sync.on_answer(peer, served(from, applied, 1000), head, now), Verdict::Served);
            }
        }
        if head == target {
            break;
        }
        now += Duration::from_millis(100);
    }
    assert_eq!(head, target, "sync never reached the honest head");
    assert_eq!(asked_honest, target.div_ceil(u64::from(SYNC_BATCH_MAX)));
    assert!(asked_liar < asked_honest, "the liar was asked {asked_liar} times");
}

#[test]
fn a_liar_that_never_answers_is_given_up_on_and_the_honest_peer_is_asked() {
    let (liar, honest) = two_peers();
    let mut sync = SyncState::default();
    sync.on_head(liar, u64::MAX);
    sync.on_head(honest, 10);
    let mut now = Instant::now();
    let (mut head, mut asked_liar, mut expired) = (0, 0, 0);
    // Bounded: without the deadline the liar's request stays in flight and nothing else is asked.
    for _ in 0..100 {
        if let Some((peer, verdict)) = sync.expire(now) {
            assert_eq!((peer, penalised(verdict)), (liar, Some(Fault::Unanswered)));
            expired += 1;
        }
        match sync.next_request(head, false, now) {
            Some(request) if request.peer == honest => {
                head = 10;
                assert_eq!(sync.on_answer(honest, served(request.from, 10, 100), head, now), Verdict::Served);
                break;
            }
            Some(_) => asked_liar += 1,
            None => {}
        }
        now += REQUEST_DEADLINE / 4;
    }
    assert_eq!((head, asked_liar, expired), (10, 1, 1));
}

#[test]
fn requests_rotate_among_the_peers_that_claim_to_be_ahead() {
    let peers = [PeerId::random(), PeerId::random(), PeerId::random()];
    let behind = PeerId::random();
    let mut sync = SyncState::default();
    let now = Instant::now();
    for peer in peers {
        sync.on_head(peer, 10_000);
    }
    sync.on_head(behind, 0);
    let mut head = 0;
    let mut asked = Vec::new();
    for _ in 0..6 {
        let request = sync.next_request(head, false, now).expect("a peer is ahead");
        assert_eq!(sync.next_request(head, false, now), None, "one request at a time");
        asked.push(request.peer);
        head += u64::from(request.count);
        assert_eq!(
            sync.on_answer(request.peer, served(request.from, u64::from(request.count), 10), head, now),
            Verdict::Served
        );
    }
    assert!(!asked.contains(&behind));
    for peer in peers {
        assert_eq!(asked.iter().filter(|asked| **asked == peer).count(), 2, "{asked:?}");
    }
    assert_ne!(asked[0], asked[1]);
    assert_ne!(asked[1], asked[2]);
}

#[test]
fn one_block_behind_is_fetched_only_after_the_grace() {
    let peer = PeerId::random();
    let mut sync = SyncState::default();
    let now = Instant::now();
    sync.on_head(peer, 5);
    assert_eq!(sync.next_request(5, true, now), None, "not ahead");
    assert_eq!(sync.next_request(4, false, now), None, "one behind, within the grace");
    assert_eq!(sync.next_request(4, true, now), Some(BlockRequest { peer, from: 5, count: 1 }));
}

#[test]
fn a_peer_that_answers_nothing_is_backed_off_longer_each_time_and_forgiven_when_it_serves() {
    let peer = PeerId::random();
    let mut sync = SyncState::default();
    let mut now = Instant::now();
    sync.on_head(peer, 100);
    let request = sync.next_request(0, false, now).expect("ahead");
    assert_eq!(
        sync.on_answer(peer, empty(), 0, now),
        Verdict::Penalised { fault: Fault::Empty, backoff: BACKOFF_BASE }
    );
    sync.on_head(peer, 100);
    assert_eq!(sync.next_request(0, false, now + BACKOFF_BASE - Duration::from_millis(1)), None, "backed off");
    now += BACKOFF_BASE;
    assert_eq!(sync.next_request(0, false, now), Some(request));
    assert_eq!(
        sync.on_answer(peer, empty(), 0, now),
        Verdict::Penalised { fault: Fault::Empty, backoff: BACKOFF_BASE * 2 }
    );
    // The claim went with the penalty: without a new one the peer is not asked.
    now += BACKOFF_BASE * 2;
    assert_eq!(sync.next_request(0, false, now), None);
    sync.on_head(peer, 100);
    let request = sync.next_request(0, false, now).expect("ahead");
    assert_eq!(sync.on_answer(peer, served(1, 100, 10), 100, now), Verdict::Served);
    sync.on_head(peer, 200);
    let request_after = sync.next_request(100, false, now).expect("ahead");
    assert_eq!(request_after.from, request.from + 100);
    assert_eq!(
        sync.on_answer(peer, empty(), 100, now),
        Verdict::Penalised { fault: Fault::Empty, backoff: BACKOFF_BASE },
        "served answers forgive earlier failures"
    );
}

#[test]
fn the_backoff_is_capped() {
    let peer = PeerId::random();
    let mut sync = SyncState::default();
    let mut now = Instant::now();
    let mut last = Duration::ZERO;
    for _ in 0..40 {
        sync.on_head(peer, 100);
        sync.next_request(0, false, now).expect("ahead");
        let Verdict::Penalised { backoff, .. } = sync.on_answer(peer, empty(), 0, now) else { panic!("not penalised") };
        assert!(backoff >= last && backoff <= BACKOFF_MAX);
        last = backoff;
        now += backoff;
    }
    assert_eq!(last, BACKOFF_MAX);
}

#[test]
fn short_answers_far_below_the_size_limit_are_penalised_but_ones_cut_by_size_are_not() {
    let (withholding, cut) = (PeerId::random(), PeerId::random());
    let mut sync = SyncState::default();
    let now = Instant::now();
    sync.on_head(withholding, 1_000);
    let request = sync.next_request(0, false, now).expect("ahead");
    assert_eq!(request.peer, withholding);
    assert_eq!(penalised(sync.on_answer(withholding, served(1, 1, 100), 1, now)), Some(Fault::Short));
    sync.on_head(cut, 1_000);
    let request = sync.next_request(1, false, now).expect("ahead");
    assert_eq!(request.peer, cut);
    // Ten blocks of 1 MiB: more than half of the limit, the next would not have fitted.
    assert_eq!(sync.on_answer(cut, served(2, 10, 1024 * 1024), 11, now), Verdict::Served);
}

#[test]
fn invalid_blocks_are_penalised_whenever_they_come() {
    let (asked, other) = (PeerId::random(), PeerId::random());
    let mut sync = SyncState::default();
    let now = Instant::now();
    sync.on_head(asked, 100);
    sync.next_request(0, false, now).expect("ahead");
    let invalid = Answer { first: Some(1), applied: 0, invalid: true, bytes: 100, limit: LIMIT };
    assert_eq!(penalised(sync.on_answer(other, invalid, 0, now)), Some(Fault::Invalid), "not asked, still a fault");
    assert!(sync.is_syncing(), "the request to the asked peer stays in flight");
    assert_eq!(penalised(sync.on_answer(asked, invalid, 0, now)), Some(Fault::Invalid));
    assert!(!sync.is_syncing());
}

#[test]
fn a_late_answer_to_an_earlier_request_is_not_judged() {
    let peer = PeerId::random();
    let mut sync = SyncState::default();
    let now = Instant::now();
    sync.on_head(peer, 100);
    let request = sync.next_request(10, false, now).expect("ahead");
    assert_eq!(sync.on_answer(peer, served(3, 2, 100), 12, now), Verdict::Unsolicited);
    assert!(sync.is_syncing());
    assert_eq!(sync.on_answer(peer, served(request.from, 90, 100), 100, now), Verdict::Served);
}

#[test]
fn reaching_the_claimed_head_by_consensus_meanwhile_is_not_a_fault() {
    let peer = PeerId::random();
    let mut sync = SyncState::default();
    let now = Instant::now();
    sync.on_head(peer, 7);
    sync.next_request(5, false, now).expect("ahead");
    assert_eq!(sync.on_answer(peer, empty(), 7, now), Verdict::Served);
}

#[test]
fn a_failure_penalises_only_the_peer_in_flight_and_drops_the_claims_of_others() {
    let (asked, other) = (PeerId::random(), PeerId::random());
    let mut sync = SyncState::default();
    let now = Instant::now();
    sync.on_head(asked, 100);
    let request = sync.next_request(0, false, now).expect("ahead");
    assert_eq!(request.peer, asked);
    sync.on_head(other, 100);
    assert_eq!(sync.on_failed(other, now), None);
    assert_eq!(penalised(sync.on_failed(asked, now).expect("in flight")), Some(Fault::Unanswered));
    assert_eq!(sync.next_request(0, false, now), None, "one backed off, the other has no claim");
    sync.on_head(other, 100);
    assert_eq!(sync.next_request(0, false, now).map(|request| request.peer), Some(other));
}
