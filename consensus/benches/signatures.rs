//! Signature costs: sign, verify one, verify a batch, and verify a commit certificate.
#![allow(missing_docs)] // criterion macros generate undocumented items

use consensus::{ChainId, CommitCertificate, Digest, PublicKey, Signature, SigningKey, ValidatorSet, verify_batch};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn keys(n: usize) -> Vec<SigningKey> {
    (0..n).map(|i| SigningKey::from_seed(Digest::of(&(i as u64).to_le_bytes()).0)).collect()
}

fn signatures(criterion: &mut Criterion) {
    let key = &keys(1)[0];
    let message = [7u8; 150];
    let signature = key.sign(&message);
    let public = key.public_key();

    let mut group = criterion.benchmark_group("ed25519");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| b.iter(|| key.sign(&message)));
    group.bench_function("verify", |b| b.iter(|| public.verify(&message, &signature)));

    const BATCH: usize = 256;
    let signers = keys(BATCH);
    let messages: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; 150]).collect();
    let batch_signatures: Vec<Signature> = signers.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let publics: Vec<PublicKey> = signers.iter().map(SigningKey::public_key).collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("verify_batch_256", |b| b.iter(|| verify_batch(&refs, &batch_signatures, &publics)));
    group.finish();

    let mut group = criterion.benchmark_group("commit_certificate_verify");
    let chain = ChainId::new("bench").expect("chain id");
    for n in [4usize, 7, 10] {
        let validators = keys(n);
        let set = ValidatorSet::new(validators.iter().map(SigningKey::public_key).collect()).expect("set");
        let digest = Digest::of(b"block");
        let signers: Vec<(u32, &SigningKey)> =
            validators.iter().enumerate().take(set.quorum()).map(|(i, k)| (i as u32, k)).collect();
        let certificate = CommitCertificate::sign(&chain, 1, 0, digest, &signers);
        group.bench_function(format!("n{n}"), |b| {
            b.iter_batched(
                || certificate.clone(),
                |certificate| certificate.verify(&chain, &set, 1, &digest),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
