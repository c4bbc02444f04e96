//! Crash points: a validator of a 4-validator network aborts (SIGABRT, like a power cut) at each
//! of the store's failpoints in turn (`ledger::store::FAILPOINTS`, armed through `FAILPOINTS` in
//! its environment), is restarted without it, and must lose nothing it had committed, never
//! sign twice, and rejoin with the same chain as the others.

use std::{
    io::{Read, Write},
    net::TcpStream,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use ledger::{BlockReader, RocksStore, StoreOptions, store::FAILPOINTS};
use serde_json::{Value, json};

use super::processes::{free_port_range, height, run_ok, wait_for};

/// One JSON-RPC call over HTTP: the whole response object, or `None` if nothing answers.
pub(super) fn call(port: u16, method: &str, params: Value) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// SIGABRT, what `std::process::abort` dies of.
const SIGABRT: i32 = 6;

/// A generated network whose `stele start` processes are killed however the test ends.
pub(super) struct Network {
    /// The network's folder (removed on drop, after the processes).
    pub(super) dir: tempfile::TempDir,
    /// The base port of `stele testnet generate`.
    pub(super) base: u16,
    children: Vec<Option<Child>>,
}

impl Network {
    /// `stele testnet generate` for `validators` validators on free ports; nothing started.
    pub(super) fn generate(validators: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = free_port_range(3 * validators as u16);
        super::processes::generate(dir.path(), validators, base);
        Network { dir, base, children: (0..validators).map(|_| None).collect() }
    }

    pub(super) fn home(&self, index: usize) -> PathBuf {
        self.dir.path().join(format!("node{index}"))
    }

    pub(super) fn rpc_url(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port(index))
    }

    pub(super) fn rpc_port(&self, index: usize) -> u16 {
        self.base + 3 * index as u16 + 1
    }

    /// The node's height from its metrics, if it runs and answers.
    pub(super) fn height(&self, index: usize) -> Option<u64> {
        self.children[index].as_ref().and_then(|_| height(self.base + 3 * index as u16 + 2))
    }

    /// Starts node `index`, with `failpoints` as its FAILPOINTS (none if `None`). Its stderr
    /// goes to `node.log` after a line naming what was armed, so each run's output can be told
    /// apart. Core dumps are off: an abort must leave no core file behind.
    pub(super) fn start(&mut self, index: usize, failpoints: Option<&str>) {
        assert!(self.children[index].is_none(), "node{index} already runs");
        let home = self.home(index);
        let mut log =
            std::fs::OpenOptions::new().create(true).append(true).open(home.join("node.log")).expect("log file");
        writeln!(log, "{}", start_marker(failpoints)).expect("write log");
        let mut command = Command::new("sh");
        command
            .args(["-c", "ulimit -c 0; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_stele"), "start", "--home"])
            .arg(&home)
            .env("STELE__CONSENSUS__EMPTY_BLOCK_INTERVAL", "300ms")
            .env("RUST_LOG", "info")
            .env_remove("FAILPOINTS")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(failpoints) = failpoints {
            command.env("FAILPOINTS", failpoints);
        }
        self.children[index] = Some(command.spawn().expect("spawn stele start"));
    }

    /// The log of node `index` since its last start.
    pub(super) fn last_log(&self, index: usize) -> String {
        let log = std::fs::read_to_string(self.home(index).join("node.log")).unwrap_or_default();
        let from = log.rfind("=== stele start").unwrap_or(0);
        log[from..].to_string()
    }

    /// Whether node `index` exited; its status, reaped, if so.
    pub(super) fn exited(&mut self, index: usize) -> Option<ExitStatus> {
        let child = self.children[index].as_mut()?;
        let status = child.try_wait().expect("wait")?;
        self.children[index] = None;
        Some(status)
    }

    /// Panics with the node's log if a node other than `except` exited on its own.
    pub(super) fn assert_alive(&mut self, except: Option<usize>) {
        for index in (0..self.children.len()).filter(|index| Some(*index) != except) {
            if let Some(status) = self.exited(index) {
                panic!("node{index} exited with {status}; its log:\n{}", self.last_log(index));
            }
        }
    }

    /// SIGTERM to node `index`; its exit status.
    pub(super) fn stop(&mut self, index: usize) -> ExitStatus {
        let child = self.children[index].as_mut().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.exited(index) {
                return status;
            }
            assert!(Instant::now() < deadline, "node{index} did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_marker(failpoints: Option<&str>) -> String {
    format!("=== stele start, FAILPOINTS={}", failpoints.unwrap_or("(none)"))
}

/// How to arm each point so it fires soon but not at once: the commit points after a few blocks
/// of this run, the safety-state points after a few votes, the initialisation points at once
/// (they run only on a first start).
fn arming(name: &str) -> String {
    if name.contains("initialise") {
        format!("{name}=return")
    } else if name.contains("save_safety_state") {
        format!("{name}=12*off->return")
    } else {
        format!("{name}=3*off->return")
    }
}

/// The head of a stopped node's store (0 if it was never initialised).
fn stored_head(home: &Path, genesis: &ledger::Genesis) -> Result<u64, ledger::StoreError> {
    let options = StoreOptions { sync_writes: false, read_only: true };
    RocksStore::open(&home.join("data"), genesis, options)?.head().map(|head| head.height)
}

#[test]
fn a_validator_crashed_at_every_store_failpoint_loses_nothing_and_rejoins() {
    let _network = super::one_network_at_a_time();
    let mut network = Network::generate(4);
    let document = genesis::GenesisDocument::load(&network.dir.path().join("genesis.json")).expect("genesis");
    let genesis = document.to_ledger().expect("genesis");
    let faucet = network.dir.path().join("faucet.key.json");
    let faucet = faucet.to_str().expect("utf-8").to_string();
    // Node 0 crashes; nodes 1-3 are a quorum on their own, and node 1 takes the transfers.
    for index in 1..4 {
        network.start(index, None);
    }
    wait_for("nodes 1-3 to commit a block", || {
        network.assert_alive(Some(0));
        (1..4).all(|index| network.height(index).is_some_and(|height| height >= 1))
    });
    // (transaction hash, height) of every transfer acknowledged as committed.
    let mut acknowledged: Vec<(String, u64)> = Vec::new();
    let mut transfer = |network: &Network| {
        let committed: serde_json::Value = serde_json::from_str(&run_ok(&[
            "tx",
            "transfer",
            "--to",
            "0x00000000000000000000000000000000000000dd",
            "--amount",
            "1",
            "--key",
            &faucet,
            "--rpc",
            &network.rpc_url(1),
            "--wait",
            "--json",
        ]))
        .expect("json");
        let hash = committed["hash"].as_str().expect("hash").to_string();
        acknowledged.push((hash, committed["height"].as_u64().expect("height")));
    };

    assert!(FAILPOINTS.len() >= 6, "{FAILPOINTS:?}");
    // The initialisation points fire only on an empty store, so they come first, back to back.
    let is_initialise = |name: &str| name.contains("initialise");
    let mut rest = FAILPOINTS.iter().skip_while(|name| is_initialise(name));
    assert!(rest.all(|name| !is_initialise(name)), "{FAILPOINTS:?}");
    for (position, name) in FAILPOINTS.iter().enumerate() {
        let armed = arming(name);
        if network.height(0).is_some() {
            // Caught up after the previous crash: stopped cleanly to be started armed.
            assert!(network.stop(0).success(), "node0: SIGTERM before {armed}");
        }
        network.start(0, Some(&armed));
        // Load the network until node 0 dies; note the highest height it was seen at.
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut seen = 0;
        let status = loop {
            network.assert_alive(Some(0));
            if let Some(height) = network.height(0) {
                seen = seen.max(height);
            }
            if let Some(status) = network.exited(0) {
                break status;
            }
            assert!(Instant::now() < deadline, "{armed}: node0 never reached its crash point");
            transfer(&network);
        };
        let log = network.last_log(0);
        assert_eq!(status.signal(), Some(SIGABRT), "{armed}: node0 exited with {status}, not SIGABRT:\n{log}");
        assert!(log.contains(&format!("failpoint {name}: aborting")), "{armed}: no crash at {name}:\n{log}");

        // Nothing it had committed is lost: its store holds at least what it had reported.
        let on_disk = match stored_head(&network.home(0), &genesis) {
            Ok(head) => head,
            // Killed before the genesis was ever written: an empty store, as expected there.
            Err(error) if *name == ledger::store::failpoint::INITIALISE_BEFORE_WRITE => {
                assert!(error.to_string().contains("empty"), "{error}");
                0
            }
            Err(error) => panic!("{armed}: node0's store does not open after the crash: {error}"),
        };
        assert!(on_disk >= seen, "{armed}: node0 reported height {seen} but its store holds {on_disk}");
        eprintln!("{armed}: node0 aborted there, last seen at height {seen}, its store holds {on_disk}");
        if FAILPOINTS.get(position + 1).is_some_and(|next| is_initialise(next)) {
            continue;
        }

        // Restarted without failpoints it catches up past where the network was.
        let network_height = (1..4).filter_map(|index| network.height(index)).max().expect("a height");
        network.start(0, None);
        wait_for(&format!("node0 to catch up after {armed}"), || {
            network.assert_alive(None);
            network.height(0).is_some_and(|height| height > network_height.max(on_disk))
        });
        transfer(&network);
    }

    // Every node past the last acknowledged transfer, then stopped cleanly.
    let last = acknowledged.iter().map(|(_, height)| *height).max().expect("transfers");
    wait_for("every node past the last transfer", || {
        network.assert_alive(None);
        (0..4).all(|index| network.height(index).is_some_and(|height| height > last))
    });
    // No node holds evidence of conflicting votes (from node 0 or anyone).
    for index in 0..4 {
        let evidence = call(network.rpc_port(index), "chain_getEvidence", json!([])).expect("an answer");
        assert_eq!(evidence["result"], json!([]), "node{index}: {evidence}");
    }
    for index in 0..4 {
        let status = network.stop(index);
        assert!(status.success(), "node{index}: SIGTERM exit status {status}");
    }

    // The same chain everywhere, audited, with every acknowledged transfer exactly once where
    // it was acknowledged, and no validator seen signing conflicting votes.
    let mut stores = Vec::new();
    for index in 0..4 {
        let home = network.home(index);
        let audited = run_ok(&["audit", "--home", home.to_str().expect("utf-8")]);
        assert!(audited.starts_with("OK"), "node{index}: {audited}");
        let log = std::fs::read_to_string(home.join("node.log")).expect("log");
        assert!(!log.contains("conflicting votes"), "node{index} saw a validator sign conflicting votes:\n{log}");
        let options = StoreOptions { sync_writes: false, read_only: true };
        stores.push(RocksStore::open(&home.join("data"), &genesis, options).expect("open store"));
    }
    let common = stores.iter().map(|store| store.head().expect("head").height).min().expect("stores");
    assert!(common > last);
    let mut counts = std::collections::HashMap::<String, Vec<u64>>::new();
    for height in 1..=common {
        let blocks: Vec<_> =
            stores.iter().map(|store| store.block(height).expect("read").expect("block").block).collect();
        assert!(blocks.windows(2).all(|pair| pair[0].hash() == pair[1].hash()), "nodes disagree at height {height}");
        for transaction in &blocks[0].transactions {
            counts.entry(transaction.hash().to_string()).or_default().push(height);
        }
    }
    for (hash, height) in &acknowledged {
        assert_eq!(counts.get(hash), Some(&vec![*height]), "transfer {hash} acknowledged at {height}");
    }
}
