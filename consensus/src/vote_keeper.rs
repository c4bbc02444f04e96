//! The votes of the height being decided, in one place: each validator's first vote per (kind,
//! view) counts, a later different one is equivocation evidence, the first vote that brings a
//! value to its kind's quorum reports it (once: later votes for that value report nothing), and
//! the signatures gathered for a value are what its certificates are built from.
//!
//! The keeper only counts. Whether a quorum moves the replica on also depends on state that is
//! not votes (the PRE-PREPARE, the validation verdict, the view and phase): the replica acts on
//! a report when it arrives, and asks [`VoteKeeper::has_quorum`] again when that other state
//! changes, so a quorum reached early is not lost. Only lookups are made in the hash maps, never
//! iterations, so nothing depends on their order.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::{Digest, Evidence, SignedVote, ValidatorIndex, View, VoteKind, VoteSignature};

/// A threshold of matching votes, reported by the one vote that reaches it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Threshold {
    /// A quorum of `kind` votes for `digest` in `view`: its signatures, from
    /// [`VoteKeeper::signatures`], make the certificate.
    Quorum {
        /// PREPARE or COMMIT (the kinds that have a quorum).
        kind: VoteKind,
        /// The view the votes are for.
        view: View,
        /// The value they are for.
        digest: Digest,
    },
}

/// What recording a vote did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Recorded {
    /// The validator's first vote of this kind in this view: counted. `reached` is the
    /// threshold this vote completed, if it completed one.
    New {
        /// Reported by the vote that reaches a threshold, and by no other.
        reached: Option<Threshold>,
    },
    /// A copy of the vote already counted: ignored.
    Repeat,
    /// A vote for another value than the one counted: ignored, and this is the evidence.
    Conflict(Box<Evidence>),
}

/// The votes of one height. A new height starts with a new keeper.
pub(crate) struct VoteKeeper {
    /// Votes that make a quorum at this height: `2f + 1` of its validator set.
    quorum: usize,
    by_value: HashMap<(VoteKind, View, Digest), BTreeMap<ValidatorIndex, SignedVote>>,
    first: HashMap<(ValidatorIndex, VoteKind, View), SignedVote>,
    /// The thresholds already reported, so none is reported twice.
    reached: HashSet<(VoteKind, View, Digest)>,
}

impl VoteKeeper {
    /// A keeper for a height whose validator set has this quorum.
    pub(crate) fn new(quorum: usize) -> Self {
        VoteKeeper { quorum, by_value: HashMap::new(), first: HashMap::new(), reached: HashSet::new() }
    }

    /// How many matching votes of `kind` reach its threshold, if the kind has one.
    fn threshold(&self, kind: VoteKind) -> Option<usize> {
        match kind {
            // PBFT §4.2: 2f+1 matching PREPAREs (with the PRE-PREPARE) prepare a value, and
            // 2f+1 matching COMMITs commit it.
            VoteKind::Prepare | VoteKind::Commit => Some(self.quorum),
            // A PRE-PREPARE is the leader's alone (PBFT §4.2): kept for equivocation evidence,
            // it counts toward nothing. VIEW-CHANGEs and NEW-VIEWs are not recorded here.
            VoteKind::PrePrepare | VoteKind::ViewChange | VoteKind::NewView => None,
        }
    }

    /// Records a vote whose signature was checked, and reports the threshold it completes.
    pub(crate) fn record(&mut self, vote: SignedVote) -> Recorded {
        let key = (vote.validator, vote.vote.kind, vote.vote.view);
        if let Some(first) = self.first.get(&key) {
            return if first.vote.digest == vote.vote.digest {
                Recorded::Repeat
            } else {
                Recorded::Conflict(Box::new(Evidence { first: *first, second: vote }))
            };
        }
        self.first.insert(key, vote);
        let value = (vote.vote.kind, vote.vote.view, vote.vote.digest);
        let voters = self.by_value.entry(value).or_default();
        voters.insert(vote.validator, vote);
        let count = voters.len();
        // `insert` is true only the first time: the quorum is reported by one vote.
        let reached_now =
            self.threshold(vote.vote.kind).is_some_and(|threshold| count >= threshold) && self.reached.insert(value);
        let (kind, view, digest) = value;
        Recorded::New { reached: reached_now.then_some(Threshold::Quorum { kind, view, digest }) }
    }

    /// Whether a quorum of `kind` votes for `digest` in `view` was reported: for a replica that
    /// could not act on the report then (it lacked the proposal, or was in another view).
    pub(crate) fn has_quorum(&self, kind: VoteKind, view: View, digest: Digest) -> bool {
        self.reached.contains(&(kind, view, digest))
    }

    /// The signatures of the `kind` votes for `digest` in `view`, in validator order: all of
    /// them, so a certificate built after the quorum holds every vote counted by then.
    pub(crate) fn signatures(&self, kind: VoteKind, view: View, digest: Digest) -> Vec<VoteSignature> {
        self.by_value
            .get(&(kind, view, digest))
            .map(|votes| {
                votes
                    .values()
                    .map(|vote| VoteSignature { validator: vote.validator, signature: vote.signature })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChainId, SigningKey, Vote};

    /// The quorum of four validators, `2f + 1` with `f = 1`.
    const QUORUM: usize = 3;

    fn vote(kind: VoteKind, view: View, value: &[u8], validator: u8) -> SignedVote {
        let key = SigningKey::from_seed([validator + 1; 32]);
        let vote = Vote { kind, height: 1, view, digest: Digest::of(value) };
        SignedVote::sign(&ChainId::new("keeper").expect("chain id"), vote, u32::from(validator), &key)
    }

    fn quorum(kind: VoteKind, view: View, value: &[u8]) -> Recorded {
        Recorded::New { reached: Some(Threshold::Quorum { kind, view, digest: Digest::of(value) }) }
    }

    const COUNTED: Recorded = Recorded::New { reached: None };

    fn signers(keeper: &VoteKeeper, kind: VoteKind, view: View, value: &[u8]) -> Vec<ValidatorIndex> {
        keeper.signatures(kind, view, Digest::of(value)).iter().map(|signature| signature.validator).collect()
    }

    #[test]
    fn each_validator_counts_once_per_kind_and_view_and_a_second_value_is_evidence() {
        let mut keeper = VoteKeeper::new(QUORUM);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 0)), COUNTED);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 0)), Recorded::Repeat);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 2)), COUNTED);
        let second = vote(VoteKind::Prepare, 0, b"b", 0);
        assert_eq!(
            keeper.record(second),
            Recorded::Conflict(Box::new(Evidence { first: vote(VoteKind::Prepare, 0, b"a", 0), second }))
        );
        // Another kind or another view is another vote.
        assert_eq!(keeper.record(vote(VoteKind::Commit, 0, b"b", 0)), COUNTED);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 1, b"b", 0)), COUNTED);
        assert_eq!(signers(&keeper, VoteKind::Prepare, 0, b"a"), vec![0, 2]);
        assert_eq!(signers(&keeper, VoteKind::Prepare, 0, b"b"), Vec::<ValidatorIndex>::new(), "not counted");
    }

    #[test]
    fn the_vote_that_completes_a_quorum_reports_it_and_no_later_vote_does() {
        let mut keeper = VoteKeeper::new(QUORUM);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 3)), COUNTED);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 1)), COUNTED);
        assert!(!keeper.has_quorum(VoteKind::Prepare, 0, Digest::of(b"a")));
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 0)), quorum(VoteKind::Prepare, 0, b"a"));
        assert!(keeper.has_quorum(VoteKind::Prepare, 0, Digest::of(b"a")));
        // The certificate's signatures are there when the report is, in validator order.
        assert_eq!(signers(&keeper, VoteKind::Prepare, 0, b"a"), vec![0, 1, 3]);
        // A fourth vote, a copy and an equivocation after the quorum report nothing.
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 2)), COUNTED);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 3)), Recorded::Repeat);
        assert!(matches!(keeper.record(vote(VoteKind::Prepare, 0, b"b", 1)), Recorded::Conflict(_)));
        assert_eq!(signers(&keeper, VoteKind::Prepare, 0, b"a"), vec![0, 1, 2, 3]);
        assert!(keeper.has_quorum(VoteKind::Prepare, 0, Digest::of(b"a")));
    }

    #[test]
    fn each_kind_view_and_value_has_its_own_quorum() {
        let mut keeper = VoteKeeper::new(QUORUM);
        let mut reports = Vec::new();
        // Interleaved: COMMITs of view 0, PREPAREs of views 0 and 1, two values in view 1.
        let votes = [
            (VoteKind::Commit, 0, b"a", 0),
            (VoteKind::Prepare, 1, b"b", 0),
            (VoteKind::Prepare, 0, b"a", 0),
            (VoteKind::Commit, 0, b"a", 1),
            (VoteKind::Prepare, 1, b"c", 1),
            (VoteKind::Prepare, 0, b"a", 1),
            (VoteKind::Prepare, 1, b"b", 2),
            (VoteKind::Commit, 0, b"a", 2),
            (VoteKind::Prepare, 0, b"a", 2),
            (VoteKind::Prepare, 1, b"b", 3),
            (VoteKind::Prepare, 0, b"a", 3),
            (VoteKind::Commit, 0, b"a", 3),
        ];
        for (kind, view, value, validator) in votes {
            match keeper.record(vote(kind, view, value, validator)) {
                Recorded::New { reached: Some(threshold) } => reports.push(threshold),
                Recorded::New { reached: None } => {}
                other => panic!("every vote here is new, got {other:?}"),
            }
        }
        let quorum = |kind, view, value: &[u8]| Threshold::Quorum { kind, view, digest: Digest::of(value) };
        assert_eq!(
            reports,
            vec![
                quorum(VoteKind::Commit, 0, b"a"),
                quorum(VoteKind::Prepare, 0, b"a"),
                quorum(VoteKind::Prepare, 1, b"b"),
            ],
            "each quorum once, when its third vote came; none for the split value c"
        );
    }

    #[test]
    fn a_pre_prepare_counts_toward_no_quorum() {
        // With a single validator the quorum is one vote: its PREPARE reaches it at once, but
        // its PRE-PREPARE (the leader's alone) is no quorum of anything.
        let mut keeper = VoteKeeper::new(1);
        assert_eq!(keeper.record(vote(VoteKind::PrePrepare, 0, b"a", 0)), COUNTED);
        assert!(!keeper.has_quorum(VoteKind::PrePrepare, 0, Digest::of(b"a")));
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 0)), quorum(VoteKind::Prepare, 0, b"a"));
        assert_eq!(keeper.record(vote(VoteKind::Commit, 0, b"a", 0)), quorum(VoteKind::Commit, 0, b"a"));
    }
}
