//! A flooded node stays up, bounded, and keeps committing: one validator with small limits (so
//! the flood is small and short) gets connections over `rpc.max_connections`, bodies over
//! `rpc.max_request_bytes` (declared and chunked), batches over `rpc.max_batch`, malformed JSON,
//! idle and slow connections, WebSockets over the subscription limit and a mempool flood (fresh
//! transactions as fast as the node answers, many times `mempool.max_txs`), while a trickle of valid transfers is submitted to it. This is
//! `stele bench --flood` run small; its figures are in docs/benchmarks.md, none is asserted here.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    processes::{free_port_range, height, wait_for},
    stele,
};

/// The node, killed when the test ends however it ends.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const MAX_TXS: u64 = 200;
const MAX_REQUEST_BYTES: usize = 64 * 1024;
const MAX_CONNECTIONS: usize = 32;

fn start(home: &Path) -> Node {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(home.join("node.log")).expect("log file");
    let child = stele()
        .args(["start", "--home"])
        .arg(home)
        .env("STELE__CONSENSUS__EMPTY_BLOCK_INTERVAL", "300ms")
        .env("STELE__RPC__MAX_CONNECTIONS", MAX_CONNECTIONS.to_string())
        .env("STELE__RPC__MAX_REQUEST_BYTES", MAX_REQUEST_BYTES.to_string())
        .env("STELE__RPC__IDLE_TIMEOUT", "2s")
        .env("STELE__RPC__REQUEST_BODY_TIMEOUT", "2s")
        .env("STELE__MEMPOOL__MAX_TXS", MAX_TXS.to_string())
        .env("STELE__MEMPOOL__MAX_QUEUED", "50")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn stele start");
    Node(child)
}

#[test]
fn a_flooded_node_stays_up_with_bounded_memory_and_keeps_committing() {
    let _network = super::one_network_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(3);
    super::processes::generate(dir.path(), 1, base);
    let home = dir.path().join("node0");
    let mut node = start(&home);
    wait_for("the node to commit a block", || {
        assert!(matches!(node.0.try_wait(), Ok(None)), "the node exited: {}", log(&home));
        height(base + 2).is_some_and(|h| h >= 1)
    });
    let rpc = format!("http://127.0.0.1:{}", base + 1);
    let funder = genesis::load_key(&dir.path().join("faucet.key.json")).expect("faucet key");
    let spec = testnet::bench::FloodBenchSpec {
        rpc: vec![rpc.clone()],
        funder: funder.clone(),
        pid: Some(node.0.id()),
        quiet: Duration::from_secs(3),
        settle: Duration::from_secs(3),
        trickle_interval: Duration::from_millis(50),
        flood: testnet::flood::FloodSpec {
            rpc,
            duration: Duration::from_secs(15),
            // With the trickle, the follower and the mempool flood: well over 32 at once.
            http_connections: 24,
            idle_connections: 12,
            ws_connections: 4,
            max_request_bytes: MAX_REQUEST_BYTES,
            max_batch: 100,
            max_subscriptions: 16,
            mempool: Some(testnet::flood::MempoolFlood { funder, accounts: 10, batch: 50, in_flight: 2 }),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let started = Instant::now();
    let report = runtime.block_on(testnet::bench::run_flood(&spec)).expect("the flood bench runs");
    let answers = &report.answers;
    let shown = serde_json::to_string_pretty(&report).unwrap_or_default();
    eprintln!("flood report after {:.0} s:\n{shown}", started.elapsed().as_secs_f64());

    // The node is up, answers, and its memory stayed bounded.
    assert!(matches!(node.0.try_wait(), Ok(None)), "the node died under the flood: {}", log(&home));
    assert!(report.alive_after, "no chain_status after the flood: {shown}");
    let rss = report.rss_kib.as_ref().expect("the node's RSS was sampled");
    assert!(rss.during_max > 0 && rss.during_max < 1024 * 1024, "RSS {} KiB during the flood", rss.during_max);

    // Valid transfers kept committing, during the flood and after it.
    assert!(report.flood.trickle_committed >= 1, "no trickle transfer committed under the flood: {shown}");
    assert!(report.after.trickle_committed >= 1, "no trickle transfer committed after the flood: {shown}");
    assert!(report.flood.blocks >= 1, "{shown}");

    // Each abuse got its documented answer, and none was served.
    let kinds = |kind: &str| answers.answers.get(kind).map(|counts| counts.keys().cloned().collect::<Vec<_>>());
    let never = |kind: &str, prefixes: &[&str]| {
        let seen = kinds(kind).unwrap_or_default();
        let served: Vec<&String> =
            seen.iter().filter(|answer| prefixes.iter().any(|p| answer.starts_with(p))).collect();
        assert!(served.is_empty(), "{kind} answered {served:?}: {shown}");
    };
    assert!(answers.count("oversized", "413 -32007") >= 1, "{shown}");
    never("oversized", &["200", "500"]);
    assert!(answers.count("oversized_chunked", "413 -32007") >= 1, "{shown}");
    never("oversized_chunked", &["200", "500"]);
    assert!(answers.count("long_batch", "200 -32010") >= 1, "{shown}");
    never("long_batch", &["200 array", "200 result"]);
    assert!(answers.count("malformed", "200 -32700") + answers.count("malformed", "400 -32700") >= 1, "{shown}");
    never("malformed", &["200 result", "500"]);
    assert!(answers.count("not_json", "400 -32700") >= 1, "{shown}");
    assert!(answers.count("slow_body", "408") >= 1, "{shown}");
    assert!(answers.count("idle", "closed idle") >= 1, "idle connections are not closed: {shown}");
    let refused_connections: u64 = answers.answers.values().map(|counts| counts.get("429").copied().unwrap_or(0)).sum();
    assert!(refused_connections >= 1, "no connection over rpc.max_connections was refused: {shown}");
    assert!(answers.count("ws_connect", "open") >= 1, "{shown}");
    assert!(answers.count("ws_subscribe", "-32006") >= 1, "no subscription over the limit was refused: {shown}");
    assert!(answers.mempool_admitted >= 1, "{shown}");
    assert!(answers.mempool_refused.get("1008").is_some_and(|count| *count >= 1), "no mempool full: {shown}");

    // And it still stops cleanly.
    let status = Command::new("kill").args(["-TERM", &node.0.id().to_string()]).status().expect("kill");
    assert!(status.success());
    wait_for("the node to stop after SIGTERM", || matches!(node.0.try_wait(), Ok(Some(_))));
    let exit = node.0.wait().expect("wait");
    assert!(exit.success(), "exit status {exit} after SIGTERM: {}", log(&home));
}

fn log(home: &Path) -> String {
    std::fs::read_to_string(home.join("node.log")).unwrap_or_default()
}
