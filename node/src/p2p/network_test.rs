//! Two networks on 127.0.0.1: what the swarm loop lets through to the driver, and what the
//! serving task answers.

use std::{collections::HashSet, sync::Arc, time::Duration};

use consensus::{ChainId, CommitCertificate, Digest, Message};
use libp2p::{PeerId, identity::Keypair, multiaddr::Protocol};
use tokio::sync::mpsc;

use super::{Events, Limits, NetworkEvent, NetworkHandle, Settings, start, test_support::Chain};

/// Every test ends within this, however it ends.
const LIMIT: Duration = Duration::from_secs(60);

struct Peer {
    handle: NetworkHandle,
    events: Events,
    id: PeerId,
}

async fn started(keypair: Keypair, admitted: PeerId, bootstrap: Vec<libp2p::Multiaddr>, blocks: u64) -> Peer {
    let id = keypair.public().to_peer_id();
    let settings = Settings {
        keypair,
        chain_id: ChainId::new("network-test").expect("chain id"),
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        external_address: None,
        bootstrap,
        admitted: HashSet::from([admitted]),
        limits: Limits { max_connections: 8, max_message_bytes: 1 << 20 },
    };
    let (handle, events) = start(settings, Arc::new(Chain::new(blocks, Duration::ZERO))).await.expect("network");
    Peer { handle, events, id }
}

/// Two connected peers: `server` holds `blocks` blocks, `client` none.
async fn connected(blocks: u64) -> (Peer, Peer) {
    let (server_key, client_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (server_id, client_id) = (server_key.public().to_peer_id(), client_key.public().to_peer_id());
    let mut server = started(server_key, client_id, Vec::new(), blocks).await;
    let address = server.handle.listen_addresses().await.into_iter().next().expect("listening");
    let mut client = started(client_key, server_id, vec![address.with(Protocol::P2p(server_id))], 0).await;
    next(&mut client.events.consensus, |event| matches!(event, NetworkEvent::Connected(peer) if *peer == server_id))
        .await;
    next(&mut server.events.consensus, |event| matches!(event, NetworkEvent::Connected(peer) if *peer == client_id))
        .await;
    (server, client)
}

/// The next event that `wanted` picks.
async fn next(events: &mut mpsc::Receiver<NetworkEvent>, wanted: impl Fn(&NetworkEvent) -> bool) -> NetworkEvent {
    loop {
        let event = events.recv().await.expect("network running");
        if wanted(&event) {
            return event;
        }
    }
}

fn decided(height: u64) -> Message {
    let chain_id = ChainId::new("network-test").expect("chain id");
    Message::Decided(CommitCertificate { chain_id, height, view: 0, digest: Digest::ZERO, signatures: Vec::new() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_and_block_ranges_are_served_by_the_serving_task() {
    let test = async {
        let (server, mut client) = connected(300).await;
        client.handle.request_blocks(server.id, 5, 10);
        let event = next(&mut client.events.consensus, |event| matches!(event, NetworkEvent::Blocks { .. })).await;
        let NetworkEvent::Blocks { peer, blocks } = event else { unreachable!("picked above") };
        assert_eq!(peer, server.id);
        let heights: Vec<u64> = blocks.iter().map(|certified| certified.block.header.height).collect();
        assert_eq!(heights, (5..15).collect::<Vec<_>>());
        client.handle.ask_heads();
        let event = next(&mut client.events.consensus, |event| matches!(event, NetworkEvent::PeerHead { .. })).await;
        let NetworkEvent::PeerHead { peer, head } = event else { unreachable!("picked above") };
        assert_eq!((peer, head), (server.id, 300));
    };
    tokio::time::timeout(LIMIT, test).await.expect("within the limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_direct_message_reaches_the_driver_once() {
    const COPIES: usize = 20;
    let test = async {
        let (mut server, client) = connected(0).await;
        let (replayed, marker) = (decided(7), decided(8));
        for _ in 0..COPIES {
            client.handle.send_direct(server.id, replayed.clone());
        }
        client.handle.send_direct(server.id, marker.clone());
        let mut copies = 0;
        let mut count = |event: &NetworkEvent| match event {
            NetworkEvent::Direct { message, .. } if **message == replayed => {
                copies += 1;
                false
            }
            NetworkEvent::Direct { message, .. } => **message == marker,
            _ => false,
        };
        loop {
            let event = server.events.consensus.recv().await.expect("network running");
            if count(&event) {
                break;
            }
        }
        // Copies still on their way are dropped too; give them a moment to arrive.
        let drain = tokio::time::sleep(Duration::from_millis(300));
        tokio::pin!(drain);
        loop {
            tokio::select! {
                _ = &mut drain => break,
                Some(event) = server.events.consensus.recv() => { count(&event); }
            }
        }
        // One, or two if the machine stalled past the expiry: never all of them.
        assert!((1..COPIES / 2).contains(&copies), "{copies} of {COPIES} copies reached the driver");
    };
    tokio::time::timeout(LIMIT, test).await.expect("within the limit");
}

/// What a peer that connects to a node started with `external_address` hears from identify.
async fn announced(external_address: Option<libp2p::Multiaddr>) -> (libp2p::Multiaddr, Vec<libp2p::Multiaddr>) {
    use futures::StreamExt;
    use libp2p::{identify, swarm::SwarmEvent};
    let (server_key, client_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let settings = Settings {
        keypair: server_key,
        chain_id: ChainId::new("network-test").expect("chain id"),
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        external_address,
        bootstrap: Vec::new(),
        admitted: HashSet::from([client_key.public().to_peer_id()]),
        limits: Limits { max_connections: 8, max_message_bytes: 1 << 20 },
    };
    let (server, _events) = start(settings, Arc::new(Chain::new(0, Duration::ZERO))).await.expect("network");
    let listen = server.listen_addresses().await.into_iter().next().expect("listening");
    let mut client = libp2p::SwarmBuilder::with_existing_identity(client_key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .expect("transport")
        .with_behaviour(|key| identify::Behaviour::new(identify::Config::new("/test/1".to_string(), key.public())))
        .expect("behaviour")
        .build();
    client.dial(listen.clone()).expect("dial");
    loop {
        if let SwarmEvent::Behaviour(identify::Event::Received { info, .. }) = client.select_next_some().await {
            return (listen, info.listen_addrs);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_hear_the_external_address_instead_of_the_listen_address() {
    let test = async {
        // Loopback, and never dialled: only announced.
        let external: libp2p::Multiaddr = "/ip4/127.0.0.2/tcp/4242".parse().expect("multiaddr");
        let (_, addresses) = announced(Some(external.clone())).await;
        assert_eq!(addresses, vec![external]);
        let (listen, addresses) = announced(None).await;
        assert_eq!(addresses, vec![listen], "without an external address, the listen address");
    };
    tokio::time::timeout(LIMIT, test).await.expect("within the limit");
}
