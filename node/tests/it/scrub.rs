//! The background scrub of a running node (`[checks]`): values damaged in its RocksDB (their
//! last byte flipped while it was stopped, `processes::tamper`, since a running node holds the
//! database's lock) below the head let it start and serve, and the scrub finds each one with
//! its height and column, reports it in the metric, `chain_status` and `/ready`, while the node
//! keeps committing and every read of a damaged value stays an error; with `checks.repair` it
//! writes the receipts, index entries and the block's state tree version again from the block. Its progress survives a restart.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::Duration,
};

use ledger::{
    Address,
    state::{key_hash, keys},
    store::schema,
};
use serde_json::{Value, json};

use super::{
    corruption::UNAVAILABLE,
    crash_points::{Network, call},
    processes::{run_ok, tamper, wait_for},
};

/// A plain HTTP GET: the status code and the body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((code, body.to_string()))
}

/// Sets `[checks]` in the node's config.toml: the scrub on or off; fast enough to catch up with
/// a test chain, proving the state at every height, and no second pass within the test.
pub(crate) fn configure_checks(home: &Path, enabled: bool) {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut config: toml::Table = text.parse().expect("config.toml");
    let checks: toml::Table = toml::toml! {
        enabled = enabled
        blocks_per_second = 50
        pass_interval = "1h"
        state_sample_interval = 1
        repair = enabled
    };
    config.insert("checks".to_string(), toml::Value::Table(checks));
    std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("write config.toml");
}

fn scrub_status(port: u16) -> Option<Value> {
    call(port, "chain_status", json!([])).and_then(|response| response.pointer("/result/scrub").cloned())
}

fn metric(metrics_port: u16, name: &str) -> Option<u64> {
    let (_, body) = get(metrics_port, "/metrics")?;
    body.lines().find_map(|line| line.strip_prefix(&format!("{name} "))).and_then(|value| value.trim().parse().ok())
}

#[test]
fn the_scrub_finds_each_damaged_value_of_a_running_node_reports_it_and_resumes_after_a_restart() {
    let mut network = Network::generate(1);
    let port = network.rpc_port(0);
    let metrics_port = network.base + 2;
    let home = network.home(0);
    // Off while the chain is built, so the first pass it makes is over the damaged chain.
    configure_checks(&home, false);
    network.start(0, None);
    wait_for("the node to commit a block", || {
        network.assert_alive(None);
        network.height(0).is_some_and(|height| height >= 1)
    });
    let faucet = network.dir.path().join("faucet.key.json");
    let committed: Value = serde_json::from_str(&run_ok(&[
        "tx",
        "transfer",
        "--to",
        "0x00000000000000000000000000000000000000ee",
        "--amount",
        "7",
        "--key",
        faucet.to_str().expect("utf-8"),
        "--rpc",
        &network.rpc_url(0),
        "--wait",
        "--json",
    ]))
    .expect("json");
    let tx_hash = committed["hash"].as_str().expect("hash").to_string();
    let at = committed["height"].as_u64().expect("height");
    let shown: Value =
        serde_json::from_str(&run_ok(&["keys", "show", "--json", faucet.to_str().expect("utf-8")])).expect("json");
    let sender: Address = shown["address"].as_str().expect("address").parse().expect("an address");
    // Blocks above the damage, so the head itself is intact and the node starts.
    wait_for("blocks above the transfer", || network.height(0).is_some_and(|height| height >= at + 6));
    assert!(network.stop(0).success());

    // In the order chain_status lists them: by height, then column.
    let damaged = [
        (at, schema::TREE_VALUES, schema::tree_value_key(key_hash(&keys::account(&sender)), at).to_vec()),
        (at, schema::TX_INDEX, consensus::hex::decode(&tx_hash).expect("hex")),
        (at + 1, schema::BODIES, schema::height_key(at + 1).to_vec()),
        (at + 2, schema::CERTIFICATES, schema::height_key(at + 2).to_vec()),
        (at + 3, schema::RECEIPTS, schema::height_key(at + 3).to_vec()),
    ];
    for (_, column, key) in &damaged {
        tamper(&home, column, key);
    }
    assert!(!home.join(node::scrub::PROGRESS_FILE).exists(), "a scrub that is off saves nothing");
    configure_checks(&home, true);
    network.start(0, None);
    wait_for("the scrub to complete a pass", || {
        network.assert_alive(None);
        scrub_status(port).is_some_and(|scrub| scrub["passes"].as_u64() >= Some(1))
    });
    let scrub = scrub_status(port).expect("scrub status");
    let found: Vec<(u64, String)> = scrub["damaged"]
        .as_array()
        .expect("damaged")
        .iter()
        .map(|damage| (damage["height"].as_u64().expect("height"), damage["column"].as_str().expect("column").into()))
        .collect();
    // The receipts, the transaction index and the state the block wrote follow from the block
    // and were written again; the block's own parts need a peer's copy (this node has none).
    let derived = [schema::TREE_VALUES, schema::TX_INDEX, schema::RECEIPTS];
    let expected: Vec<(u64, String)> = damaged
        .iter()
        .filter(|(_, column, _)| !derived.contains(column))
        .map(|(height, column, _)| (*height, column.to_string()))
        .collect();
    assert_eq!(found, expected, "{scrub}");
    assert_eq!(scrub["errors"], json!(damaged.len()), "{scrub}");
    assert_eq!(scrub["repaired"], json!(derived.len()), "{scrub}");
    let receipt = call(port, "tx_get", json!([tx_hash])).expect("an answer");
    assert_eq!(receipt.pointer("/result/height"), Some(&json!(at)), "the repaired index and receipts serve: {receipt}");
    assert_eq!(metric(metrics_port, "stele_scrub_errors_total"), Some(damaged.len() as u64));
    assert!(metric(metrics_port, "stele_scrub_passes_total") >= Some(1));
    assert!(metric(metrics_port, "stele_scrub_height") > Some(at + 3));
    let log = network.last_log(0);
    assert!(
        log.lines().any(|line| line.contains("damaged stored value") && line.contains("column=bodies")),
        "no error line for the body:\n{log}"
    );
    assert!(log.contains("re-derived the block's receipts"), "no repair logged:\n{log}");

    // Not ready, saying why...
    let (code, body) = get(port, "/ready").expect("/ready answers");
    assert_eq!(code, 503, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(ready["checks"]["storage"]["ok"], json!(false), "{ready}");
    let reasons = ready["reasons"].to_string();
    // The first value still damaged: the body above the transfer (its state was re-derived).
    assert!(reasons.contains("storage") && reasons.contains(&format!("height {}", at + 1)), "{reasons}");
    // ...while it keeps committing and serving, and the damaged block is an error, not data.
    let height = network.height(0).expect("height");
    wait_for("the node to go on committing", || network.height(0).is_some_and(|now| now > height + 2));
    let response = call(port, "chain_getBlock", json!([at + 1])).expect("an answer");
    assert_eq!(response["error"]["code"], UNAVAILABLE, "{response}");
    assert!(call(port, "chain_getBlock", json!([at + 5])).expect("an answer").get("result").is_some());

    // A restart resumes the same pass's record instead of starting over.
    assert!(network.stop(0).success());
    let saved: Value =
        serde_json::from_slice(&std::fs::read(home.join(node::scrub::PROGRESS_FILE)).expect("progress file"))
            .expect("json");
    network.start(0, None);
    wait_for("the node to answer", || {
        network.assert_alive(None);
        scrub_status(port).is_some()
    });
    let resumed = scrub_status(port).expect("scrub status");
    for field in ["passes", "pass_started_ms", "last_pass_ms", "next_pass_ms", "errors", "damaged"] {
        assert_eq!(resumed[field], saved[field], "{field}: {resumed} after saving {saved}");
    }
    let (code, _) = get(port, "/ready").expect("/ready answers");
    assert_eq!(code, 503, "damage found before the restart is still reported");
    assert!(network.stop(0).success());
}

#[test]
fn a_damaged_block_is_repaired_with_a_peers_certified_copy_while_the_node_runs() {
    let _one = super::one_network_at_a_time();
    let mut network = Network::generate(2);
    let port = network.rpc_port(0);
    configure_checks(&network.home(0), false);
    network.start(0, None);
    network.start(1, None);
    wait_for("both nodes to commit blocks", || {
        network.assert_alive(None);
        network.height(0).is_some_and(|height| height >= 6)
    });
    assert!(network.stop(0).success());
    let home = network.home(0);
    let damaged = [(2, schema::BODIES), (3, schema::CERTIFICATES), (4, schema::HEADERS), (5, schema::RECEIPTS)];
    for (height, column) in damaged {
        tamper(&home, column, &schema::height_key(height));
    }
    configure_checks(&home, true);
    network.start(0, None);
    wait_for("the scrub to find and repair every damaged block", || {
        network.assert_alive(None);
        scrub_status(port).is_some_and(|scrub| {
            scrub["passes"].as_u64() >= Some(1) && scrub["damaged"] == json!([]) && scrub["errors"].as_u64() >= Some(4)
        })
    });
    let scrub = scrub_status(port).expect("scrub status");
    assert_eq!(scrub["repaired"], scrub["errors"], "{scrub}");
    for (height, _) in damaged {
        let response = call(port, "chain_getBlock", json!([height])).expect("an answer");
        assert!(response.get("result").is_some(), "block {height} after the repair: {response}");
    }
    let log = network.last_log(0);
    assert!(log.contains("repaired a damaged block with a peer's certified copy"), "{log}");
    let (code, body) = get(port, "/ready").expect("/ready answers");
    assert!(!body.contains("storage: "), "the damage is gone from /ready ({code}): {body}");
    assert!(network.stop(0).success());
    assert!(network.stop(1).success());
}
