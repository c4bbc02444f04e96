use std::sync::atomic::Ordering;

use super::*;
use crate::test_support::{MAX_AGE, TestBackend, body_of, exchange, header, host, limits};

const NOW_MS: u64 = 1_000_000_000;

fn facts() -> Readiness {
    Readiness {
        height: 10,
        block_time_ms: NOW_MS - 5_000,
        sync: SyncState::Synced,
        validator: true,
        validators: 4,
        validators_connected: Some(3),
        damaged: Vec::new(),
        diverged: Vec::new(),
    }
}

fn judged(facts: &Readiness) -> ReadyReport {
    judge(Ok(facts), MAX_AGE, NOW_MS)
}

#[test]
fn a_validator_needs_a_quorum_with_itself_and_an_observer_f_plus_one() {
    // (validators, needed by a validator, needed by an observer)
    for (n, validator, observer) in [(1, 0, 1), (2, 1, 1), (3, 2, 1), (4, 2, 2), (5, 3, 2), (7, 4, 3), (10, 6, 4)] {
        assert_eq!(validators_needed(n, true), validator, "validator of {n}");
        assert_eq!(validators_needed(n, false), observer, "observer of {n}");
        // With itself, a validator reaches the quorum of consensus::ValidatorSet (2n/3 + 1).
        assert_eq!(validators_needed(n, true) + 1, 2 * n / 3 + 1);
    }
}

#[test]
fn all_checks_passing_is_up_with_no_reasons() {
    let report = judged(&facts());
    assert_eq!(report.status, ProbeStatus::Up);
    assert!(report.reasons.is_empty());
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "status": "UP",
            "checks": {
                "synced": {"ok": true, "syncing": false},
                "peers": {"ok": true, "role": "validator", "validators": 4, "validators_connected": 3, "needed": 2},
                "last_block": {"ok": true, "height": 10, "age_seconds": 5.0, "max_age_seconds": 120.0},
                "storage": {"ok": true, "damaged": []},
                "agreement": {"ok": true, "diverged": []},
            },
            "reasons": [],
        })
    );
}

#[test]
fn damage_the_scrub_found_is_down_naming_the_height_and_column() {
    let damaged = vec![
        "height 12, column bodies: the body does not match the header's tx_root".to_string(),
        "height 14, column receipts: does not decode".to_string(),
    ];
    let report = judged(&Readiness { damaged: damaged.clone(), ..facts() });
    assert_eq!(report.status, ProbeStatus::Down);
    assert_eq!(
        report.reasons,
        vec![format!("storage: the scrub found a damaged stored value: {} (and 1 more)", damaged[0])]
    );
    assert_eq!(report.checks.storage, Some(StorageCheck { ok: false, damaged }));
}

#[test]
fn a_divergence_with_a_peer_is_down_naming_the_height() {
    let diverged = vec!["peer 12D3 holds another certified block at height 7: 0xab (ours 0xcd)".to_string()];
    let report = judged(&Readiness { diverged: diverged.clone(), ..facts() });
    assert_eq!(report.status, ProbeStatus::Down);
    assert_eq!(report.reasons, vec![format!("agreement: more than f validators signed two blocks: {}", diverged[0])]);
    assert_eq!(report.checks.agreement, Some(AgreementCheck { ok: false, diverged }));
}

#[test]
fn each_failed_check_is_down_with_its_reason() {
    let behind = judged(&Readiness { sync: SyncState::Behind, ..facts() });
    assert_eq!(behind.status, ProbeStatus::Down);
    assert_eq!(behind.checks.synced, Some(SyncedCheck { ok: false, syncing: Some(true) }));
    assert!(behind.reasons.len() == 1 && behind.reasons[0].starts_with("synced:"), "{:?}", behind.reasons);

    let unknown = judged(&Readiness { sync: SyncState::Unknown("just started".into()), ..facts() });
    assert_eq!(unknown.checks.synced, Some(SyncedCheck { ok: false, syncing: None }));
    assert_eq!(unknown.reasons, ["synced: not known: just started"]);

    let alone = judged(&Readiness { validators_connected: Some(1), ..facts() });
    assert_eq!(alone.status, ProbeStatus::Down);
    assert!(!alone.checks.peers.as_ref().expect("peers").ok);
    assert_eq!(
        alone.reasons,
        [
            "peers: connected to 1 of the 3 other validators; a validator needs 2 of them to make a quorum of 3 with itself"
        ]
    );
    let observer = judged(&Readiness { validator: false, validators_connected: Some(1), ..facts() });
    assert_eq!(observer.checks.peers.as_ref().map(|peers| (peers.role.as_str(), peers.needed)), Some(("observer", 2)));
    assert!(observer.reasons[0].contains("an observer needs 2"), "{:?}", observer.reasons);
    let no_list = judged(&Readiness { validators_connected: None, ..facts() });
    assert!(no_list.reasons[0].starts_with("peers: not known"), "{:?}", no_list.reasons);

    let old = judged(&Readiness { block_time_ms: NOW_MS - 121_000, ..facts() });
    assert_eq!(old.status, ProbeStatus::Down);
    assert_eq!(old.reasons, ["last_block: block 10 is 121.0 s old, over rpc.ready_max_block_age (120 s)"]);

    let everything =
        judged(&Readiness { sync: SyncState::Behind, validators_connected: Some(0), block_time_ms: 0, ..facts() });
    assert_eq!(everything.reasons.len(), 3, "{:?}", everything.reasons);
}

#[test]
fn height_zero_is_ready_only_while_the_genesis_is_younger_than_the_max_age() {
    let fresh = judged(&Readiness { height: 0, block_time_ms: NOW_MS - 60_000, ..facts() });
    assert_eq!(fresh.status, ProbeStatus::Up);
    let stale = judged(&Readiness { height: 0, block_time_ms: NOW_MS - 600_000, ..facts() });
    assert_eq!(
        stale.reasons,
        ["last_block: no block yet, and the genesis time is 600.0 s ago, over rpc.ready_max_block_age (120 s)"]
    );
    // A genesis (or a block) stamped ahead of this node's clock is not old.
    let ahead = judged(&Readiness { height: 0, block_time_ms: NOW_MS + 30_000, ..facts() });
    assert_eq!(ahead.checks.last_block.as_ref().map(|check| (check.ok, check.age_seconds)), Some((true, 0.0)));
}

#[test]
fn facts_that_could_not_be_read_are_down_with_no_checks() {
    let report = judge(Err("the node cannot read its store: boom"), MAX_AGE, NOW_MS);
    assert_eq!(
        serde_json::to_value(&report).expect("json"),
        serde_json::json!({"status": "DOWN", "checks": {}, "reasons": ["the node cannot read its store: boom"]})
    );
}

fn now() -> u64 {
    super::now_ms()
}

fn fake(facts: Readiness) -> Arc<TestBackend> {
    TestBackend::new("probes", facts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_answer_on_the_rpc_port_before_json_rpc() {
    let backend = fake(Readiness { block_time_ms: now(), ..facts() });
    let server = crate::start("127.0.0.1:0".parse().expect("address"), limits(), backend.clone()).await.expect("start");
    let address = server.address();

    let (status, answer) = exchange(address, "GET", "/health", &host(address), "").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(body_of(&answer), r#"{"status":"UP"}"#);
    assert_eq!(header(&answer, "content-type"), Some("application/json"));
    assert_eq!(header(&answer, "cache-control"), Some("no-store"));

    let (status, answer) = exchange(address, "GET", "/ready?verbose", &host(address), "").await;
    assert_eq!(status, 200, "{answer}");
    let report: ReadyReport = serde_json::from_str(body_of(&answer)).expect("a report");
    assert_eq!(report.status, ProbeStatus::Up);
    assert_eq!(header(&answer, "cache-control"), Some("no-store"));

    // HEAD: the same status and headers, no body.
    for path in ["/health", "/ready"] {
        let (status, answer) = exchange(address, "HEAD", path, &host(address), "").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(body_of(&answer), "", "HEAD {path}");
        assert_eq!(header(&answer, "content-type"), Some("application/json"));
    }

    // Other methods: 405 naming the allowed ones, even with a JSON-RPC body.
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"chain_status","params":[]}"#;
    for (method, path) in [("POST", "/health"), ("POST", "/ready"), ("PUT", "/health"), ("DELETE", "/ready")] {
        let headers = format!("{}Content-Type: application/json\r\n", host(address));
        let (status, answer) = exchange(address, method, path, &headers, call).await;
        assert_eq!(status, 405, "{method} {path}: {answer}");
        assert_eq!(header(&answer, "allow"), Some("GET, HEAD"), "{answer}");
        assert!(!answer.contains("jsonrpc"), "{answer}");
    }

    // The access rules hold: a foreign Host (DNS rebinding) or Origin gets 403; an allowed name
    // passes; no token is needed.
    let port = address.port();
    for path in ["/health", "/ready"] {
        assert_eq!(exchange(address, "GET", path, &format!("Host: evil.example:{port}\r\n"), "").await.0, 403);
        let foreign = format!("{}Origin: http://evil.example\r\n", host(address));
        assert_eq!(exchange(address, "GET", path, &foreign, "").await.0, 403);
        assert_eq!(exchange(address, "GET", path, &format!("Host: node.test:{port}\r\n"), "").await.0, 200);
    }

    // Other paths still reach JSON-RPC.
    let headers = format!("{}Content-Type: application/json\r\n", host(address));
    let (status, answer) = exchange(address, "POST", "/", &headers, call).await;
    assert_eq!(status, 200, "{answer}");
    assert!(body_of(&answer).contains(r#""result""#), "{answer}");
    let (status, _) = exchange(address, "GET", "/healthz", &host(address), "").await;
    assert_ne!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_facts_and_a_flood_of_probes_reads_them_once_a_second() {
    let backend = fake(Readiness { block_time_ms: now(), validators_connected: Some(0), ..facts() });
    let server = crate::start("127.0.0.1:0".parse().expect("address"), limits(), backend.clone()).await.expect("start");
    let address = server.address();
    let url = format!("http://{address}");

    let answer = probe(&url, Probe::Ready, Duration::from_secs(5)).await.expect("answered");
    assert_eq!(answer.status, 503, "{answer:?}");
    let report: ReadyReport = serde_json::from_str(&answer.body).expect("a report");
    assert_eq!(report.status, ProbeStatus::Down);
    assert!(report.reasons.len() == 1 && report.reasons[0].starts_with("peers:"), "{:?}", report.reasons);

    // Many probes at once: all answered from one reading.
    let reads = backend.reads.load(Ordering::SeqCst);
    let flood: Vec<_> = (0..200)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { probe(&url, Probe::Ready, Duration::from_secs(10)).await })
        })
        .collect();
    for task in flood {
        assert_eq!(task.await.expect("task").expect("answered").status, 503);
    }
    let flood_reads = backend.reads.load(Ordering::SeqCst) - reads;
    assert!(flood_reads <= 2, "{flood_reads} readings for 200 probes");

    // The facts change: the next reading, within a second, says so.
    *backend.facts.lock().expect("facts") = Readiness { block_time_ms: now(), ..facts() };
    tokio::time::sleep(REFRESH).await;
    let answer = probe(&url, Probe::Ready, Duration::from_secs(5)).await.expect("answered");
    assert_eq!(answer.status, 200, "{answer:?}");
    server.stop().await;
}

#[tokio::test]
async fn the_client_reports_what_it_could_not_do() {
    let refused = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address")
    };
    let error = probe(&format!("http://{refused}"), Probe::Health, Duration::from_secs(5)).await.expect_err("refused");
    assert!(matches!(error, ProbeError::Connect { .. }), "{error}");
    for url in ["127.0.0.1:1", "https://127.0.0.1:1", "ftp://x", "http://"] {
        let error = probe(url, Probe::Health, Duration::from_secs(5)).await.expect_err(url);
        assert!(matches!(error, ProbeError::Url { .. }), "{url}: {error}");
    }
    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = silent.local_addr().expect("address");
    let _hold = tokio::spawn(async move {
        let (socket, _) = silent.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let error =
        probe(&format!("http://{address}"), Probe::Ready, Duration::from_millis(300)).await.expect_err("silent");
    assert!(matches!(error, ProbeError::Timeout { .. }), "{error}");
}
