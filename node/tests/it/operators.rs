//! A network of separate operators: each validator's home made on its own with `stele init`,
//! only the public entries and the genesis shared, `stele genesis` assembling it, every node on a
//! host of its own (a network namespace with its own address), blocks committed; then a fifth
//! operator's node joins from the genesis and one bootstrap address, follows the chain as an
//! observer and becomes a validator through `AddValidator`, whose signature the chain then needs.
//! And the bad inputs of both commands: a clear error, nothing on disk changed.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use genesis::{GenesisDocument, ValidatorEntry, files};
use testnet::faults::netns::{self, Namespaces};

use super::stele;

const CHAIN: &str = "operators";
const P2P_PORT: u16 = 26656;
const RPC_PORT: u16 = 26657;
const METRICS_PORT: u16 = 26658;
/// Longest any single wait of the network test may take.
const WAIT: Duration = Duration::from_secs(120);

/// Every file under `dir` with its bytes and mode: "nothing on disk changed" compares two.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let mode = std::fs::metadata(&next).expect("metadata").permissions().mode();
        if next.is_dir() {
            files.insert(next.clone(), (Vec::new(), mode));
            for entry in std::fs::read_dir(&next).expect("read dir") {
                pending.push(entry.expect("entry").path());
            }
        } else {
            files.insert(next.clone(), (std::fs::read(&next).expect("read"), mode));
        }
    }
    files
}

fn run(arguments: &[&str]) -> Output {
    stele().args(arguments).stdin(Stdio::null()).output().expect("run stele")
}

/// Runs `stele`, which must succeed; its stdout.
fn succeeds(arguments: &[&str]) -> String {
    let output = run(arguments);
    assert!(output.status.success(), "stele {arguments:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `stele`, which must fail without touching anything under `dir`; its stderr.
fn fails_changing_nothing(dir: &Path, arguments: &[&str]) -> String {
    let before = snapshot(dir);
    let output = run(arguments);
    assert!(!output.status.success(), "stele {arguments:?} succeeded");
    assert_eq!(snapshot(dir), before, "stele {arguments:?} changed the disk");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `stele init --home HOME --name NAME --listen ... [more]`, which must succeed: its JSON report.
fn init(home: &Path, name: &str, listen: &str, more: &[&str]) -> serde_json::Value {
    let mut arguments = vec!["init", "--json", "--home", text(home), "--name", name, "--listen", listen];
    arguments.extend_from_slice(more);
    serde_json::from_str(&succeeds(&arguments)).expect("init --json")
}

#[test]
fn init_writes_private_keys_a_config_and_a_public_entry_and_refuses_an_existing_home() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("acme");
    let report = init(
        &home,
        "acme",
        "/ip4/0.0.0.0/tcp/26656",
        &["--external-address", "/ip4/203.0.113.7/tcp/26656", "--chain-id", CHAIN],
    );
    let mode = |path: PathBuf| std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(home.join(files::VALIDATOR_KEY)), 0o600);
    assert_eq!(mode(home.join(files::NODE_KEY)), 0o600);
    assert_eq!(mode(home.clone()), 0o700);
    let entry = ValidatorEntry::load(&home.join(files::VALIDATOR_ENTRY)).expect("a valid entry");
    assert_eq!(report["entry"], text(&home.join(files::VALIDATOR_ENTRY)));
    assert_eq!(entry.name, "acme");
    assert_eq!(entry.address, "/ip4/203.0.113.7/tcp/26656", "the external address, not the wildcard listen");
    assert_eq!(entry.chain_id.as_ref().map(|chain| chain.as_str()), Some(CHAIN));
    assert_eq!(entry.public_key, genesis::load_key(&home.join(files::VALIDATOR_KEY)).expect("key").public_key());
    let node_key = genesis::load_key(&home.join(files::NODE_KEY)).expect("node key");
    assert_eq!(entry.peer_id, genesis::peer_id_of(&node_key.public_key()));
    assert_eq!(report["peer_id"], entry.peer_id);
    let entry_text = std::fs::read_to_string(home.join(files::VALIDATOR_ENTRY)).expect("read");
    assert!(!entry_text.contains("secret"), "the public entry holds no secret: {entry_text}");
    let config = node::config::Config::load(&home.join(node::node::CONFIG_FILE), std::iter::empty())
        .expect("stele start accepts the config");
    assert_eq!(config.network.listen, "/ip4/0.0.0.0/tcp/26656");
    assert_eq!(config.network.external_address.as_deref(), Some("/ip4/203.0.113.7/tcp/26656"));

    // An existing home: refused, untouched; so is a non-empty folder that is not a home.
    let error = fails_changing_nothing(dir.path(), &["init", "--home", text(&home), "--name", "other"]);
    assert!(error.contains("exists and is not empty"), "{error}");
    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).expect("mkdir");
    std::fs::write(occupied.join("notes.txt"), "mine").expect("write");
    let error = fails_changing_nothing(dir.path(), &["init", "--home", text(&occupied), "--name", "other"]);
    assert!(error.contains("exists and is not empty"), "{error}");

    // Bad arguments are refused before anything is created.
    let fresh = dir.path().join("fresh");
    let bad: [(&[&str], &str); 7] = [
        (&["--external-address", "/dns4/node.example/tcp/26656"], "/ip4/ or /ip6/"),
        (&["--listen", "/ip4/0.0.0.0/tcp/26656"], "give --external-address"),
        (&["--listen", "/ip4/10.0.0.1/tcp/0"], "give --external-address"),
        (&["--listen", "10.0.0.1:26656"], "--listen"),
        (
            &["--external-address", "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWHKhSR24v41h7TJRLjy62NQPEzMdxrdg8dev5hWYNYD9U"],
            "/p2p/",
        ),
        (&["--listen", "/ip4/10.0.0.1/tcp/26656", "--name", "has spaces"], "name"),
        (&["--listen", "/ip4/10.0.0.1/tcp/26656", "--bootstrap", "/ip4/10.0.0.2/tcp/26656"], "/p2p/"),
    ];
    for (more, expected) in bad {
        let mut arguments = vec!["init", "--home", text(&fresh)];
        arguments.extend_from_slice(more);
        let error = fails_changing_nothing(dir.path(), &arguments);
        assert!(error.contains(expected), "{more:?}: {error}");
        assert!(!fresh.exists());
    }
}

/// Four homes of chain `CHAIN` and the entries their operators sent, copied into `inbox`.
fn four_entries(dir: &Path) -> Vec<PathBuf> {
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    (0..4)
        .map(|index| {
            let home = dir.join(format!("op{index}"));
            init(
                &home,
                &format!("op{index}"),
                &format!("/ip4/10.0.0.{}/tcp/26656", 10 + index),
                &["--chain-id", CHAIN],
            );
            let sent = inbox.join(format!("op{index}.json"));
            std::fs::copy(home.join(files::VALIDATOR_ENTRY), &sent).expect("copy");
            sent
        })
        .collect()
}

#[test]
fn genesis_refuses_bad_entries_and_an_existing_out_changing_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let entries = four_entries(dir.path());
    let out = dir.path().join("genesis.json");
    let with = |validators: &[&PathBuf]| -> Vec<String> {
        let mut arguments = vec!["genesis".to_string(), "--out".into(), text(&out).into()];
        for validator in validators {
            arguments.extend(["--validator".to_string(), text(validator).to_string()]);
        }
        arguments
    };
    let fails = |arguments: Vec<String>, expected: &str| {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        let error = fails_changing_nothing(dir.path(), &arguments);
        assert!(error.contains(expected), "{arguments:?}: {error}");
        assert!(!out.exists());
    };
    let [a, b, c, d] = [&entries[0], &entries[1], &entries[2], &entries[3]];

    // The same entry twice (a duplicate key, peer id and name).
    fails(with(&[a, b, c, a]), "have the same consensus public key");
    // A foreign entry: a secret key file sent by mistake, a genesis, another chain's entry.
    let key_file = dir.path().join("op3").join(files::VALIDATOR_KEY);
    fails(with(&[a, b, c, &key_file]), "SECRET key file");
    let elsewhere = dir.path().join("elsewhere");
    init(&elsewhere, "op9", "/ip4/10.0.0.99/tcp/26656", &["--chain-id", "elsewhere"]);
    fails(with(&[a, b, c, &elsewhere.join(files::VALIDATOR_ENTRY)]), "made for chain \"elsewhere\"");
    // An entry edited on its way.
    let edited = dir.path().join("edited.json");
    let original = std::fs::read_to_string(d).expect("read");
    std::fs::write(&edited, original.replace("/ip4/10.0.0.13/", "/ip4/10.6.6.6/")).expect("write");
    fails(with(&[a, b, c, &edited]), "signature: does not verify");
    // Too few validators for the default min_validators (4), and an unknown parameter.
    fails(with(&[a, b, c]), "params.min_validators is 4");
    let mut unknown = with(&[a, b, c, d]);
    unknown.extend(["--param".into(), "block_time=1".into()]);
    fails(unknown, "no such parameter");

    // Lowering min_validators makes three enough; the hash printed is the one `--hash` prints
    // and the one a node computes.
    let mut three = with(&[a, b, c]);
    three.extend(["--param".into(), "min_validators=3".into(), "--json".into()]);
    let built: serde_json::Value =
        serde_json::from_str(&succeeds(&three.iter().map(String::as_str).collect::<Vec<_>>())).expect("json");
    let document = GenesisDocument::load(&out).expect("the node loads it");
    assert_eq!(document.params.min_validators, 3);
    assert_eq!(built["genesis_hash"], document.hash().expect("hash").to_string());
    let hashed: serde_json::Value =
        serde_json::from_str(&succeeds(&["genesis", "--hash", text(&out), "--json"])).expect("json");
    assert_eq!(hashed["genesis_hash"], built["genesis_hash"]);
    assert_eq!(
        built["bootstrap"][2],
        format!("/ip4/10.0.0.12/tcp/26656/p2p/{}", built["validators"][2]["peer_id"].as_str().expect("peer id"))
    );

    // An existing --out is refused, and left as it was.
    fails_changing_nothing(dir.path(), &with(&[a, b, c, d]).iter().map(String::as_str).collect::<Vec<_>>());
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, std::fs::read_to_string(&out).expect("read").replace("\"op1\"", "\"op0\""))
        .expect("write");
    let error = fails_changing_nothing(dir.path(), &["genesis", "--hash", text(&tampered)]);
    assert!(error.contains("validators[1]"), "{error}");
}

/// The `stele start` processes, killed when the test ends however it ends (before the
/// namespaces they run in are removed: declare this after the [`Namespaces`]).
struct Nodes {
    homes: Vec<PathBuf>,
    children: Vec<Option<Child>>,
}

impl Nodes {
    fn start(&mut self, index: usize, namespaces: &Namespaces) {
        let home = &self.homes[index];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(home.join("node.log")).expect("log");
        let child = namespaces
            .command(index, Path::new(env!("CARGO_BIN_EXE_stele")))
            .args(["start", "--home", text(home)])
            .env("STELE__CONSENSUS__EMPTY_BLOCK_INTERVAL", "300ms")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn stele start");
        self.children[index] = Some(child);
    }

    /// SIGTERM, and a clean exit within a bound.
    fn stop(&mut self, index: usize) {
        let mut child = self.children[index].take().expect("running");
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("op{index} did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "op{index} exited with {status}");
    }

    /// Panics with its log if a node that should run has exited.
    fn assert_alive(&mut self) {
        for (index, child) in self.children.iter_mut().enumerate() {
            if let Some(child) = child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.homes[index].join("node.log")).unwrap_or_default();
                panic!("op{index} exited with {status}; its log:\n{log}");
            }
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `stele query ARGS --json --rpc URL`, if the node answers.
fn query(rpc: &str, arguments: &[&str]) -> Option<serde_json::Value> {
    let output = stele().arg("query").args(arguments).args(["--json", "--rpc", rpc]).output().ok()?;
    output.status.success().then(|| serde_json::from_slice(&output.stdout).ok()).flatten()
}

fn wait_for(nodes: &mut Nodes, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        nodes.assert_alive();
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn set_config_line(home: &Path, key: &str, value: &str) {
    let path = home.join(node::node::CONFIG_FILE);
    let config = std::fs::read_to_string(&path).expect("read config");
    let prefix = format!("{key} = ");
    assert!(config.lines().any(|line| line.starts_with(&prefix)), "no {key} in {config}");
    let edited: Vec<String> = config
        .lines()
        .map(|line| if line.starts_with(&prefix) { format!("{prefix}{value}") } else { line.to_string() })
        .collect();
    std::fs::write(&path, edited.join("\n") + "\n").expect("write config");
}

fn toml_list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|item| format!("{item:?}")).collect::<Vec<_>>().join(", "))
}

#[test]
fn four_operators_on_their_own_hosts_commit_and_a_fifth_joins_as_observer_then_validator() {
    let _network = super::one_network_at_a_time();
    if let Some(why) = netns::unavailable() {
        println!("skipped: {why} (each operator's node needs a network namespace of its own)");
        return;
    }
    let tag = super::processes::free_port_range(3);
    let namespaces = match Namespaces::create(tag, 5) {
        Ok(namespaces) => namespaces,
        Err(error) => {
            println!("skipped: network namespaces cannot be made here: {error}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let homes: Vec<PathBuf> = (0..5).map(|index| dir.path().join(format!("op{index}"))).collect();
    let address = |index: usize| namespaces.address(index);
    let rpc = |index: usize| format!("http://{}:{RPC_PORT}", address(index));

    // Each operator, on its own host: a home. Three listen on every interface and announce their
    // external address; one listens on its address alone.
    let coordinator = dir.path().join("coordinator");
    std::fs::create_dir(&coordinator).expect("mkdir");
    let mut inbox = Vec::new();
    for (index, home) in homes.iter().take(4).enumerate() {
        let own = format!("/ip4/{}/tcp/{P2P_PORT}", address(index));
        let rpc_listen = format!("{}:{RPC_PORT}", address(index));
        let metrics_listen = format!("{}:{METRICS_PORT}", address(index));
        let mut more = vec!["--rpc", &rpc_listen, "--metrics", &metrics_listen, "--chain-id", CHAIN];
        let listen = if index < 3 {
            more.extend(["--external-address", &own]);
            format!("/ip4/0.0.0.0/tcp/{P2P_PORT}")
        } else {
            own.clone()
        };
        init(home, &format!("op{index}"), &listen, &more);
        // Sent to the coordinator: the public entry, nothing else.
        let sent = coordinator.join(format!("op{index}.json"));
        std::fs::copy(home.join(files::VALIDATOR_ENTRY), &sent).expect("send the entry");
        inbox.push(sent);
    }

    // The coordinator: an admin key of its own, and the genesis.
    let admin = coordinator.join("admin.key.json");
    succeeds(&["keys", "generate", "--out", text(&admin)]);
    let genesis_path = coordinator.join("genesis.json");
    let mut arguments = vec!["genesis", "--json", "--faucet-key", text(&admin), "--out", text(&genesis_path)];
    for sent in &inbox {
        arguments.extend(["--validator", text(sent)]);
    }
    let built: serde_json::Value = serde_json::from_str(&succeeds(&arguments)).expect("genesis --json");
    let genesis_hash = built["genesis_hash"].as_str().expect("hash").to_string();
    let bootstrap: Vec<String> = serde_json::from_value(built["bootstrap"].clone()).expect("bootstrap list");
    assert_eq!(
        bootstrap[1],
        format!(
            "/ip4/{}/tcp/{P2P_PORT}/p2p/{}",
            address(1),
            built["validators"][1]["peer_id"].as_str().expect("peer id")
        )
    );

    // Each operator: the genesis into the home, its hash checked, the others as bootstrap peers.
    for (index, home) in homes.iter().take(4).enumerate() {
        std::fs::copy(&genesis_path, home.join(files::GENESIS)).expect("receive the genesis");
        let hashed: serde_json::Value =
            serde_json::from_str(&succeeds(&["genesis", "--hash", text(&home.join(files::GENESIS)), "--json"]))
                .expect("json");
        assert_eq!(hashed["genesis_hash"], genesis_hash.as_str());
        let others: Vec<String> =
            bootstrap.iter().enumerate().filter(|(other, _)| *other != index).map(|(_, peer)| peer.clone()).collect();
        set_config_line(home, "bootstrap", &toml_list(&others));
    }

    let mut nodes = Nodes { homes: homes.clone(), children: (0..5).map(|_| None).collect() };
    for index in 0..4 {
        nodes.start(index, &namespaces);
    }
    let height = |index: usize| query(&rpc(index), &["status"]).and_then(|status| status["height"].as_u64());
    wait_for(&mut nodes, "every operator's node past height 3", || (0..4).all(|i| height(i).is_some_and(|h| h >= 3)));
    for index in 0..4 {
        let status = query(&rpc(index), &["status"]).expect("status");
        assert_eq!(status["genesis_hash"], genesis_hash.as_str(), "op{index} runs another genesis");
        assert_eq!(status["role"], "validator");
    }
    println!("four operators' nodes commit: heights {:?}", (0..4).map(height).collect::<Vec<_>>());

    // A fifth operator: a home made from the genesis and one bootstrap address.
    let own = format!("/ip4/{}/tcp/{P2P_PORT}", address(4));
    let rpc_listen = format!("{}:{RPC_PORT}", address(4));
    let metrics_listen = format!("{}:{METRICS_PORT}", address(4));
    let joiner = init(
        &homes[4],
        "op4",
        &own,
        &[
            "--rpc",
            &rpc_listen,
            "--metrics",
            &metrics_listen,
            "--genesis",
            text(&genesis_path),
            "--bootstrap",
            &bootstrap[0],
        ],
    );
    assert_eq!(joiner["genesis_hash"], genesis_hash.as_str());
    let peer_id = joiner["peer_id"].as_str().expect("peer id").to_string();
    let public_key = joiner["public_key"].as_str().expect("public key").to_string();

    // As an observer: the bootstrap peer's operator admits its peer id (a restart: the admitted
    // observers are read at start), while the other three keep committing.
    set_config_line(&homes[0], "observers", &toml_list(std::slice::from_ref(&peer_id)));
    nodes.stop(0);
    nodes.start(0, &namespaces);
    nodes.start(4, &namespaces);
    let target = height(1).expect("op1 answers") + 3;
    wait_for(&mut nodes, "the observer to sync past the network's height", || height(4).is_some_and(|h| h >= target));
    let status = query(&rpc(4), &["status"]).expect("status");
    assert_eq!(status["role"], "observer");
    assert_eq!(status["genesis_hash"], genesis_hash.as_str());
    let agreed = height(4).expect("height").min(height(1).expect("height"));
    let hash_at = |index: usize, at: u64| {
        query(&rpc(index), &["block", &at.to_string()]).map(|block| block["header"]["hash"].clone())
    };
    assert_eq!(hash_at(4, agreed), hash_at(1, agreed), "the observer's chain is the network's");
    println!("op4 follows as an observer: height {agreed}, peers {}", status["peers"]);

    // As a validator: the admin adds it; every validator then admits its peer id (the change
    // carries it), and from `validator_change_delay` blocks on it is in the set.
    let added = succeeds(&[
        "tx",
        "add-validator",
        "--name",
        "op4",
        "--public-key",
        &public_key,
        "--peer-id",
        &peer_id,
        "--key",
        text(&admin),
        "--rpc",
        &rpc(1),
        "--wait",
        "--json",
    ]);
    let receipt: serde_json::Value = serde_json::from_str(&added).expect("tx --json");
    assert_eq!(receipt["receipt"]["success"], true, "{receipt}");
    let added_at = receipt["height"].as_u64().expect("height");
    let role = |index: usize| query(&rpc(index), &["status"]).map(|status| status["role"].clone());
    wait_for(&mut nodes, "op4 to be a validator", || role(4).is_some_and(|role| role == "validator"));
    let peers = |index: usize| query(&rpc(index), &["status"]).and_then(|status| status["peers"].as_u64());
    // Only op0 dialled it as a bootstrap peer: it finds the others by their announced addresses.
    wait_for(&mut nodes, "op4 connected to all four validators", || peers(4).is_some_and(|p| p >= 4));
    let validators = query(&rpc(1), &["validators"]).expect("validators");
    let index_of_op4 = validators["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .position(|validator| validator["public_key"] == public_key.as_str())
        .expect("op4 in the set");
    assert_eq!(validators["quorum"], 4);
    println!("op4 added at height {added_at}: validator #{index_of_op4}, {} peers", peers(4).unwrap_or_default());

    // With op1 stopped, 4 of the 5 remain: the quorum (4) needs op4's signature on every block.
    nodes.stop(1);
    let from = height(0).expect("height").max(added_at) + 1;
    wait_for(&mut nodes, "blocks without op1", || height(0).is_some_and(|h| h >= from + 2));
    let block = query(&rpc(0), &["block", &(from + 1).to_string()]).expect("block");
    let signers: Vec<u64> = block["certificate"]["signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .map(|signature| signature["validator"].as_u64().expect("index"))
        .collect();
    assert!(signers.contains(&(index_of_op4 as u64)), "op4 did not sign block {}: {signers:?}", from + 1);
    println!("without op1, block {} is signed by validators {signers:?}", from + 1);
    for index in [2, 3, 4] {
        assert_eq!(hash_at(index, from + 1), hash_at(0, from + 1), "op{index} disagrees at {}", from + 1);
    }
    for index in [0, 2, 3, 4] {
        nodes.stop(index);
    }
}
