//! Consensus core throughput: messages handled per second by one replica through a whole
//! height (PRE-PREPARE, n-1 PREPAREs, n-1 COMMITs, its own two votes), for n = 4, 7, 10.
//! Signature verification is excluded (the driver does it before the core sees a message).
//! `replica_height` includes the validator's own two signatures per height;
//! `replica_height_no_signatures` runs an observer through the same height: no signature at all.
#![allow(missing_docs)] // criterion macros generate undocumented items

use consensus::{
    ChainId, Config, Digest, Input, Message, Output, Replica, SignedVote, SigningKey, ValidatorSet, Verdict, Verified,
    Vote, VoteKind,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

struct Height {
    chain_id: ChainId,
    keys: Vec<SigningKey>,
    validators: ValidatorSet,
    digest: Digest,
    messages: Vec<Verified<Message>>,
}

/// Every message a non-leader replica (validator n-1) receives in a decided height 1.
fn height(n: usize) -> Height {
    let chain_id = ChainId::new("bench").expect("chain id");
    let keys: Vec<SigningKey> = (0..n).map(|i| SigningKey::from_seed([i as u8 + 1; 32])).collect();
    let validators = ValidatorSet::new(keys.iter().map(SigningKey::public_key).collect()).expect("set");
    let digest = Digest::of(b"block");
    let leader = Replica::leader(&validators, 1, 0) as usize;
    let vote = |kind, index: usize| {
        let vote = Vote { kind, height: 1, view: 0, digest };
        SignedVote::sign(&chain_id, vote, index as u32, &keys[index])
    };
    let mut messages = vec![Message::PrePrepare(vote(VoteKind::PrePrepare, leader))];
    messages.extend((0..n - 1).map(|i| Message::Prepare(vote(VoteKind::Prepare, i))));
    messages.extend((0..n - 1).map(|i| Message::Commit(vote(VoteKind::Commit, i))));
    let messages = messages.into_iter().map(|m| m.verify(&chain_id, &validators).expect("valid")).collect();
    Height { chain_id, keys, validators, digest, messages }
}

fn decide_one_height(height: &Height, key: &SigningKey, messages: Vec<Verified<Message>>) -> usize {
    let mut replica = Replica::new(Config {
        chain_id: height.chain_id.clone(),
        key: key.clone(),
        view_timeout_ms: 1_000,
        view_timeout_max_ms: 10_000,
    });
    let mut outputs =
        replica.handle(Input::StartHeight { height: 1, validators: height.validators.clone(), previous: None });
    let mut messages = messages.into_iter();
    if let Some(proposal) = messages.next() {
        outputs.extend(replica.handle(Input::Message(proposal)));
    }
    outputs.extend(replica.handle(Input::ValueValidated { height: 1, digest: height.digest, verdict: Verdict::Valid }));
    for message in messages {
        outputs.extend(replica.handle(Input::Message(message)));
    }
    assert!(outputs.iter().any(|output| matches!(output, Output::Decide(_))), "the height must be decided");
    outputs.len()
}

fn replica(criterion: &mut Criterion) {
    // A validator handles the messages and signs its own PREPARE and COMMIT (2 signatures); an
    // observer (a key outside the set) handles the same messages and signs nothing.
    let observer = SigningKey::from_seed([200; 32]);
    for (group_name, validator) in [("replica_height", true), ("replica_height_no_signatures", false)] {
        let mut group = criterion.benchmark_group(group_name);
        for n in [4usize, 7, 10] {
            let fixture = height(n);
            let key = if validator { fixture.keys[n - 1].clone() } else { observer.clone() };
            group.throughput(Throughput::Elements(fixture.messages.len() as u64));
            group.bench_function(format!("n{n}"), |b| {
                b.iter_batched(
                    || fixture.messages.clone(),
                    |messages| decide_one_height(&fixture, &key, messages),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, replica);
criterion_main!(benches);
