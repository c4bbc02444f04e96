//! A value damaged in a stopped node's RocksDB (its last byte flipped, see
//! `processes::tamper`) is never served as data: a damaged head or safety state stops
//! `stele start` with an error naming the column, and a damaged value below the head makes
//! every JSON-RPC read of it an error. The background scrub is off here: it would repair some
//! of these values before the reads (its own tests are in `scrub`), and this test is about
//! what every read checks by itself.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use ledger::{
    Address, BlockReader, RocksStore, StoreOptions,
    state::{key_hash, keys},
    store::schema,
};
use serde_json::{Value, json};

use super::{
    crash_points::{Network, call},
    processes::{run_ok, tamper, wait_for},
    scrub::configure_checks,
};

/// The code `rpc::error::UNAVAILABLE`: a storage failure, never the caller's fault.
pub(crate) const UNAVAILABLE: i64 = 1013;

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// What damage to one value must lead to.
enum Expect {
    /// `stele start` exits with an error whose text holds all of these.
    StartFails(Vec<String>),
    /// The node starts, and each of these calls answers with a storage error naming the column.
    ReadsFail(Vec<(&'static str, Value)>),
    /// The node starts, and this call answers with the undamaged value at this JSON pointer.
    ServesTheTruth(&'static str, Value, &'static str, Value),
}

#[test]
fn a_damaged_value_is_refused_at_start_or_an_error_on_every_read() {
    let mut network = Network::generate(1);
    let port = network.rpc_port(0);
    configure_checks(&network.home(0), false);
    network.start(0, None);
    wait_for("the node to commit a block", || {
        network.assert_alive(None);
        network.height(0).is_some_and(|height| height >= 1)
    });
    let faucet = network.dir.path().join("faucet.key.json");
    let recipient = "0x00000000000000000000000000000000000000ee";
    let committed: Value = serde_json::from_str(&run_ok(&[
        "tx",
        "transfer",
        "--to",
        recipient,
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
    // A few empty blocks above it, so damage at `at` is below the head.
    wait_for("blocks above the transfer", || network.height(0).is_some_and(|height| height >= at + 3));
    assert!(network.stop(0).success());

    let document = genesis::GenesisDocument::load(&network.dir.path().join("genesis.json")).expect("genesis");
    let genesis = document.to_ledger().expect("genesis");
    let home = network.home(0);
    let (head, block_hash) = {
        let options = StoreOptions { sync_writes: false, read_only: true };
        let store = RocksStore::open(&home.join("data"), &genesis, options).expect("open store");
        (store.head().expect("head").height, store.header(at).expect("read").expect("header").hash())
    };
    assert!(head > at + 1);
    let pristine = network.dir.path().join("pristine");
    copy_tree(&home, &pristine);

    let mut address = [0u8; 20];
    address[19] = 0xee;
    let account_key = keys::account(&Address(address));
    let tx_key = consensus::hex::decode(&tx_hash).expect("hex");
    let block_at = schema::height_key(at).to_vec();
    let block_head = schema::height_key(head).to_vec();
    let head_fails = |column: &str| Expect::StartFails(vec![column.to_string(), format!("block {head}")]);
    let cases: Vec<(&'static str, Vec<u8>, Expect)> = vec![
        (schema::HEADERS, block_head.clone(), head_fails(schema::HEADERS)),
        (schema::BODIES, block_head.clone(), head_fails(schema::BODIES)),
        (schema::CERTIFICATES, block_head.clone(), head_fails(schema::CERTIFICATES)),
        (schema::RECEIPTS, block_head.clone(), head_fails(schema::RECEIPTS)),
        (schema::SAFETY, schema::SAFETY_STATE.to_vec(), Expect::StartFails(vec!["safety".to_string()])),
        (
            schema::HEADERS,
            block_at.clone(),
            Expect::ReadsFail(vec![
                ("chain_getBlock", json!([at])),
                ("chain_getBlocks", json!([at, at])),
                ("state_getAccount", json!([recipient, at])),
                ("state_getProof", json!([{"account": recipient}, at])),
            ]),
        ),
        (
            schema::BODIES,
            block_at.clone(),
            // (`tx_get` answers from the index and the receipts, which are intact.)
            Expect::ReadsFail(vec![("chain_getBlock", json!([at])), ("tx_getProof", json!([tx_hash]))]),
        ),
        (
            schema::CERTIFICATES,
            block_at.clone(),
            Expect::ReadsFail(vec![
                ("chain_getBlock", json!([at])),
                ("chain_getBlocks", json!([at, at])),
                ("state_getProof", json!([{"account": recipient}, at])),
            ]),
        ),
        (schema::RECEIPTS, block_at.clone(), Expect::ReadsFail(vec![("tx_get", json!([tx_hash]))])),
        (
            schema::BLOCK_HASHES,
            block_hash.0.to_vec(),
            Expect::ReadsFail(vec![("chain_getBlock", json!([block_hash.to_string()]))]),
        ),
        (
            schema::TX_INDEX,
            tx_key,
            Expect::ReadsFail(vec![("tx_get", json!([tx_hash])), ("tx_getProof", json!([tx_hash]))]),
        ),
        (
            schema::TREE_VALUES,
            schema::tree_value_key(key_hash(&account_key), at).to_vec(),
            Expect::ReadsFail(vec![
                ("state_getAccount", json!([recipient, at])),
                ("state_getProof", json!([{"account": recipient}, at])),
            ]),
        ),
        // The latest-state column feeds execution only; reads go through the verified tree.
        (
            schema::STATE,
            account_key.clone(),
            Expect::ServesTheTruth("state_getAccount", json!([recipient]), "/result/balance", json!(7)),
        ),
    ];

    for (column, key, expect) in cases {
        std::fs::remove_dir_all(&home).expect("remove home");
        copy_tree(&pristine, &home);
        tamper(&home, column, &key);
        network.start(0, None);
        let case = format!("{column} at {}", consensus::hex::encode(&key));
        match expect {
            Expect::StartFails(words) => {
                let deadline = Instant::now() + Duration::from_secs(60);
                let status = loop {
                    if let Some(status) = network.exited(0) {
                        break status;
                    }
                    assert!(Instant::now() < deadline, "{case}: the node started on damaged data");
                    std::thread::sleep(Duration::from_millis(50));
                };
                let log = network.last_log(0);
                assert_eq!(status.code(), Some(1), "{case}: exit {status}:\n{log}");
                let error = log.lines().find(|line| line.starts_with("error:")).unwrap_or_default();
                for word in &words {
                    assert!(error.contains(word.as_str()), "{case}: the error does not say {word}:\n{log}");
                }
                eprintln!("{case}: start refused: {error}");
            }
            Expect::ReadsFail(calls) => {
                wait_for(&format!("{case}: the node to answer"), || {
                    network.assert_alive(None);
                    call(port, "chain_status", json!([])).is_some()
                });
                for (method, params) in calls {
                    let response = call(port, method, params.clone()).expect("an answer");
                    assert!(response.get("result").is_none(), "{case}: {method} {params} served {response}");
                    let error = &response["error"];
                    let message = error["message"].as_str().unwrap_or_default();
                    assert_eq!(error["code"], UNAVAILABLE, "{case}: {method}: {response}");
                    assert!(message.contains("corrupt"), "{case}: {method}: {message}");
                    eprintln!("{case}: {method} {params}: {message}");
                }
                assert!(network.stop(0).success(), "{case}: SIGTERM");
            }
            Expect::ServesTheTruth(method, params, pointer, expected) => {
                wait_for(&format!("{case}: the node to answer"), || {
                    network.assert_alive(None);
                    call(port, "chain_status", json!([])).is_some()
                });
                let response = call(port, method, params).expect("an answer");
                assert_eq!(response.pointer(pointer), Some(&expected), "{case}: {response}");
                assert!(network.stop(0).success(), "{case}: SIGTERM");
            }
        }
    }
}
