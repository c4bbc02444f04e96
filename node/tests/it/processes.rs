//! Four `stele start` processes on 127.0.0.1: blocks flow, SIGTERM stops a node cleanly,
//! kill -9 loses nothing, and the chain each node stored audits from genesis.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use ledger::{BlockReader, RocksStore, StoreOptions};

use super::stele;

/// Child processes killed when the test ends, however it ends.
struct Processes(Vec<Option<Child>>);

impl Processes {
    /// Panics with the node's log if one of the running nodes exited on its own.
    fn assert_alive(&mut self, homes: &[PathBuf]) {
        for (index, child) in self.0.iter_mut().enumerate() {
            if let Some(child) = child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(homes[index].join("node.log")).unwrap_or_default();
                panic!("node{index} exited with {status}; its log:\n{log}");
            }
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A base port whose next `count` ports are free now; never the same range twice in one run
/// (tests run in parallel threads of one process).
pub(super) fn free_port_range(count: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Below Linux's ephemeral range (32768..), where the clients' own sockets (and their
    // TIME_WAIT) would make long free ranges rare.
    let start = 20_000 + (std::process::id() % 60) as u16 * 100;
    for _ in 0..200 {
        let offset = NEXT.fetch_add(count, Ordering::SeqCst) % 6_000;
        let base = start + offset;
        if (base..base + count).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range");
}

/// `stele testnet generate --validators N --base-port BASE --dir DIR`, which must succeed.
pub(super) fn generate(dir: &Path, validators: usize, base: u16) {
    let generated = stele()
        .args(["testnet", "generate", "--validators", &validators.to_string(), "--base-port", &base.to_string()])
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run stele");
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
}

fn start(home: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(home.join("node.log")).expect("log file");
    stele()
        .args(["start", "--home"])
        .arg(home)
        .env("STELE__CONSENSUS__EMPTY_BLOCK_INTERVAL", "300ms")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn stele start")
}

/// `stele_height` from a node's metrics endpoint, if it answers.
pub(super) fn height(metrics_port: u16) -> Option<u64> {
    let mut stream = TcpStream::connect(("127.0.0.1", metrics_port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.lines().find_map(|line| line.strip_prefix("stele_height ")).and_then(|value| value.trim().parse().ok())
}

pub(super) fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn terminate(child: &mut Child) -> ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "the node did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_cleanly_and_kill_9_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(12);
    generate(dir.path(), 4, base);
    let homes: Vec<PathBuf> = (0..4).map(|index| dir.path().join(format!("node{index}"))).collect();
    let metrics_port = |index: usize| base + 3 * index as u16 + 2;
    let mut processes = Processes(homes.iter().map(|home| Some(start(home))).collect());
    let heights = |processes: &Processes| -> Vec<Option<u64>> {
        (0..4).map(|index| processes.0[index].as_ref().and_then(|_| height(metrics_port(index)))).collect()
    };
    wait_for("every node past height 3", || {
        processes.assert_alive(&homes);
        heights(&processes).iter().all(|h| h.is_some_and(|h| h >= 3))
    });

    // SIGTERM: a clean stop with status 0.
    let mut stopped = processes.0[1].take().expect("running");
    let status = terminate(&mut stopped);
    assert!(status.success(), "SIGTERM exit status {status}");
    // kill -9: the node dies wherever it was.
    let mut killed = processes.0[2].take().expect("running");
    killed.kill().expect("kill -9");
    killed.wait().expect("reap");
    // Two of four cannot make a quorum; restart both and the network goes on.
    let before = heights(&processes).into_iter().flatten().max().expect("a height");
    processes.0[1] = Some(start(&homes[1]));
    processes.0[2] = Some(start(&homes[2]));
    wait_for("every node past the height before the restarts", || {
        processes.assert_alive(&homes);
        heights(&processes).iter().all(|h| h.is_some_and(|h| h >= before + 3))
    });

    // Audited from outside, over JSON-RPC, while they run: each verifies and they agree.
    let genesis_path = dir.path().join("genesis.json");
    let mut audit = vec!["audit".to_string(), "--json".to_string(), "--genesis".to_string()];
    audit.push(genesis_path.to_str().expect("utf-8").to_string());
    for index in 0..4 {
        audit.extend(["--rpc".to_string(), format!("http://127.0.0.1:{}", base + 3 * index as u16 + 1)]);
    }
    let report: serde_json::Value =
        serde_json::from_str(&run_ok(&audit.iter().map(String::as_str).collect::<Vec<_>>())).expect("json");
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["sources"].as_array().expect("sources").len(), 4);

    for index in 0..4 {
        let mut child = processes.0[index].take().expect("running");
        let status = terminate(&mut child);
        assert!(status.success(), "node{index}: SIGTERM exit status {status}");
    }

    // Every node's chain audits from genesis, and they agree block by block.
    let document = genesis::GenesisDocument::load(&dir.path().join("genesis.json")).expect("genesis");
    let genesis = document.to_ledger().expect("genesis");
    let mut heads = Vec::new();
    for home in &homes {
        let options = StoreOptions { sync_writes: true, read_only: true };
        let store = RocksStore::open(&home.join("data"), &genesis, options).expect("open store");
        let report = ledger::audit::audit_chain(&store, &genesis, |_| {}).expect("the chain audits");
        heads.push((report.blocks, store));
        let audited = run_ok(&["audit", "--home", home.to_str().expect("utf-8")]);
        assert!(audited.starts_with("OK"), "{audited}");
        let log = std::fs::read_to_string(home.join("node.log")).expect("log");
        assert!(!log.contains("conflicting votes"), "{}: a validator signed conflicting votes", home.display());
    }
    let common = heads.iter().map(|(height, _)| *height).min().expect("heads");
    assert!(common >= before);
    for height in 1..=common {
        let hashes: Vec<_> =
            heads.iter().map(|(_, store)| store.block(height).expect("read").expect("block").block.hash()).collect();
        assert!(hashes.windows(2).all(|pair| pair[0] == pair[1]), "nodes disagree at height {height}");
    }
}

pub(super) fn run_ok(arguments: &[&str]) -> String {
    let output = stele().args(arguments).output().expect("run stele");
    assert!(output.status.success(), "stele {arguments:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A generated 1-validator network, its node started and past its first block: the folder, the
/// process and the node's JSON-RPC URL.
fn one_validator() -> (tempfile::TempDir, Processes, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(3);
    generate(dir.path(), 1, base);
    let home = dir.path().join("node0");
    let mut processes = Processes(vec![Some(start(&home))]);
    wait_for("the node to commit a block", || {
        processes.assert_alive(std::slice::from_ref(&home));
        height(base + 2).is_some_and(|h| h >= 1)
    });
    (dir, processes, format!("http://127.0.0.1:{}", base + 1))
}

#[test]
fn the_cli_submits_transactions_and_queries_a_running_node() {
    let (dir, mut processes, rpc) = one_validator();
    let faucet = dir.path().join("faucet.key.json");
    let faucet = faucet.to_str().expect("utf-8 path");
    let recipient = "0x00000000000000000000000000000000000000aa";

    let committed =
        run_ok(&["tx", "transfer", "--to", recipient, "--amount", "5", "--key", faucet, "--rpc", &rpc, "--wait"]);
    assert!(committed.contains("committed at height") && committed.contains("succeeded"), "{committed}");
    let account: serde_json::Value =
        serde_json::from_str(&run_ok(&["query", "account", recipient, "--rpc", &rpc, "--json"])).expect("json");
    assert_eq!(account["balance"], 5);
    let record = run_ok(&[
        "tx",
        "put-record",
        "--record",
        "color",
        "--value",
        "blue",
        "--key",
        faucet,
        "--rpc",
        &rpc,
        "--wait",
        "--json",
    ]);
    let record: serde_json::Value = serde_json::from_str(&record).expect("json");
    assert_eq!(record["status"], "committed");
    let hash = record["hash"].as_str().expect("hash");
    let tx = run_ok(&["query", "tx", hash, "--rpc", &rpc]);
    assert!(tx.contains("succeeded"), "{tx}");
    let value: serde_json::Value =
        serde_json::from_str(&run_ok(&["query", "record", "color", "--rpc", &rpc, "--json"])).expect("json");
    assert_eq!(value["value"], rpc::types::to_hex(b"blue"));
    let status = run_ok(&["query", "status", "--rpc", &rpc]);
    assert!(status.contains("role:        validator"), "{status}");
    let block: serde_json::Value =
        serde_json::from_str(&run_ok(&["query", "block", "1", "--rpc", &rpc, "--json"])).expect("json");
    assert_eq!(block["header"]["height"], 1);
    let proof: serde_json::Value =
        serde_json::from_str(&run_ok(&["query", "proof", recipient, "--rpc", &rpc, "--json"])).expect("json");
    assert!(proof["certificate"]["signatures"].is_array());
    run_ok(&["query", "validators", "--rpc", &rpc]);

    // A proof bundle checks out offline against the genesis file; a tampered one does not.
    let bundle = run_ok(&["query", "tx-proof", hash, "--rpc", &rpc, "--json"]);
    let bundle_path = dir.path().join("proof.json");
    std::fs::write(&bundle_path, &bundle).expect("write bundle");
    let genesis_path = dir.path().join("genesis.json");
    let verified = run_ok(&[
        "verify-proof",
        bundle_path.to_str().expect("utf-8"),
        "--genesis",
        genesis_path.to_str().expect("utf-8"),
    ]);
    assert!(verified.starts_with("valid:"), "{verified}");
    let mut tampered: serde_json::Value = serde_json::from_str(&bundle).expect("json");
    let proof = tampered["proof"].as_str().expect("proof").to_string();
    let flipped = format!("{}{}", &proof[..proof.len() - 1], if proof.ends_with('0') { '1' } else { '0' });
    tampered["proof"] = serde_json::Value::String(flipped);
    std::fs::write(&bundle_path, tampered.to_string()).expect("write bundle");
    let refused = stele()
        .args(["verify-proof"])
        .arg(&bundle_path)
        .arg("--genesis")
        .arg(&genesis_path)
        .output()
        .expect("run stele");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("INVALID"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Offline: a signed transaction as hex, no node contacted.
    let offline = run_ok(&[
        "tx",
        "transfer",
        "--to",
        recipient,
        "--amount",
        "1",
        "--key",
        faucet,
        "--offline",
        "--nonce",
        "7",
        "--chain-id",
        "stele-local",
    ]);
    assert!(offline.trim().starts_with("0x") && offline.trim().len() > 100, "{offline}");

    // Clear errors and non-zero exits.
    let refused = stele()
        .args(["tx", "transfer", "--to", recipient, "--amount", "1", "--key", faucet, "--rpc", &rpc, "--nonce", "0"])
        .output()
        .expect("run stele");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("too low"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let unreachable = stele().args(["query", "status", "--rpc", "http://127.0.0.1:1"]).output().expect("run stele");
    assert!(!unreachable.status.success());
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach"));

    let mut child = processes.0[0].take().expect("running");
    assert!(terminate(&mut child).success());
}

/// Flips the last byte of one stored value in a copy of a node's store.
pub(super) fn tamper(home: &Path, column: &str, key: &[u8]) {
    let data = home.join("data");
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &data, ledger::store::schema::ALL).expect("open copy");
    let family = db.cf_handle(column).expect("column family");
    let mut value = db.get_cf(family, key).expect("read").expect("value present");
    let last = value.len() - 1;
    value[last] ^= 0x01;
    db.put_cf(family, key, value).expect("write");
}

fn copy_home(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("data")).expect("dir");
    std::fs::copy(from.join("genesis.json"), to.join("genesis.json")).expect("copy genesis");
    for entry in std::fs::read_dir(from.join("data")).expect("data") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join("data").join(entry.file_name())).expect("copy");
    }
}

#[test]
fn audit_names_the_height_and_reason_of_any_tampered_value() {
    let (dir, mut processes, rpc) = one_validator();
    let home = dir.path().join("node0");
    let faucet = dir.path().join("faucet.key.json");
    let mut tx_height = 0;
    for amount in 1..=3 {
        let committed: serde_json::Value = serde_json::from_str(&run_ok(&[
            "tx",
            "transfer",
            "--to",
            "0x00000000000000000000000000000000000000bb",
            "--amount",
            &amount.to_string(),
            "--key",
            faucet.to_str().expect("utf-8"),
            "--rpc",
            &rpc,
            "--wait",
            "--json",
        ]))
        .expect("json");
        tx_height = committed["height"].as_u64().expect("height");
    }
    let mut child = processes.0[0].take().expect("running");
    assert!(terminate(&mut child).success());
    let clean = run_ok(&["audit", "--home", home.to_str().expect("utf-8"), "--json"]);
    assert!(clean.contains("\"valid\":true"), "{clean}");

    let at = tx_height.to_be_bytes();
    let faucet_address = ledger::Address::of(&genesis::load_key(&faucet).expect("faucet").public_key());
    let account_key = ledger::state::keys::account(&faucet_address);
    use ledger::store::schema::{BODIES, CERTIFICATES, HEADERS, RECEIPTS, STATE};
    for (column, key) in
        [(BODIES, &at[..]), (CERTIFICATES, &at[..]), (RECEIPTS, &at[..]), (HEADERS, &at[..]), (STATE, &account_key[..])]
    {
        let copy = dir.path().join(format!("tampered-{column}"));
        copy_home(&home, &copy);
        tamper(&copy, column, key);
        let output = stele().args(["audit", "--json", "--home"]).arg(&copy).output().expect("run stele");
        assert!(!output.status.success(), "tampered {column} passed the audit");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
        let failure = &report["sources"][0]["failure"];
        let failed_at = failure["height"].as_u64().expect("a failure height");
        assert!(failed_at >= tx_height, "{column}: failure at {failed_at}, tampered {tx_height}: {report}");
        assert!(!failure["reason"].as_str().expect("reason").is_empty());
    }
}

/// `stele testnet up` as a child: stopped with SIGTERM (so it stops its nodes) however the test
/// ends.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `stele testnet up` and returns once it printed its table (or panics with its output),
/// with the lines it prints later.
fn testnet_up(dir: &Path, base: u16) -> (Up, String, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = stele()
        .args(["testnet", "up", "--validators", "4", "--base-port", &base.to_string(), "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn testnet up");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining after the test stops listening, so the child never writes to a closed pipe.
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let up = Up(child);
    let mut output = String::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !output.contains("Ctrl-C stops every node") {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(remaining) {
            Ok(line) => {
                output.push_str(&line);
                output.push('\n');
            }
            Err(_) => panic!("testnet up printed no table in time:\n{output}"),
        }
    }
    (up, output, received)
}

/// Reads `up`'s later lines until one contains `wanted` (or panics with what it printed).
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, wanted: &str, printed: &mut String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !printed.contains(wanted) {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
            }
            Err(_) => panic!("testnet up never printed {wanted:?}:\n{printed}"),
        }
    }
}

fn stop_up(mut up: Up) {
    let status = Command::new("kill").args(["-TERM", &up.0.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = up.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "testnet up did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "testnet up exit status {status}");
}

#[test]
fn testnet_up_runs_a_network_that_commits_audits_stops_and_resumes() {
    let _network = super::one_network_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(12);
    let rpc = |index: u16| format!("http://127.0.0.1:{}", base + 3 * index + 1);
    let (up, table, _) = testnet_up(dir.path(), base);
    assert!(table.contains("generated a 4-validator network"), "{table}");
    for index in 0..4u16 {
        assert!(table.contains(&rpc(index)), "{table}");
    }
    let faucet = dir.path().join("faucet.key.json");
    let committed: serde_json::Value = serde_json::from_str(&run_ok(&[
        "tx",
        "transfer",
        "--to",
        "0x00000000000000000000000000000000000000cc",
        "--amount",
        "3",
        "--key",
        faucet.to_str().expect("utf-8"),
        "--rpc",
        &rpc(1),
        "--wait",
        "--json",
    ]))
    .expect("json");
    let hash = committed["hash"].as_str().expect("hash").to_string();
    let committed_at = committed["height"].as_u64().expect("height");
    // Seen committed on every node.
    for index in 0..4u16 {
        wait_for("the transaction on every node", || {
            let output = stele().args(["query", "tx", &hash, "--json", "--rpc", &rpc(index)]).output().expect("run");
            String::from_utf8_lossy(&output.stdout).contains("\"committed\"")
        });
    }
    // A small bench run: every admitted transfer is seen committed.
    let urls: Vec<String> = (0..4).map(rpc).collect();
    let mut bench =
        vec!["bench", "--json", "--txs", "2000", "--accounts", "20", "--key", faucet.to_str().expect("utf-8")];
    for url in &urls {
        bench.extend(["--rpc", url.as_str()]);
    }
    let report: serde_json::Value = serde_json::from_str(&run_ok(&bench)).expect("json");
    assert_eq!(report["committed"], 2000, "{report}");
    assert_eq!(report["submitted"], 2000, "{report}");
    assert!(report["tx_per_second"].as_f64().expect("rate") > 0.0);
    assert!(report["latency_ms"]["p99"].as_f64().expect("p99") >= report["latency_ms"]["p50"].as_f64().expect("p50"));

    let genesis = dir.path().join("genesis.json");
    let mut audit = vec!["audit", "--json", "--genesis", genesis.to_str().expect("utf-8")];
    for url in &urls {
        audit.extend(["--rpc", url.as_str()]);
    }
    let report: serde_json::Value = serde_json::from_str(&run_ok(&audit)).expect("json");
    assert_eq!(report["valid"], true, "{report}");
    stop_up(up);
    // Every node is gone: nobody answers on the metrics ports.
    for index in 0..4u16 {
        assert!(height(base + 3 * index + 2).is_none(), "node{index} still runs");
    }

    // Again: the same network resumes with its data.
    let (mut up, table, lines) = testnet_up(dir.path(), base);
    assert!(table.contains("resuming the network"), "{table}");
    let account: serde_json::Value = serde_json::from_str(&run_ok(&[
        "query",
        "account",
        "0x00000000000000000000000000000000000000cc",
        "--json",
        "--rpc",
        &rpc(2),
    ]))
    .expect("json");
    assert_eq!(account["balance"], 3);
    assert!(account["height"].as_u64().expect("height") >= committed_at);

    // kill -9 of one validator: `up` says so, the other three keep committing, and it restarts
    // the dead one, which catches up; `up` itself keeps running.
    let home = dir.path().join("node2");
    let pid = node_pid(&home).expect("node2's process");
    assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill").success());
    let mut printed = String::new();
    wait_for_line(&lines, "node2 exited", &mut printed);
    let during: serde_json::Value = serde_json::from_str(&run_ok(&[
        "tx",
        "transfer",
        "--to",
        "0x00000000000000000000000000000000000000cc",
        "--amount",
        "4",
        "--key",
        faucet.to_str().expect("utf-8"),
        "--rpc",
        &rpc(0),
        "--wait",
        "--json",
    ]))
    .expect("json");
    let during_height = during["height"].as_u64().expect("height");
    wait_for_line(&lines, "node2 restarted", &mut printed);
    assert!(printed.contains("restarting node2 in"), "{printed}");
    assert!(matches!(up.0.try_wait(), Ok(None)), "testnet up stopped with node2:\n{printed}");
    wait_for("node2 to catch up after its restart", || height(base + 3 * 2 + 2).is_some_and(|h| h >= during_height));
    assert_ne!(node_pid(&home), Some(pid), "node2 was not started again");
    stop_up(up);
}

/// The pid of the `stele start --home <home>` process, read from /proc.
fn node_pid(home: &Path) -> Option<u32> {
    let wanted = home.to_str()?.to_string();
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let arguments: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
        let is_node = arguments.contains(&b"start".as_slice()) && arguments.contains(&wanted.as_bytes());
        is_node.then_some(pid)
    })
}
