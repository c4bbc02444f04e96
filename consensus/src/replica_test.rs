//! Exact input → output sequences of the state machine.

use super::*;
use crate::VoteSignature;

const TIMEOUT: u64 = 1_000;

struct Net {
    chain_id: ChainId,
    keys: Vec<SigningKey>,
    validators: ValidatorSet,
}

fn net() -> Net {
    let keys: Vec<SigningKey> = (0..4u8).map(|i| SigningKey::from_seed([i + 1; 32])).collect();
    let validators = ValidatorSet::new(keys.iter().map(SigningKey::public_key).collect()).expect("set");
    Net { chain_id: ChainId::new("unit").expect("chain id"), keys, validators }
}

impl Net {
    fn replica(&self, index: usize) -> Replica {
        Replica::new(Config {
            chain_id: self.chain_id.clone(),
            key: self.keys[index].clone(),
            view_timeout_ms: TIMEOUT,
            view_timeout_max_ms: 8 * TIMEOUT,
        })
    }

    fn start(&self, index: usize) -> Replica {
        let mut replica = self.replica(index);
        let _ = replica.handle(Input::StartHeight { height: 1, validators: self.validators.clone(), previous: None });
        replica
    }

    fn vote(&self, kind: VoteKind, view: View, digest: Digest, index: usize) -> SignedVote {
        SignedVote::sign(&self.chain_id, Vote { kind, height: 1, view, digest }, index as u32, &self.keys[index])
    }

    fn verified(&self, message: Message) -> Input {
        Input::Message(message.verify(&self.chain_id, &self.validators).expect("valid message"))
    }

    fn view_change(&self, view: View, index: usize, prepared: Option<PreparedCertificate>) -> SignedViewChange {
        let view_change = ViewChange { height: 1, view, prepared };
        let signature = self.keys[index].sign(&view_change.signing_bytes(&self.chain_id));
        SignedViewChange { view_change, validator: index as u32, signature }
    }
}

fn timer(view: View) -> Timer {
    Timer { height: 1, view }
}

#[test]
fn the_leader_of_view_zero_asks_for_a_proposal() {
    let net = net();
    // Height 1, view 0: leader index (1 + 0) % 4 = 1.
    let mut leader = net.replica(1);
    assert_eq!(
        leader.handle(Input::StartHeight { height: 1, validators: net.validators.clone(), previous: None }),
        vec![Output::StartTimer { timer: timer(0), after_ms: TIMEOUT }, Output::RequestProposal { height: 1, view: 0 },]
    );
    let mut backup = net.replica(2);
    assert_eq!(
        backup.handle(Input::StartHeight { height: 1, validators: net.validators.clone(), previous: None }),
        vec![Output::StartTimer { timer: timer(0), after_ms: TIMEOUT }]
    );
}

#[test]
fn a_backup_validates_then_persists_before_it_prepares() {
    let net = net();
    let mut backup = net.start(2);
    let digest = Digest::of(b"block");
    let proposal = net.vote(VoteKind::PrePrepare, 0, digest, 1);
    assert_eq!(
        backup.handle(net.verified(Message::PrePrepare(proposal))),
        vec![Output::ValidateValue { height: 1, view: 0, digest }]
    );
    let prepare = net.vote(VoteKind::Prepare, 0, digest, 2);
    let mut persisted = SafetyState::new(1);
    persisted.votes.push(prepare.vote);
    assert_eq!(
        backup.handle(Input::ValueValidated { height: 1, digest, verdict: Verdict::Valid }),
        vec![Output::Persist(persisted), Output::Broadcast(Message::Prepare(prepare))]
    );
}

#[test]
fn an_invalid_proposal_gets_no_vote() {
    let net = net();
    let mut backup = net.start(2);
    let digest = Digest::of(b"bad block");
    let _ = backup.handle(net.verified(Message::PrePrepare(net.vote(VoteKind::PrePrepare, 0, digest, 1))));
    assert_eq!(backup.handle(Input::ValueValidated { height: 1, digest, verdict: Verdict::Invalid }), vec![]);
}

#[test]
fn a_quorum_of_prepares_then_commits_decides() {
    let net = net();
    let mut backup = net.start(2);
    let digest = Digest::of(b"block");
    let _ = backup.handle(net.verified(Message::PrePrepare(net.vote(VoteKind::PrePrepare, 0, digest, 1))));
    let _ = backup.handle(Input::ValueValidated { height: 1, digest, verdict: Verdict::Valid });
    assert_eq!(backup.handle(net.verified(Message::Prepare(net.vote(VoteKind::Prepare, 0, digest, 0)))), vec![]);
    // The third PREPARE (with its own) makes 2f+1 = 3: prepared, so it persists and commits.
    let outputs = backup.handle(net.verified(Message::Prepare(net.vote(VoteKind::Prepare, 0, digest, 1))));
    let commit = net.vote(VoteKind::Commit, 0, digest, 2);
    assert!(
        matches!(&outputs[0], Output::Persist(state) if state.prepared.as_ref().is_some_and(|p| p.digest == digest))
    );
    assert_eq!(outputs[1], Output::Broadcast(Message::Commit(commit)));
    assert_eq!(outputs.len(), 2);
    let _ = backup.handle(net.verified(Message::Commit(net.vote(VoteKind::Commit, 0, digest, 0))));
    let outputs = backup.handle(net.verified(Message::Commit(net.vote(VoteKind::Commit, 0, digest, 3))));
    let [Output::Decide(certificate)] = outputs.as_slice() else { panic!("expected a decision, got {outputs:?}") };
    assert_eq!(certificate.verify(&net.chain_id, &net.validators, 1, &digest), Ok(()));
}

#[test]
fn a_timeout_starts_a_view_change_and_f_plus_one_requests_pull_others_along() {
    let net = net();
    let mut slow = net.start(2);
    let view_change = net.view_change(1, 2, None);
    let mut state = SafetyState::new(1);
    state.view = 1;
    assert_eq!(
        slow.handle(Input::TimerFired(timer(0))),
        vec![
            Output::StartTimer { timer: timer(1), after_ms: 2 * TIMEOUT },
            Output::Persist(state),
            Output::Broadcast(Message::ViewChange(view_change)),
        ]
    );

    // Another validator hears one request (f = 1): not enough to leave its view...
    let mut other = net.start(3);
    assert_eq!(other.handle(net.verified(Message::ViewChange(net.view_change(1, 0, None)))), vec![]);
    // ...but f + 1 = 2 requests prove an honest validator timed out: it joins.
    let outputs = other.handle(net.verified(Message::ViewChange(net.view_change(1, 1, None))));
    assert_eq!(outputs[0], Output::StartTimer { timer: timer(1), after_ms: 2 * TIMEOUT });
    assert_eq!(outputs[2], Output::Broadcast(Message::ViewChange(net.view_change(1, 3, None))));
    assert_eq!(other.view(), 1);
}

#[test]
fn a_new_view_must_re_propose_the_highest_prepared_value() {
    let net = net();
    let prepared_digest = Digest::of(b"prepared");
    let prepared = PreparedCertificate {
        height: 1,
        view: 0,
        digest: prepared_digest,
        signatures: (0..3)
            .map(|i| VoteSignature {
                validator: i,
                signature: net.vote(VoteKind::Prepare, 0, prepared_digest, i as usize).signature,
            })
            .collect(),
    };
    let view_changes =
        vec![net.view_change(1, 0, Some(prepared.clone())), net.view_change(1, 1, None), net.view_change(1, 3, None)];
    // Leader of view 1 is (1 + 1) % 4 = 2. A NEW-VIEW for another value is ignored.
    let mut backup = net.start(3);
    let other = Message::NewView {
        proposal: net.vote(VoteKind::PrePrepare, 1, Digest::of(b"other"), 2),
        view_changes: view_changes.clone(),
    };
    assert_eq!(backup.handle(net.verified(other)), vec![]);
    // Two VIEW-CHANGEs do not justify a view either.
    let thin = Message::NewView {
        proposal: net.vote(VoteKind::PrePrepare, 1, prepared_digest, 2),
        view_changes: view_changes[..2].to_vec(),
    };
    assert_eq!(backup.handle(net.verified(thin)), vec![]);
    // The justified re-proposal is accepted: the replica enters view 1 and validates it.
    let good = Message::NewView { proposal: net.vote(VoteKind::PrePrepare, 1, prepared_digest, 2), view_changes };
    assert_eq!(
        backup.handle(net.verified(good)),
        vec![
            Output::StartTimer { timer: timer(1), after_ms: 2 * TIMEOUT },
            Output::ValidateValue { height: 1, view: 1, digest: prepared_digest },
        ]
    );
}

#[test]
fn a_restarted_validator_never_signs_a_second_prepare() {
    let net = net();
    let first = Digest::of(b"first");
    let mut before = net.start(2);
    let _ = before.handle(net.verified(Message::PrePrepare(net.vote(VoteKind::PrePrepare, 0, first, 1))));
    let outputs = before.handle(Input::ValueValidated { height: 1, digest: first, verdict: Verdict::Valid });
    let Some(Output::Persist(saved)) = outputs.first().cloned() else { panic!("persists before voting") };

    // Crash; restart from the saved state only. A conflicting view-0 proposal gets no PREPARE:
    // the replica moved to view 1.
    let mut after = net.replica(2);
    assert_eq!(after.handle(Input::Restore(saved)), vec![]);
    let outputs = after.handle(Input::StartHeight { height: 1, validators: net.validators.clone(), previous: None });
    assert!(matches!(outputs.last(), Some(Output::Broadcast(Message::ViewChange(_)))), "{outputs:?}");
    assert_eq!(after.view(), 1);
    let second = Digest::of(b"second");
    let outputs = after.handle(net.verified(Message::PrePrepare(net.vote(VoteKind::PrePrepare, 0, second, 1))));
    let _ = after.handle(Input::ValueValidated { height: 1, digest: second, verdict: Verdict::Valid });
    assert!(outputs.iter().all(|output| !matches!(output, Output::Broadcast(Message::Prepare(_)))));
}

#[test]
fn conflicting_votes_from_one_validator_are_evidence() {
    let net = net();
    let mut replica = net.start(2);
    let first = net.vote(VoteKind::Prepare, 0, Digest::of(b"a"), 0);
    let second = net.vote(VoteKind::Prepare, 0, Digest::of(b"b"), 0);
    assert_eq!(replica.handle(net.verified(Message::Prepare(first))), vec![]);
    assert_eq!(replica.handle(net.verified(Message::Prepare(first))), vec![], "a duplicate is dropped");
    assert_eq!(
        replica.handle(net.verified(Message::Prepare(second))),
        vec![Output::Evidence(Evidence { first, second })]
    );
}

#[test]
fn messages_for_far_future_heights_are_bounded() {
    let net = net();
    let mut replica = net.start(2);
    let far = Vote { kind: VoteKind::Prepare, height: 1 + FUTURE_HEIGHTS + 1, view: 0, digest: Digest::ZERO };
    let vote = SignedVote::sign(&net.chain_id, far, 0, &net.keys[0]);
    assert_eq!(replica.handle(net.verified(Message::Prepare(vote))), vec![]);
    assert_eq!(replica.future_count, 0, "beyond the window: dropped");
    let near = Vote { height: 2, ..far };
    let vote = SignedVote::sign(&net.chain_id, near, 0, &net.keys[0]);
    let _ = replica.handle(net.verified(Message::Prepare(vote)));
    assert_eq!(replica.future_count, 1);
}

#[test]
fn forged_and_foreign_messages_never_verify() {
    let net = net();
    let mut forged = net.vote(VoteKind::Prepare, 0, Digest::ZERO, 0);
    forged.signature.0[0] ^= 1;
    assert_eq!(
        Message::Prepare(forged).verify(&net.chain_id, &net.validators),
        Err(crate::MessageError::BadSignature(0))
    );
    let outsider = SigningKey::from_seed([99; 32]);
    let foreign = SignedVote::sign(&net.chain_id, forged.vote, 7, &outsider);
    assert_eq!(
        Message::Prepare(foreign).verify(&net.chain_id, &net.validators),
        Err(crate::MessageError::NotMember(7))
    );
    let other_chain = ChainId::new("other").expect("chain id");
    let replayed = SignedVote::sign(&other_chain, forged.vote, 0, &net.keys[0]);
    assert!(Message::Prepare(replayed).verify(&net.chain_id, &net.validators).is_err());
    let as_commit = net.vote(VoteKind::Prepare, 0, Digest::ZERO, 0);
    assert!(Message::Commit(as_commit).verify(&net.chain_id, &net.validators).is_err());
    assert!(Message::decode(&[5, 1, 2, 3]).is_err());
}

#[test]
fn golden_wire_and_disk_encodings() {
    let net = net();
    let vote = net.vote(VoteKind::Prepare, 2, Digest([9; 32]), 1);
    let message = Message::Prepare(vote);
    let bytes = message.encode();
    // tag 1, then the vote (kind 1, height 1, view 2, digest), validator 1, signature.
    assert_eq!(bytes.len(), 1 + 1 + 8 + 8 + 32 + 4 + 64);
    assert_eq!(&bytes[..2], &[1, 1]);
    assert_eq!(Digest::of(&bytes).to_string(), "0x21fcc910febd40804118d74b1bd85e0c8e8740f874340d8a5cc6079ab3d61155");
    assert_eq!(Message::decode(&bytes), Ok(message));

    let mut state = SafetyState::new(3);
    state.view = 2;
    state.votes.push(vote.vote);
    let bytes = state.encode();
    assert_eq!(Digest::of(&bytes).to_string(), "0x712d8fd140c7f5eb7a9e86cd174eb9b84bb03c8ab993edd0bb4a695d3234c679");
    assert_eq!(SafetyState::decode(&bytes), Ok(state));
}

/// A prepared certificate for `digest` in view 0 of height 1 and the three VIEW-CHANGEs for
/// view 1 that carry it: the justification of a NEW-VIEW that must re-propose `digest`.
fn re_proposal(net: &Net, digest: Digest) -> Message {
    let prepared = PreparedCertificate {
        height: 1,
        view: 0,
        digest,
        signatures: (0..3)
            .map(|i| VoteSignature {
                validator: i,
                signature: net.vote(VoteKind::Prepare, 0, digest, i as usize).signature,
            })
            .collect(),
    };
    let view_changes =
        vec![net.view_change(1, 0, Some(prepared)), net.view_change(1, 1, None), net.view_change(1, 3, None)];
    // Leader of view 1 is (1 + 1) % 4 = 2.
    Message::NewView { proposal: net.vote(VoteKind::PrePrepare, 1, digest, 2), view_changes }
}

#[test]
fn a_value_only_early_by_the_clock_is_voted_for_once_valid() {
    let net = net();
    let mut backup = net.start(2);
    let digest = Digest::of(b"early block");
    assert_eq!(
        backup.handle(net.verified(Message::PrePrepare(net.vote(VoteKind::PrePrepare, 0, digest, 1)))),
        vec![Output::ValidateValue { height: 1, view: 0, digest }]
    );
    // Its timestamp is ahead of this node's clock: no vote yet.
    assert_eq!(backup.handle(Input::ValueValidated { height: 1, digest, verdict: Verdict::NotYet }), vec![]);
    // The clock caught up and the driver answers unasked: it prepares in the same view.
    let prepare = net.vote(VoteKind::Prepare, 0, digest, 2);
    let mut persisted = SafetyState::new(1);
    persisted.votes.push(prepare.vote);
    assert_eq!(
        backup.handle(Input::ValueValidated { height: 1, digest, verdict: Verdict::Valid }),
        vec![Output::Persist(persisted), Output::Broadcast(Message::Prepare(prepare))]
    );
}

#[test]
fn a_re_proposed_value_is_checked_again_if_it_was_early_but_never_if_it_was_invalid() {
    let net = net();
    for (verdict, asked_again) in [(Verdict::NotYet, true), (Verdict::Invalid, false)] {
        let digest = Digest::of(b"edge block");
        let mut backup = net.start(3);
        assert_eq!(
            backup.handle(net.verified(Message::PrePrepare(net.vote(VoteKind::PrePrepare, 0, digest, 1)))),
            vec![Output::ValidateValue { height: 1, view: 0, digest }]
        );
        assert_eq!(backup.handle(Input::ValueValidated { height: 1, digest, verdict }), vec![]);
        // Others prepared it; the NEW-VIEW must re-propose it.
        let mut expected = vec![Output::StartTimer { timer: timer(1), after_ms: 2 * TIMEOUT }];
        if asked_again {
            expected.push(Output::ValidateValue { height: 1, view: 1, digest });
        }
        assert_eq!(backup.handle(net.verified(re_proposal(&net, digest))), expected, "after {verdict:?}");
    }
}

#[test]
fn a_validator_whose_safety_state_is_ahead_of_its_chain_abstains_until_it_catches_up() {
    let net = net();
    // It voted at height 2, then a power cut lost block 1 (written unsynced) but not its synced
    // safety state: it remembers nothing of its votes at height 1.
    let mut ahead = SafetyState::new(2);
    ahead.votes.push(Vote { kind: VoteKind::Prepare, height: 2, view: 0, digest: Digest::of(b"block 2") });
    let start = |replica: &mut Replica| {
        assert_eq!(replica.handle(Input::Restore(ahead.clone())), vec![]);
        replica.handle(Input::StartHeight { height: 1, validators: net.validators.clone(), previous: None })
    };
    // As the leader of view 0 it proposes nothing; when its timer fires it asks for no view.
    let mut leader = net.replica(1);
    assert_eq!(start(&mut leader), vec![Output::StartTimer { timer: timer(0), after_ms: TIMEOUT }]);
    assert_eq!(
        leader.handle(Input::TimerFired(timer(0))),
        vec![Output::StartTimer { timer: timer(1), after_ms: 2 * TIMEOUT }]
    );

    // As a backup it validates and counts votes, but signs nothing.
    let mut backup = net.replica(2);
    assert_eq!(start(&mut backup), vec![Output::StartTimer { timer: timer(0), after_ms: TIMEOUT }]);
    let digest = Digest::of(b"block 1");
    let _ = backup.handle(net.verified(Message::PrePrepare(net.vote(VoteKind::PrePrepare, 0, digest, 1))));
    assert_eq!(backup.handle(Input::ValueValidated { height: 1, digest, verdict: Verdict::Valid }), vec![]);
    for index in [0, 1, 3] {
        assert_eq!(
            backup.handle(net.verified(Message::Prepare(net.vote(VoteKind::Prepare, 0, digest, index)))),
            vec![]
        );
    }
    let _ = backup.handle(net.verified(Message::Commit(net.vote(VoteKind::Commit, 0, digest, 0))));
    let _ = backup.handle(net.verified(Message::Commit(net.vote(VoteKind::Commit, 0, digest, 1))));
    let outputs = backup.handle(net.verified(Message::Commit(net.vote(VoteKind::Commit, 0, digest, 3))));
    let [Output::Decide(certificate)] = outputs.as_slice() else { panic!("expected a decision, got {outputs:?}") };

    // Back at the height its safety state is for, it is the restarted validator it was: it asks
    // for the next view, keeping its earlier votes.
    let outputs = backup.handle(Input::StartHeight {
        height: 2,
        validators: net.validators.clone(),
        previous: Some(certificate.clone()),
    });
    let mut saved = ahead.clone();
    saved.view = 1;
    let view_change = ViewChange { height: 2, view: 1, prepared: None };
    let signature = net.keys[2].sign(&view_change.signing_bytes(&net.chain_id));
    assert_eq!(
        outputs,
        vec![
            Output::StartTimer { timer: Timer { height: 2, view: 1 }, after_ms: 2 * TIMEOUT },
            Output::Persist(saved),
            Output::Broadcast(Message::ViewChange(SignedViewChange { view_change, validator: 2, signature })),
        ]
    );
}

#[test]
fn a_certificate_for_a_later_height_says_the_replica_is_behind_once_not_that_it_decided() {
    let net = net();
    let mut backup = net.start(2);
    let digest = Digest::of(b"block 3");
    let signers: Vec<(u32, &SigningKey)> = (0..3).map(|index| (index as u32, &net.keys[index])).collect();
    let certificate = CommitCertificate::sign(&net.chain_id, 3, 0, digest, &signers);
    let message = Message::Decided(certificate.clone());
    assert_eq!(backup.handle(net.verified(message.clone())), vec![Output::CertifiedAhead(certificate)]);
    assert_eq!(backup.handle(net.verified(message)), vec![], "reported once");
    assert_eq!(backup.height(), 1);
}
