//! `GET /health` and `GET /ready` on a real node's RPC port, and `stele probe` against it.

use std::{
    net::SocketAddr,
    process::{Command, Output},
    time::{Duration, Instant},
};

use jsonrpsee::http_client::HttpClientBuilder;
use rpc::{
    api::SteleApiClient,
    probes::{Probe, ProbeStatus, ReadyReport, probe},
};

use super::{LIMIT, exchange, harness::Cluster, hex, run};

/// `/ready` of the node at `address`: the status and the report.
async fn ready(address: SocketAddr) -> (u16, ReadyReport) {
    let answer = probe(&format!("http://{address}"), Probe::Ready, Duration::from_secs(10)).await.expect("answered");
    let report = serde_json::from_str(&answer.body).unwrap_or_else(|error| panic!("{error}: {}", answer.body));
    (answer.status, report)
}

/// Polls `/ready` until `wanted` holds of it; panics with the last report after `patience`.
async fn ready_until(
    address: SocketAddr,
    what: &str,
    patience: Duration,
    wanted: impl Fn(u16, &ReadyReport) -> bool,
) -> ReadyReport {
    let deadline = Instant::now() + patience;
    loop {
        let (status, report) = ready(address).await;
        if wanted(status, &report) {
            return report;
        }
        assert!(Instant::now() < deadline, "timed out waiting for /ready: {what}; last: {status} {report:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `stele probe ARGS` (the real binary), off the runtime's workers.
async fn stele_probe(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_stele")).args(&args).output().expect("run stele probe")
    })
    .await
    .expect("task")
}

fn status_line(answer: &str) -> u16 {
    answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// One raw request with this method, path and `Host`; the whole answer.
async fn raw(address: SocketAddr, method: &'static str, path: &'static str, host: String) -> String {
    tokio::task::spawn_blocking(move || {
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        exchange(address, &head, b"")
    })
    .await
    .expect("task")
}

#[test]
fn ready_needs_a_quorum_of_validators_and_stele_probe_exits_accordingly() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(4);
        cluster.start(0).await;
        let address = cluster.node(0).rpc_address;
        let url = format!("http://{address}");

        // Live at once; not ready: alone, it cannot make a quorum of 3.
        let health = probe(&url, Probe::Health, Duration::from_secs(10)).await.expect("answered");
        assert_eq!((health.status, health.body.as_str()), (200, r#"{"status":"UP"}"#));
        let alone = ready_until(address, "only the peers check fails", Duration::from_secs(20), |status, report| {
            status == 503 && report.reasons.len() == 1
        })
        .await;
        assert_eq!(alone.status, ProbeStatus::Down);
        assert!(alone.reasons[0].starts_with("peers: connected to 0 of the 3 other validators"), "{:?}", alone.reasons);
        let peers = alone.checks.peers.as_ref().expect("peers check");
        assert_eq!(
            (peers.role.as_str(), peers.validators, peers.validators_connected, peers.needed),
            ("validator", 4, Some(0), 2)
        );
        assert!(alone.checks.synced.as_ref().expect("synced check").ok);
        assert!(alone.checks.last_block.as_ref().expect("last block check").ok, "a genesis a minute old is recent");

        // The same node through `stele probe`: live, not ready (the reasons printed).
        let output = stele_probe(&["probe", "--rpc", &url]).await;
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), r#"{"status":"UP"}"#);
        let output = stele_probe(&["probe", "--ready", "--rpc", &url, "--timeout", "5s"]).await;
        assert!(!output.status.success(), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains(r#""status":"DOWN""#), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("HTTP 503"), "{output:?}");

        // The access rules hold for probes: a foreign Host gets 403; other methods 405.
        let port = address.port();
        for path in ["/health", "/ready"] {
            let answer = raw(address, "GET", path, format!("evil.example:{port}")).await;
            assert_eq!(status_line(&answer), 403, "{answer}");
            let answer = raw(address, "POST", path, address.to_string()).await;
            assert_eq!(status_line(&answer), 405, "{answer}");
            assert!(answer.to_ascii_lowercase().contains("allow: get, head"), "{answer}");
        }

        // Two more validators: a quorum with itself, so ready.
        cluster.start(1).await;
        cluster.start(2).await;
        let up =
            ready_until(address, "ready with two validator peers", Duration::from_secs(60), |status, _| status == 200)
                .await;
        assert_eq!(up.status, ProbeStatus::Up);
        assert!(up.reasons.is_empty());
        assert!(up.checks.peers.as_ref().and_then(|peers| peers.validators_connected).is_some_and(|n| n >= 2));
        let output = stele_probe(&["probe", "--ready", "--rpc", &url]).await;
        assert!(output.status.success(), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains(r#""status":"UP""#), "{output:?}");

        // Back to alone: not ready again.
        cluster.stop(1).await;
        cluster.stop(2).await;
        ready_until(address, "not ready once the peers left", Duration::from_secs(30), |status, report| {
            status == 503 && report.reasons.iter().any(|reason| reason.starts_with("peers:"))
        })
        .await;

        // Nobody listening: `stele probe` fails.
        cluster.stop(0).await;
        let output = stele_probe(&["probe", "--rpc", &url, "--timeout", "2s"]).await;
        assert!(!output.status.success(), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"), "{output:?}");
        cluster.stop_all().await;
    });
}

#[test]
fn ready_fails_while_the_last_block_is_older_than_the_max_age() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(1);
        let mut config = cluster.config(0);
        // No empty blocks in these tests: the head ages until a transaction comes.
        config.rpc.ready_max_block_age = Duration::from_secs(6);
        cluster.start_with(0, config).await;
        cluster.wait_height(1).await;
        let address = cluster.node(0).rpc_address;

        let old = ready_until(address, "the head is too old", Duration::from_secs(30), |status, report| {
            status == 503 && report.reasons.iter().any(|reason| reason.starts_with("last_block:"))
        })
        .await;
        let last_block = old.checks.last_block.as_ref().expect("last block check");
        assert!(!last_block.ok && last_block.age_seconds > 6.0 && last_block.max_age_seconds == 6.0, "{last_block:?}");
        // The single validator needs no peer and is synced: the age is the only reason.
        assert_eq!(old.reasons.len(), 1, "{:?}", old.reasons);
        assert!(old.reasons[0].contains("over rpc.ready_max_block_age (6 s)"), "{:?}", old.reasons);

        // A new block: ready again.
        let client = HttpClientBuilder::default().build(format!("http://{address}")).expect("client");
        let committed = client.tx_submit_and_wait(hex(&cluster.transfer(1)), Some(30_000)).await.expect("committed");
        let height = committed.height.expect("height");
        let fresh =
            ready_until(address, "ready after a new block", Duration::from_secs(5), |status, _| status == 200).await;
        assert!(fresh.checks.last_block.as_ref().is_some_and(|check| check.ok && check.height >= height), "{fresh:?}");
        cluster.stop_all().await;
    });
}
