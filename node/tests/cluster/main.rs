//! In-process networks of real nodes over libp2p on 127.0.0.1: agreement, permissioning, sync,
//! view changes and validator-set changes. Each test is bounded in time.

mod harness;

use std::{collections::HashSet, time::Duration};

use consensus::{Replica, ValidatorIndex};
use harness::{Cluster, free_port, new_validator_home, run, wait_until};
use ledger::{BlockReader, Payload, StateHistory, ValidatorInfo};
use node::p2p::{self, Limits};

const LIMIT: Duration = Duration::from_secs(240);

#[test]
fn four_validators_commit_transactions_and_agree_block_by_block() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(4);
        cluster.start_all().await;
        let mut hashes = Vec::new();
        // Several rounds so blocks carry transactions submitted to different nodes.
        for round in 0..5 {
            let transactions: Vec<_> = (0..40).map(|_| cluster.transfer(1)).collect();
            hashes.extend(cluster.submit(round % 4, &transactions).await);
        }
        cluster.wait_committed(&hashes).await;
        let common = cluster.assert_agree();
        assert!(common >= 1);
        // Every certificate verifies against the set in force at its height.
        let node = cluster.node(0);
        for height in 1..=common {
            let block = node.store.block(height).expect("read").expect("block");
            let validators = node.store.validator_set_for(height).expect("validator set");
            block.certificate.verify(&harness::chain_id(), &validators, height, &block.block.hash()).expect("verifies");
        }
        let committed: usize =
            (1..=common).map(|h| node.store.block(h).expect("read").expect("block").block.transactions.len()).sum();
        assert_eq!(committed, 200);
        cluster.stop_all().await;
    });
}

#[test]
fn a_peer_not_admitted_cannot_connect_or_inject_transactions() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(4);
        cluster.start_all().await;
        cluster.wait_height(1).await;

        let intruder_key = consensus::SigningKey::generate().expect("key");
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes(intruder_key.seed()).expect("keypair");
        let intruder_id = keypair.public().to_peer_id();
        let (intruder, _events) = peer_outside(&cluster, keypair).await;
        // Gossip a valid, signed transaction that would be admitted if it arrived.
        let transaction = cluster.transfer(5);
        let gossip = borsh::to_vec(&p2p::protocol::TxGossip(vec![transaction.encode()])).expect("encode");
        // The intruder re-dials every 3 s; give it several attempts.
        for _ in 0..20 {
            intruder.publish(p2p::Topic::Transactions, gossip.clone());
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert!(intruder.peers().await.is_empty(), "the intruder holds a connection");
        }
        for (_, node) in cluster.running() {
            let peers = node.network.peers().await;
            assert!(peers.iter().all(|peer| peer.peer_id != intruder_id), "a node accepted the intruder");
            assert_eq!(node.mempool.size().0, 0, "the transaction got in");
            assert!(node.store.tx_location(&transaction.hash()).expect("read").is_none());
        }
        // Positive control: the validators are connected to each other.
        assert_eq!(cluster.node(0).network.peers().await.len(), 3);
        cluster.stop_all().await;
    });
}

#[test]
fn a_validator_stopped_for_many_blocks_catches_up_by_sync() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(4);
        cluster.start_all().await;
        cluster.wait_height(1).await;
        cluster.stop(3).await;
        // Three of four still make a quorum: commit many blocks without node 3.
        let mut hashes = Vec::new();
        for _ in 0..30 {
            let transaction = cluster.transfer(1);
            let hash = cluster.submit(0, &[transaction]).await;
            cluster.wait_committed(&hash).await;
            hashes.extend(hash);
        }
        let target = cluster.head(0);
        assert!(target >= 30, "only {target} blocks");
        cluster.start(3).await;
        cluster.wait_height(target).await;
        cluster.wait_committed(&hashes).await;
        cluster.assert_agree();
        // The restarted node also takes part in consensus again.
        let transaction = cluster.transfer(1);
        let hash = cluster.submit(3, &[transaction]).await;
        cluster.wait_committed(&hash).await;
        cluster.stop_all().await;
    });
}

#[test]
fn stopping_the_leader_leads_to_a_view_change_and_progress() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(4);
        cluster.start_all().await;
        cluster.wait_height(1).await;
        let transaction = cluster.transfer(1);
        let hash = cluster.submit(1, &[transaction]).await;
        cluster.wait_committed(&hash).await;
        // Wait until the cluster is idle at one height, then stop the leader of the next.
        let head = cluster.assert_agree();
        wait_until("nodes idle at the same head", || (0..4).all(|index| cluster.head(index) == head)).await;
        let validators = cluster.node(0).store.validator_set_for(head + 1).expect("set");
        let leader = Replica::leader(&validators, head + 1, 0) as usize;
        cluster.stop(leader).await;
        let submit_to = (leader + 1) % 4;
        let transaction = cluster.transfer(2);
        let hash = cluster.submit(submit_to, &[transaction]).await;
        cluster.wait_committed(&hash).await;
        let location = cluster.node(submit_to).store.tx_location(&hash[0]).expect("read").expect("committed");
        let block = cluster.node(submit_to).store.block(location.height).expect("read").expect("block");
        assert!(block.certificate.view > 0, "decided in view 0 without its leader");
        assert_ne!(block.block.header.proposer, validators.members()[leader]);
        let view_changes: u64 = cluster.running().map(|(_, node)| node.metrics.view_changes.get()).sum();
        assert!(view_changes > 0);
        cluster.assert_agree();
        cluster.stop_all().await;
    });
}

#[test]
fn a_validator_added_by_an_admin_transaction_signs_from_the_stated_height() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(4);
        cluster.start_all().await;
        cluster.wait_height(1).await;

        // A fifth node, not in the genesis: not admitted by the others yet.
        let home = cluster.dir.path().join("node4");
        let (validator_key, peer_id) = new_validator_home(&home, &cluster.network.genesis_path);
        let mut config = cluster.config(1);
        config.network.listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
        config.network.bootstrap = (0..4).map(|index| cluster.address(index)).collect();
        let newcomer = node::node::Node::start(&home, &config).await.expect("start newcomer");

        let add = cluster.faucet_tx(Payload::AddValidator {
            validator: ValidatorInfo { name: "node4".to_string(), public_key: validator_key.public_key(), peer_id },
        });
        let hash = cluster.submit(0, &[add]).await;
        cluster.wait_committed(&hash).await;
        let added_at = cluster.node(0).store.tx_location(&hash[0]).expect("read").expect("committed").height;
        let delay = cluster.network.genesis.params.validator_change_delay;
        let effective = added_at + delay;
        // The newcomer is admitted, connects and follows the chain.
        let mut hashes = Vec::new();
        for _ in 0..(delay + 2) {
            let transaction = cluster.transfer(1);
            let hash = cluster.submit(0, &[transaction]).await;
            cluster.wait_committed(&hash).await;
            hashes.extend(hash);
        }
        wait_until("the newcomer synced", || {
            hashes.iter().all(|hash| newcomer.store.tx_location(hash).expect("read").is_some())
        })
        .await;
        let set = cluster.node(0).store.validator_set_for(effective).expect("set");
        assert_eq!(set.len(), 5);
        let newcomer_index: ValidatorIndex = set.index_of(&validator_key.public_key()).expect("member");
        assert_eq!(cluster.node(0).store.validator_set_for(effective - 1).expect("set").len(), 4);

        // With node 0 stopped, 4 of 5 validators remain: the quorum (4) needs the newcomer.
        cluster.stop(0).await;
        let transaction = cluster.transfer(1);
        let hash = cluster.submit(1, &[transaction]).await;
        cluster.wait_committed(&hash).await;
        let height = cluster.node(1).store.tx_location(&hash[0]).expect("read").expect("committed").height;
        assert!(height >= effective);
        let block = cluster.node(1).store.block(height).expect("read").expect("block");
        assert!(
            block.certificate.signatures.iter().any(|signature| signature.validator == newcomer_index),
            "the newcomer did not sign block {height}"
        );
        // Heights before the change are certified by the old set only.
        let before = cluster.node(1).store.block(effective - 1).expect("read").expect("block");
        assert!(before.certificate.signatures.iter().all(|signature| signature.validator < 4));
        newcomer.shutdown().await.expect("clean shutdown");
        cluster.stop_all().await;
    });
}

/// A libp2p node with `keypair`, not a validator, dialling node 0 of `cluster`.
async fn peer_outside(cluster: &Cluster, keypair: libp2p::identity::Keypair) -> (p2p::NetworkHandle, p2p::Events) {
    let node0: libp2p::PeerId = cluster.network.nodes[0].peer_id.parse().expect("peer id");
    let settings = p2p::Settings {
        keypair,
        chain_id: harness::chain_id(),
        listen: format!("/ip4/127.0.0.1/tcp/{}", free_port()).parse().expect("multiaddr"),
        external_address: None,
        bootstrap: vec![cluster.address(0).parse().expect("multiaddr")],
        admitted: HashSet::from([node0]),
        limits: Limits { max_connections: 8, max_message_bytes: 1 << 20 },
    };
    let reader: std::sync::Arc<dyn BlockReader + Send + Sync> = cluster.node(1).store.clone();
    p2p::start(settings, reader).await.expect("outside network")
}

/// Blocks node 3 must fetch in the sync test (override with `SYNC_BLOCKS`).
fn sync_blocks() -> u64 {
    std::env::var("SYNC_BLOCKS").ok().and_then(|value| value.parse().ok()).unwrap_or(10_000)
}

#[test]
fn a_node_missing_ten_thousand_blocks_syncs_them_all() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(4);
        let blocks = sync_blocks();
        // Nodes 0-2 hold a chain of `blocks` certified blocks; node 3 holds only the genesis.
        harness::fill_chain(&cluster, 0, blocks);
        for index in 1..3 {
            harness::copy_data(&cluster.home(0), &cluster.home(index));
        }
        for index in 0..3 {
            cluster.start(index).await;
        }
        let mut config = cluster.config(3);
        config.storage.sync_writes = false;
        cluster.start_with(3, config).await;
        cluster.wait_height(blocks).await;
        assert_eq!(cluster.assert_agree(), cluster.head(0));
        cluster.stop_all().await;
    });
}

#[test]
fn an_admitted_peer_that_gossips_invalid_messages_loses_score() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(4);
        let observer_key = consensus::SigningKey::generate().expect("key");
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes(observer_key.seed()).expect("keypair");
        let observer_id = keypair.public().to_peer_id();
        for index in 0..4 {
            let mut config = cluster.config(index);
            config.network.observers = vec![observer_id.to_string()];
            cluster.start_with(index, config).await;
        }
        cluster.wait_height(1).await;
        let (observer, _events) = peer_outside(&cluster, keypair).await;
        // Admitted: it connects.
        let mut connected = false;
        for _ in 0..100 {
            if cluster.node(0).network.peers().await.iter().any(|peer| peer.peer_id == observer_id) {
                connected = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(connected, "the admitted observer never connected");
        let score = |peers: Vec<p2p::PeerInfo>| peers.into_iter().find(|peer| peer.peer_id == observer_id)?.score;
        // Garbage on the consensus topic, a different payload each time (ids are content hashes).
        let mut penalised = false;
        for attempt in 0u32..100 {
            observer.publish(
                p2p::Topic::Consensus,
                [b"not a consensus message".as_slice(), &attempt.to_le_bytes()].concat(),
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            if score(cluster.node(0).network.peers().await).is_some_and(|score| score < 0.0) {
                penalised = true;
                break;
            }
        }
        assert!(penalised, "rejected gossip did not lower the sender's score");
        // The honest validators keep a non-negative score and the chain goes on.
        for peer in cluster.node(0).network.peers().await {
            if peer.peer_id != observer_id {
                assert!(peer.score.unwrap_or(0.0) >= 0.0, "an honest peer was penalised");
            }
        }
        let transaction = cluster.transfer(1);
        let hash = cluster.submit(2, &[transaction]).await;
        cluster.wait_committed(&hash).await;
        cluster.stop_all().await;
    });
}
