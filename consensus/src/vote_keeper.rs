//! The votes of the height being decided, in one place: each validator's first vote per (kind,
//! view) counts, a later different one is equivocation evidence, and the signatures gathered
//! for a value are what its certificates are built from.

use std::collections::{BTreeMap, HashMap};

use crate::{Digest, Evidence, SignedVote, ValidatorIndex, View, VoteKind, VoteSignature};

/// What recording a vote did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Recorded {
    /// The validator's first vote of this kind in this view: counted.
    New,
    /// A copy of the vote already counted: ignored.
    Repeat,
    /// A vote for another value than the one counted: ignored, and this is the evidence.
    Conflict(Box<Evidence>),
}

/// The votes of one height. A new height starts with a new keeper.
#[derive(Default)]
pub(crate) struct VoteKeeper {
    by_value: HashMap<(VoteKind, View, Digest), BTreeMap<ValidatorIndex, SignedVote>>,
    first: HashMap<(ValidatorIndex, VoteKind, View), SignedVote>,
}

impl VoteKeeper {
    /// Records a vote whose signature was checked.
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
        self.by_value
            .entry((vote.vote.kind, vote.vote.view, vote.vote.digest))
            .or_default()
            .insert(vote.validator, vote);
        Recorded::New
    }

    /// How many validators voted `kind` for `digest` in `view`.
    pub(crate) fn count(&self, kind: VoteKind, view: View, digest: Digest) -> usize {
        self.by_value.get(&(kind, view, digest)).map_or(0, BTreeMap::len)
    }

    /// Their signatures, in validator order.
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

    fn vote(kind: VoteKind, view: View, value: &[u8], validator: u8) -> SignedVote {
        let key = SigningKey::from_seed([validator + 1; 32]);
        let vote = Vote { kind, height: 1, view, digest: Digest::of(value) };
        SignedVote::sign(&ChainId::new("keeper").expect("chain id"), vote, u32::from(validator), &key)
    }

    #[test]
    fn each_validator_counts_once_per_kind_and_view_and_a_second_value_is_evidence() {
        let mut keeper = VoteKeeper::default();
        let a = Digest::of(b"a");
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 0)), Recorded::New);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 0)), Recorded::Repeat);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 0, b"a", 2)), Recorded::New);
        let second = vote(VoteKind::Prepare, 0, b"b", 0);
        assert_eq!(
            keeper.record(second),
            Recorded::Conflict(Box::new(Evidence { first: vote(VoteKind::Prepare, 0, b"a", 0), second }))
        );
        // Another kind or another view is another vote.
        assert_eq!(keeper.record(vote(VoteKind::Commit, 0, b"b", 0)), Recorded::New);
        assert_eq!(keeper.record(vote(VoteKind::Prepare, 1, b"b", 0)), Recorded::New);
        assert_eq!(keeper.count(VoteKind::Prepare, 0, a), 2);
        assert_eq!(keeper.count(VoteKind::Prepare, 0, Digest::of(b"b")), 0, "the conflicting vote is not counted");
        let signers: Vec<u32> =
            keeper.signatures(VoteKind::Prepare, 0, a).iter().map(|signature| signature.validator).collect();
        assert_eq!(signers, vec![0, 2]);
    }
}
