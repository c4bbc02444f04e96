use std::collections::HashSet;

use consensus::{ChainId, CommitCertificate, SigningKey};
use ledger::{BlockReader, BlockWriter, Genesis, GenesisAccount, MemStore, Params, ValidatorInfo, build_block};
use libp2p::{identity::Keypair, multiaddr::Protocol};

use super::*;
use crate::p2p::{self, Limits, Settings};

/// Every test ends within this, however it ends.
const LIMIT: Duration = Duration::from_secs(60);

fn validators() -> Vec<SigningKey> {
    (1..=4).map(|seed| SigningKey::from_seed([seed; 32])).collect()
}

fn chain_id() -> ChainId {
    ChainId::new("agreement").expect("chain id")
}

fn genesis() -> Genesis {
    let validators = validators()
        .iter()
        .enumerate()
        .map(|(index, key)| ValidatorInfo {
            name: format!("v{index}"),
            public_key: key.public_key(),
            peer_id: format!("peer{index}"),
        })
        .collect();
    let accounts: Vec<GenesisAccount> = Vec::new();
    Genesis { chain_id: chain_id(), genesis_time_ms: 1, validators, accounts, params: Params::default() }
}

/// Commits `count` empty blocks `step` ms apart, each certified by the validators `signers`.
fn commit_blocks(store: &MemStore, count: u64, step: u64, signers: &[u32]) {
    let keys = validators();
    for _ in 0..count {
        let head = store.head().expect("head");
        let (block, execution) = build_block(
            store,
            &head,
            keys[0].public_key(),
            head.timestamp_ms + step,
            Vec::new(),
            ledger::SignatureCheck::All,
        )
        .expect("block");
        let signing: Vec<(u32, &SigningKey)> = signers.iter().map(|&index| (index, &keys[index as usize])).collect();
        let certificate = CommitCertificate::sign(&chain_id(), head.height + 1, 0, block.hash(), &signing);
        store.commit(&block, &certificate, execution).expect("commit");
    }
}

fn certified(store: &MemStore, height: Height) -> CertifiedHeader {
    let (header, certificate) = store.certified_header(height).expect("read").expect("committed");
    CertifiedHeader { header, certificate }
}

/// This node's chain of 6 blocks, and a fork of it from height 4 certified by another quorum.
fn ours_and_fork() -> (MemStore, MemStore) {
    let ours = MemStore::new(&genesis()).expect("store");
    commit_blocks(&ours, 6, 10, &[0, 1, 2]);
    let fork = MemStore::new(&genesis()).expect("store");
    commit_blocks(&fork, 3, 10, &[0, 1, 2]);
    commit_blocks(&fork, 3, 11, &[1, 2, 3]);
    (ours, fork)
}

#[test]
fn the_same_block_agrees_and_a_fork_certified_by_two_quorums_diverges_naming_who_signed_both() {
    let (ours, fork) = ours_and_fork();
    assert_eq!(compare(&ours, &certified(&ours, 5)).expect("compared"), Finding::Agreed { height: 5 });
    assert_eq!(compare(&ours, &certified(&fork, 3)).expect("compared"), Finding::Agreed { height: 3 });
    let Finding::Diverged { ours: mine, theirs, signed_both } = compare(&ours, &certified(&fork, 4)).expect("compared")
    else {
        panic!("a divergence at height 4");
    };
    assert_eq!(mine.header, ours.header(4).expect("read").expect("header"));
    assert_eq!(theirs.header, fork.header(4).expect("read").expect("header"));
    let keys = validators();
    assert_eq!(signed_both, vec![keys[1].public_key(), keys[2].public_key()], "validators 1 and 2 signed both");
}

#[test]
fn headers_their_certificates_do_not_commit_are_bad_answers_not_divergences() {
    let (ours, fork) = ours_and_fork();
    let theirs = certified(&fork, 4);

    // Two signatures of four are not a quorum: one Byzantine peer (or f validators) cannot
    // raise the alarm.
    let mut too_few = theirs.clone();
    too_few.certificate.signatures.truncate(2);
    assert!(matches!(compare(&ours, &too_few), Ok(Finding::Invalid { height: 4, .. })));
    // A certificate of another block.
    let mut other = theirs.clone();
    other.certificate = certified(&ours, 4).certificate;
    assert!(matches!(compare(&ours, &other), Ok(Finding::Invalid { height: 4, .. })));
    // A header whose certificate names it but whose content was changed afterwards.
    let mut edited = theirs.clone();
    edited.header.state_root = consensus::Digest([7; 32]);
    assert!(matches!(compare(&ours, &edited), Ok(Finding::Invalid { height: 4, .. })));
    // Another chain's header.
    let mut foreign = theirs.clone();
    foreign.header.chain_id = ChainId::new("elsewhere").expect("chain id");
    assert!(matches!(compare(&ours, &foreign), Ok(Finding::Invalid { height: 4, .. })));

    // Nothing to compare above this node's head.
    commit_blocks(&fork, 2, 11, &[1, 2, 3]);
    assert_eq!(compare(&ours, &certified(&fork, 8)).expect("compared"), Finding::Skipped);
}

#[test]
fn the_checkpoint_is_the_highest_multiple_at_or_below_the_head() {
    assert_eq!(checkpoint(0, 100), 0);
    assert_eq!(checkpoint(99, 100), 0);
    assert_eq!(checkpoint(100, 100), 100);
    assert_eq!(checkpoint(257, 100), 200);
    assert_eq!(checkpoint(7, 1), 7);
}

fn settings() -> ChecksConfig {
    ChecksConfig { compare_interval: Duration::from_millis(100), checkpoint_interval: 2, ..ChecksConfig::default() }
}

#[test]
fn a_divergence_is_counted_once_kept_as_evidence_and_survives_a_restart() {
    let (ours, fork) = ours_and_fork();
    let ours = Arc::new(ours);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(STATE_FILE);
    let metrics = Arc::new(Metrics::default());
    let comparer = Comparer::new(ours.clone(), settings(), metrics.clone(), Some(file.clone()));
    let peer = PeerId::random();

    let agreed = comparer.record_answer(peer, &[certified(&fork, 2), certified(&fork, 3)]);
    assert_eq!(agreed, vec![Finding::Agreed { height: 2 }, Finding::Agreed { height: 3 }]);
    let status = comparer.handle().status();
    assert_eq!(status.comparisons, 1);
    let last = status.last.expect("a comparison");
    assert_eq!((last.heights, last.agreed), (vec![2, 3], true));
    assert!(comparer.handle().diverged().is_empty());

    for _ in 0..2 {
        comparer.record_answer(peer, &[certified(&fork, 6), certified(&fork, 4)]);
    }
    assert_eq!(metrics.peer_divergence.get(), 2, "heights 4 and 6 diverge, each counted once");
    let divergences = comparer.handle().divergences();
    assert_eq!(divergences.iter().map(|divergence| divergence.height).collect::<Vec<_>>(), vec![6, 4]);
    assert_eq!(divergences[1].theirs.header.hash, fork.header(4).expect("read").expect("header").hash());
    assert_eq!(divergences[1].ours.certificate, certified(&ours, 4).certificate);
    assert_eq!(divergences[1].peer, peer.to_string());
    let status = comparer.handle().status();
    assert_eq!((status.comparisons, status.divergences), (3, 2));
    assert!(!status.last.expect("a comparison").agreed);
    assert!(comparer.handle().diverged()[1].contains("height 4"), "{:?}", comparer.handle().diverged());

    // A bad answer is counted as one, not as a divergence.
    let mut too_few = certified(&fork, 5);
    too_few.certificate.signatures.truncate(1);
    comparer.record_answer(peer, &[too_few]);
    assert_eq!(comparer.handle().status().invalid_answers, 1);
    assert_eq!(metrics.peer_divergence.get(), 2);

    // The evidence is read back after a restart.
    drop(comparer);
    let restarted = Comparer::new(ours, settings(), Arc::new(Metrics::default()), Some(file));
    assert_eq!(restarted.handle().divergences(), divergences);
    assert_eq!(restarted.handle().status().divergences, 2);
}

async fn network(
    keypair: Keypair,
    admitted: PeerId,
    bootstrap: Vec<libp2p::Multiaddr>,
    store: Arc<MemStore>,
) -> NetworkHandle {
    let settings = Settings {
        keypair,
        chain_id: chain_id(),
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        external_address: None,
        bootstrap,
        admitted: HashSet::from([admitted]),
        limits: Limits { max_connections: 8, max_message_bytes: 1 << 20 },
    };
    let (handle, events) = p2p::start(settings, store).await.expect("network");
    // Nobody drives these networks: drain their events so they never block.
    let crate::p2p::Events { mut consensus, mut transactions } = events;
    tokio::spawn(async move { while consensus.recv().await.is_some() {} });
    tokio::spawn(async move { while transactions.recv().await.is_some() {} });
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_peer_serving_a_forged_certified_fork_is_found_over_the_network() {
    let test = async {
        let (ours, fork) = ours_and_fork();
        let (ours, fork) = (Arc::new(ours), Arc::new(fork));
        let (our_key, peer_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (our_id, peer_id) = (our_key.public().to_peer_id(), peer_key.public().to_peer_id());
        let peer = network(peer_key, our_id, Vec::new(), fork.clone()).await;
        let address = peer.listen_addresses().await.into_iter().next().expect("listening");
        let ours_network = network(our_key, peer_id, vec![address.with(Protocol::P2p(peer_id))], ours.clone()).await;
        let comparer = Comparer::new(ours.clone(), settings(), Arc::new(Metrics::default()), None);
        let handle = comparer.handle();
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(comparer.run(ours_network, shutdown));
        loop {
            let divergences = handle.divergences();
            if !divergences.is_empty() {
                // The peer's head (6) and the checkpoint (6, a multiple of 2) are one block.
                assert_eq!(divergences[0].height, 6);
                assert_eq!(divergences[0].peer, peer_id.to_string());
                assert_eq!(divergences[0].theirs.header.hash, fork.header(6).expect("read").expect("header").hash());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(peer);
    };
    tokio::time::timeout(LIMIT, test).await.expect("within the limit");
}
