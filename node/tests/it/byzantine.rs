//! One Byzantine validator among four `stele start` processes (the test build's `byzantine`
//! feature, every behaviour on), one Byzantine observer the validators admit (tampered bodies,
//! far-future proposals, replays, garbage, forged votes, lies to block sync), one node outside
//! the validator set, and a hostile client (torsioned signatures, gapped-nonce floods,
//! cross-origin WebSockets): the honest nodes keep committing under load, a late one syncs past
//! the liars, they agree on every block, their chains audit, they record evidence naming the
//! Byzantine validator (and no one else) that verifies from the votes alone, and the outsider
//! never connects nor gets anything in.

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use consensus::{ChainId, PublicKey, Signature, SignedVote};
use ledger::{BlockReader, RocksStore, StoreOptions};
use serde_json::{Value, json};

use super::{
    crash_points::call as answer,
    processes::{free_port_range, height, run_ok, wait_for},
    stele,
};

/// Honest nodes refuse messages over this many bytes...
const HONEST_MESSAGE_MAX: &str = "2097152";
/// ...which the Byzantine node, allowed twice as much, sends.
const BYZANTINE_MESSAGE_MAX: &str = "4194304";

/// The child processes, killed when the test ends however it ends (a panic included).
struct Nodes(Vec<(PathBuf, Option<Child>)>);

impl Nodes {
    fn start(&mut self, home: &Path, extra_env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(home.join("node.log")).expect("log");
        let mut command = stele();
        command
            .args(["start", "--home"])
            .arg(home)
            .env("STELE__CONSENSUS__EMPTY_BLOCK_INTERVAL", "300ms")
            .env("RUST_LOG", "info")
            .env_remove("STELE_BYZANTINE")
            .stdout(Stdio::null())
            .stderr(log);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        self.0.push((home.to_path_buf(), Some(command.spawn().expect("spawn stele start"))));
    }

    /// Panics with its log if a node exited on its own.
    fn assert_alive(&mut self) {
        for (home, child) in &mut self.0 {
            if let Some(child) = child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(home.join("node.log")).unwrap_or_default();
                panic!("{} exited with {status}; its log:\n{log}", home.display());
            }
        }
    }

    /// SIGTERM to every node, then waits for each (killing what does not stop).
    fn stop_all(&mut self) {
        for (_, child) in &mut self.0 {
            if let Some(child) = child {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for (home, child) in &mut self.0 {
            if let Some(mut running) = child.take() {
                loop {
                    match running.try_wait() {
                        Ok(Some(status)) => {
                            assert!(status.success(), "{} stopped with {status}", home.display());
                            break;
                        }
                        _ if Instant::now() >= deadline => {
                            let _ = running.kill();
                            let _ = running.wait();
                            panic!("{} did not stop after SIGTERM", home.display());
                        }
                        _ => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            }
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            if let Some(child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// One JSON-RPC call's result; `None` if the node does not answer or answers with an error.
fn call(port: u16, method: &str, params: Value) -> Option<Value> {
    Some(answer(port, method, params)?.get_mut("result")?.take())
}

/// The status line a WebSocket upgrade from a web page of `origin` gets.
fn upgrade_status(port: u16, origin: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut buffer = [0u8; 256];
    let read = stream.read(&mut buffer).ok()?;
    String::from_utf8_lossy(&buffer[..read]).lines().next().map(str::to_string)
}

/// A metric's value from a node's Prometheus endpoint.
fn metric(port: u16, name: &str) -> Option<f64> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let prefix = format!("{name} ");
    response.lines().find_map(|line| line.strip_prefix(&prefix)).and_then(|value| value.trim().parse().ok())
}

/// The libp2p peer id a home's node key gives.
fn peer_id(home: &Path) -> String {
    let key = genesis::load_key(&home.join("node.key.json")).expect("node key");
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(key.seed()).expect("keypair");
    keypair.public().to_peer_id().to_string()
}

/// Checks one vote of a piece of evidence from its JSON alone; returns the vote.
fn verified_vote(chain_id: &ChainId, public_key: &PublicKey, vote: &Value) -> SignedVote {
    let raw = rpc::types::from_hex(vote["raw"].as_str().expect("raw")).expect("hex");
    let signed: SignedVote = borsh::from_slice(&raw).expect("a borsh SignedVote");
    let signing_bytes = rpc::types::from_hex(vote["signing_bytes"].as_str().expect("signing bytes")).expect("hex");
    assert_eq!(signing_bytes, signed.vote.signing_bytes(chain_id), "signing_bytes are the vote's");
    let signature: Signature = serde_json::from_value(vote["signature"].clone()).expect("signature");
    assert_eq!(signature, signed.signature);
    public_key.verify(&signing_bytes, &signature).expect("the signature verifies against the validator's key");
    signed
}

#[test]
fn one_byzantine_validator_of_four_breaks_neither_safety_nor_liveness_and_is_caught() {
    let _network = super::one_network_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(18);
    super::processes::generate(dir.path(), 4, base);
    let homes: Vec<PathBuf> = (0..4).map(|index| dir.path().join(format!("node{index}"))).collect();
    let rpc_port = |index: u16| base + 3 * index + 1;
    let metrics_port = |index: u16| base + 3 * index + 2;
    let honest = [1u16, 2, 3];

    // The outsider: a node of another (generated) network, pointed at this one's genesis and
    // validators. Neither its node key nor its validator key is in the validator set.
    let outside_dir = dir.path().join("outside");
    let outside_base = base + 12;
    super::processes::generate(&outside_dir, 1, outside_base);
    let outsider = outside_dir.join("node0");
    let bootstrap: Vec<String> = (0..4u16)
        .zip(&homes)
        .map(|(index, home)| format!("\"/ip4/127.0.0.1/tcp/{}/p2p/{}\"", base + 3 * index, peer_id(home)))
        .collect();
    let write_config = |home: &Path, base: u16| {
        std::fs::copy(dir.path().join("genesis.json"), home.join("genesis.json")).expect("copy genesis");
        std::fs::write(
            home.join("config.toml"),
            format!(
                "[network]\nlisten = \"/ip4/127.0.0.1/tcp/{base}\"\nbootstrap = [{}]\n\n\
                 [rpc]\nlisten = \"127.0.0.1:{}\"\n\n[metrics]\nlisten = \"127.0.0.1:{}\"\n",
                bootstrap.join(", "),
                base + 1,
                base + 2
            ),
        )
        .expect("write the config");
    };
    write_config(&outsider, outside_base);

    // The Byzantine observer: admitted by every validator (`network.observers`), it serves
    // tampered bodies, re-gossips proposals with changed bodies, replays, sends garbage and
    // forged votes, and lies to block sync (head u64::MAX, empty ranges).
    let observer_dir = dir.path().join("observer");
    let observer_base = base + 15;
    super::processes::generate(&observer_dir, 1, observer_base);
    let observer = observer_dir.join("node0");
    write_config(&observer, observer_base);
    let observer_peer = peer_id(&observer);
    for home in &homes {
        let config = std::fs::read_to_string(home.join("config.toml")).expect("read config");
        let admitted = config.replacen("[network]\n", &format!("[network]\nobservers = [\"{observer_peer}\"]\n"), 1);
        assert_ne!(admitted, config, "{} has no [network] section", home.display());
        std::fs::write(home.join("config.toml"), admitted).expect("write config");
    }
    let outsider_peer = peer_id(&outsider);

    let mut nodes = Nodes(Vec::new());
    nodes.start(&homes[0], &[("STELE_BYZANTINE", "all"), ("STELE__NETWORK__MAX_MESSAGE_BYTES", BYZANTINE_MESSAGE_MAX)]);
    // node3 starts late, so it must sync past two liars (node0's `all` includes lie-sync).
    for index in [1u16, 2] {
        nodes.start(&homes[usize::from(index)], &[("STELE__NETWORK__MAX_MESSAGE_BYTES", HONEST_MESSAGE_MAX)]);
    }
    // It tries what it can too: garbage, replays and forged signatures, if it ever had a peer.
    nodes.start(&outsider, &[("STELE_BYZANTINE", "garbage,replay,bad-signature")]);
    nodes.start(&observer, &[("STELE_BYZANTINE", "tamper-body,far-future,replay,garbage,bad-signature,lie-sync")]);
    wait_for("node1 and node2 past height 4", || {
        nodes.assert_alive();
        [1u16, 2].iter().all(|index| height(metrics_port(*index)).is_some_and(|height| height >= 4))
    });
    nodes.start(&homes[3], &[("STELE__NETWORK__MAX_MESSAGE_BYTES", HONEST_MESSAGE_MAX)]);

    let outsider_seen = |nodes: &mut Nodes| {
        nodes.assert_alive();
        honest.iter().any(|index| {
            call(rpc_port(*index), "net_peers", json!([])).is_some_and(|peers| {
                peers.as_array().is_some_and(|peers| peers.iter().any(|peer| peer["peer_id"] == outsider_peer.as_str()))
            })
        })
    };
    let heights = || honest.map(|index| height(metrics_port(index)));
    wait_for("every honest node past height 4 (node3 by sync)", || {
        assert!(!outsider_seen(&mut nodes), "an honest node lists the outsider as a peer");
        heights().iter().all(|height| height.is_some_and(|height| height >= 4))
    });
    let observer_admitted = honest.iter().any(|index| {
        call(rpc_port(*index), "net_peers", json!([])).is_some_and(|peers| {
            peers.as_array().is_some_and(|peers| peers.iter().any(|peer| peer["peer_id"] == observer_peer.as_str()))
        })
    });
    assert!(observer_admitted, "no honest node lists the Byzantine observer: its attacks never reached them");
    let started_at = heights().iter().flatten().copied().min().expect("heights");

    // A Byzantine client: 24 transfers whose signatures' R carries a small-torsion component,
    // valid under the one ZIP-215 rule, submitted one by one across all four nodes. Before that
    // rule, about a third were refused depending on how each node batched them, and nodes then
    // disagreed about blocks holding the rest.
    let faucet_key = genesis::load_key(&dir.path().join("faucet.key.json")).expect("faucet key");
    let status = call(rpc_port(1), "chain_status", json!([])).expect("status");
    let chain_id: ChainId = serde_json::from_value(status["chain_id"].clone()).expect("chain id");
    let torsion_target = "0x00000000000000000000000000000000000000dd";
    for nonce in 0..24u64 {
        let transaction = ledger::Transaction {
            chain_id: chain_id.clone(),
            signer: faucet_key.public_key(),
            nonce,
            payload: ledger::Payload::Transfer { to: torsion_target.parse().expect("address"), amount: 1 },
        };
        let message = transaction.signing_bytes();
        let (_, signature) = consensus::hostile::sign_torsioned(&faucet_key, &message, 1 + nonce as usize % 7, 0);
        let signed = ledger::SignedTransaction { transaction, signature };
        let encoded = consensus::hex::encode(signed.encode());
        let node = (nonce % 4) as u16;
        assert!(
            call(rpc_port(node), "tx_submit", json!([encoded])).is_some(),
            "node{node} refused torsioned transfer {nonce}"
        );
    }
    wait_for("the 24 torsioned transfers committed on every honest node", || {
        nodes.assert_alive();
        honest.iter().all(|index| {
            call(rpc_port(*index), "state_getAccount", json!([torsion_target]))
                .is_some_and(|account| account["balance"] == 24)
        })
    });

    // A transfer the outsider admits: it must never reach the chain.
    let faucet = dir.path().join("faucet.key.json");
    let faucet = faucet.to_str().expect("utf-8");
    let stray = "0x00000000000000000000000000000000000000ee";
    let outsider_rpc = format!("http://127.0.0.1:{}", outside_base + 1);
    let submitted =
        run_ok(&["tx", "transfer", "--to", stray, "--amount", "7", "--key", faucet, "--json", "--rpc", &outsider_rpc]);
    let submitted: Value = serde_json::from_str(&submitted).expect("json");
    let stray_hash = submitted["hash"].as_str().expect("hash").to_string();

    // A client floods an honest node with 32 KiB records behind a nonce gap: they take their own
    // small budget (some are refused with 1008), never the room of transfers that can execute.
    let mut gapped_refused = 0;
    for offset in 0..160u64 {
        let transaction = ledger::Transaction {
            chain_id: chain_id.clone(),
            signer: faucet_key.public_key(),
            nonce: 500 + offset,
            payload: ledger::Payload::PutRecord { key: offset.to_le_bytes().to_vec(), value: vec![7; 32 * 1024] },
        };
        let encoded = consensus::hex::encode(transaction.sign(&faucet_key).encode());
        let reply = answer(rpc_port(1), "tx_submit", json!([encoded])).expect("node1 answers");
        if reply["error"]["code"] == 1008 {
            gapped_refused += 1;
        } else {
            assert!(reply.get("result").is_some(), "gapped record {offset}: {reply}");
        }
    }
    assert!(gapped_refused > 0, "no gapped record was refused: the gapped budget is not enforced");

    // A web page the operator opens cannot reach the RPC of any node.
    for index in 0..4u16 {
        let refused = upgrade_status(rpc_port(index), "http://evil.example").expect("an answer");
        assert!(refused.contains("403"), "node{index} let a cross-origin WebSocket in: {refused}");
    }

    // Load through the honest nodes while the Byzantine one does its worst.
    let mut bench = vec!["bench", "--json", "--txs", "600", "--accounts", "6", "--timeout", "90s", "--key", faucet];
    let urls: Vec<String> = honest.iter().map(|index| format!("http://127.0.0.1:{}", rpc_port(*index))).collect();
    for url in &urls {
        bench.extend(["--rpc", url.as_str()]);
    }
    let bench: Vec<String> = bench.iter().map(ToString::to_string).collect();
    let load = std::thread::spawn(move || {
        let output = stele().args(&bench).output().expect("run stele bench");
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), output.stderr)
    });
    wait_for("the honest nodes 10 blocks further", || {
        assert!(!outsider_seen(&mut nodes), "an honest node lists the outsider as a peer");
        heights().iter().all(|height| height.is_some_and(|height| height >= started_at + 10))
    });
    let (succeeded, report, errors) = load.join().expect("bench thread");
    assert!(succeeded, "bench failed: {}", String::from_utf8_lossy(&errors));
    let report: Value = serde_json::from_str(&report).expect("bench json");
    assert_eq!(report["committed"], 600, "{report}");

    // Evidence, served by at least one honest node, names the Byzantine validator only, and
    // proves itself: both signatures verify against its key and the votes conflict.
    let status = call(rpc_port(1), "chain_status", json!([])).expect("status");
    let chain_id: ChainId = serde_json::from_value(status["chain_id"].clone()).expect("chain id");
    let byzantine_key = genesis::load_key(&homes[0].join("validator.key.json")).expect("key").public_key();
    let mut evidence = Vec::new();
    let all_kinds = BTreeSet::from(["conflicting_proposal", "double_commit", "double_prepare"]);
    wait_for("evidence of every kind of equivocation on the honest nodes", || {
        nodes.assert_alive();
        evidence = honest
            .iter()
            .filter_map(|index| call(rpc_port(*index), "chain_getEvidence", json!([])))
            .flat_map(|found| found.as_array().cloned().unwrap_or_default())
            .collect();
        evidence.iter().filter_map(|item| item["kind"].as_str()).collect::<BTreeSet<_>>() == all_kinds
    });
    for item in &evidence {
        let public_key: PublicKey = serde_json::from_value(item["public_key"].clone()).expect("public key");
        assert_eq!(public_key, byzantine_key, "evidence against an honest validator: {item}");
        let first = verified_vote(&chain_id, &public_key, &item["first"]);
        let second = verified_vote(&chain_id, &public_key, &item["second"]);
        assert_eq!(
            (first.vote.kind, first.vote.height, first.vote.view),
            (second.vote.kind, second.vote.height, second.vote.view)
        );
        assert_ne!(first.vote.digest, second.vote.digest, "{item}");
        assert_eq!(first.validator, item["validator"].as_u64().expect("index") as u32);
        assert!(all_kinds.contains(item["kind"].as_str().expect("kind")), "{item}");
    }
    let counted: f64 = honest.iter().filter_map(|index| metric(metrics_port(*index), "stele_evidence_total")).sum();
    assert!(counted >= 1.0, "stele_evidence_total is 0 on every honest node");

    // The outsider never synced a block, and its transfer landed nowhere.
    assert_eq!(height(outside_base + 2), Some(0), "the outsider got blocks");
    let stray_account = call(rpc_port(1), "state_getAccount", json!([stray])).expect("account");
    assert_eq!(stray_account["balance"], 0, "the outsider's transfer was committed");
    for index in honest {
        let status = call(rpc_port(index), "tx_get", json!([stray_hash])).expect("tx status");
        assert_eq!(status["status"], "unknown", "node{index} knows the outsider's transfer: {status}");
    }

    nodes.stop_all();
    let log = std::fs::read_to_string(homes[0].join("node.log")).expect("log");
    assert!(log.contains("BYZANTINE TEST BUILD"), "node0 did not run as a Byzantine validator:\n{log}");
    // The late node was lied to in block sync and gave the liar up, yet caught up.
    let late = std::fs::read_to_string(homes[3].join("node.log")).expect("log");
    assert!(late.contains("sync peer did not serve what it claimed"), "node3 never met a lying sync peer:\n{late}");
    // Every honest chain audits from genesis, and they agree at every common height.
    let document = genesis::GenesisDocument::load(&dir.path().join("genesis.json")).expect("genesis");
    let genesis = document.to_ledger().expect("genesis");
    let mut stores = Vec::new();
    for index in honest {
        let home = &homes[usize::from(index)];
        let audited = run_ok(&["audit", "--home", home.to_str().expect("utf-8")]);
        assert!(audited.starts_with("OK"), "{audited}");
        let options = StoreOptions { sync_writes: true, read_only: true };
        stores.push(RocksStore::open(&home.join("data"), &genesis, options).expect("open store"));
    }
    let common = stores.iter().map(|store| store.head().expect("head").height).min().expect("heads");
    assert!(common >= started_at + 10);
    for height in 1..=common {
        let hashes: Vec<_> =
            stores.iter().map(|store| store.block(height).expect("read").expect("block").block.hash()).collect();
        assert!(hashes.windows(2).all(|pair| pair[0] == pair[1]), "honest nodes disagree at height {height}");
    }
}
