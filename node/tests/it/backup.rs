//! `stele backup`: a checkpoint of a validator's store taken while a 4-validator network runs
//! under load audits on its own, and a node restored from it catches up with the others; a
//! stopped node's store backs up too; bad input changes nothing.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Output, Stdio},
    time::{Duration, Instant},
};

use ledger::{BlockReader, RocksStore, StoreOptions};

use super::{
    crash_points::Network,
    one_network_at_a_time,
    processes::{free_port_range, generate, run_ok, wait_for},
    stele,
};

/// A `stele bench` loading the network in the background, killed however the test ends.
struct Load(Child);

impl Load {
    /// Transfers at `rate` tx/s spread over `rpc`, `txs` in all, from fresh accounts the faucet
    /// funds; output to `log`.
    fn start(faucet: &Path, rpc: &[String], txs: u64, rate: Option<u64>, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("bench log");
        let mut command = stele();
        command.args(["bench", "--json", "--accounts", "40", "--txs", &txs.to_string(), "--key"]).arg(faucet);
        if let Some(rate) = rate {
            command.args(["--rate", &rate.to_string()]);
        }
        for url in rpc {
            command.args(["--rpc", url]);
        }
        let child = command.stdout(log.try_clone().expect("log")).stderr(log).spawn().expect("spawn stele bench");
        Load(child)
    }

    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Waits (bounded) for the bench to end; its exit status.
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the bench did not finish in {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `stele ARGS`, which must fail: its stderr.
fn fails(arguments: &[&str]) -> String {
    let output: Output = stele().args(arguments).output().expect("run stele");
    assert!(!output.status.success(), "stele {arguments:?} succeeded: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every path under `dir` (recursively), for "nothing changed" checks.
fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            paths.insert(path);
        }
    }
    paths
}

/// The head height of a stopped node's (or a backup's) store.
fn stored_head(home: &Path) -> u64 {
    let document = genesis::GenesisDocument::load(&home.join("genesis.json")).expect("genesis");
    let genesis = document.to_ledger().expect("genesis");
    let options = StoreOptions { sync_writes: false, read_only: true };
    RocksStore::open(&home.join("data"), &genesis, options).expect("open store").head().expect("head").height
}

/// `stele audit --home HOME --json`, which must pass: its report.
fn audit_home(home: &Path) -> serde_json::Value {
    let report: serde_json::Value =
        serde_json::from_str(&run_ok(&["audit", "--json", "--home", text(home)])).expect("audit json");
    assert_eq!(report["valid"], true, "{report}");
    report
}

/// The balance of `address` on the node at `rpc`, if it answers.
fn balance(rpc: &str, address: &str) -> Option<u64> {
    let output = stele().args(["query", "account", address, "--json", "--rpc", rpc]).output().ok()?;
    serde_json::from_slice::<serde_json::Value>(&output.stdout).ok()?["balance"].as_u64()
}

#[test]
fn a_backup_taken_under_load_audits_and_restores_a_node_that_catches_up() {
    let _network = one_network_at_a_time();
    let mut network = Network::generate(4);
    for index in 0..4 {
        network.start(index, None);
    }
    wait_for("every node past height 2", || {
        network.assert_alive(None);
        (0..4).all(|index| network.height(index).is_some_and(|height| height >= 2))
    });
    let dir = network.dir.path().to_path_buf();
    let faucet = dir.join("faucet.key.json");
    let urls: Vec<String> = (0..4).map(|index| network.rpc_url(index)).collect();
    // `stele bench` sends every transfer to this address.
    let recipient = ledger::Address::of(&consensus::SigningKey::from_seed([0xbe; 32]).public_key()).to_string();

    // Load: transfers from 40 accounts to all four nodes, for longer than the backup takes.
    let mut load = Load::start(&faucet, &urls, 40_000, Some(400), &dir.join("bench1.log"));
    wait_for("the load's transfers to commit", || {
        network.assert_alive(None);
        assert!(load.running(), "{}", std::fs::read_to_string(dir.join("bench1.log")).unwrap_or_default());
        balance(&urls[0], &recipient).is_some_and(|balance| balance > 0)
    });

    // A backup of node1 while it runs and commits.
    let home1 = network.home(1);
    let backup = dir.join("backup-node1");
    let manifest: serde_json::Value =
        serde_json::from_str(&run_ok(&["backup", "--home", text(&home1), "--out", text(&backup), "--json"]))
            .expect("manifest json");
    assert!(load.running(), "the load ran through the backup");
    network.assert_alive(None);
    assert_eq!(manifest["source"], "running_node", "{manifest}");
    let height = manifest["height"].as_u64().expect("height");
    assert!(height > 2, "{manifest}");
    let names: BTreeSet<String> = std::fs::read_dir(&backup)
        .expect("backup folder")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, BTreeSet::from(["backup.json".into(), "data".into(), "genesis.json".into()]), "no keys");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("backup.json")).expect("manifest")).expect("json");
    assert_eq!(on_disk, manifest);
    // No partial folder is left beside it.
    assert!(
        std::fs::read_dir(&dir)
            .expect("dir")
            .all(|entry| { !entry.expect("entry").file_name().to_string_lossy().contains(".partial-") })
    );

    // The backup is a chain of its own: it audits from the genesis, transfers of the load included.
    let report = audit_home(&backup);
    assert_eq!(report["sources"][0]["blocks"], height, "{report}");
    assert!(report["sources"][0]["transactions"].as_u64().expect("transactions") > 0, "{report}");
    assert_eq!(report["sources"][0]["head_hash"], manifest["head_hash"], "{report}");

    // An existing folder is never written into; a running node's store is never replaced.
    let before = listing(&backup);
    let refused = fails(&["backup", "--home", text(&home1), "--out", text(&backup)]);
    assert!(refused.contains("already exists"), "{refused}");
    assert_eq!(listing(&backup), before);
    let refused = fails(&["backup", "restore", "--from", text(&backup), "--home", text(&home1)]);
    assert!(refused.contains("running"), "{refused}");
    assert!(!std::fs::read_dir(&home1).expect("home").any(|entry| {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        name.starts_with("data.replaced") || name.contains("restoring")
    }));
    // node1 goes on past the backup, so restoring it takes its store back in time.
    wait_for("node1 three blocks past the backup", || {
        network.assert_alive(None);
        network.height(1).is_some_and(|now| now >= height + 3)
    });
    drop(load);

    // A stopped node's store backs up too, from the store itself.
    assert!(network.stop(1).success(), "node1 stops cleanly");
    let stopped_at = stored_head(&home1);
    assert!(stopped_at >= height + 3);
    let offline = dir.join("backup-node1-stopped");
    let offline_manifest: serde_json::Value =
        serde_json::from_str(&run_ok(&["backup", "--home", text(&home1), "--out", text(&offline), "--json"]))
            .expect("manifest json");
    assert_eq!(offline_manifest["source"], "stopped_node", "{offline_manifest}");
    assert_eq!(offline_manifest["height"], stopped_at, "{offline_manifest}");
    audit_home(&offline);

    // Restore the first backup into node1's home: its store goes back to the backup's height
    // (the one it had is kept aside), and node1 catches up with the others, which go on
    // committing under load meanwhile.
    let restored: serde_json::Value = serde_json::from_str(&run_ok(&[
        "backup",
        "restore",
        "--from",
        text(&backup),
        "--home",
        text(&home1),
        "--json",
    ]))
    .expect("restore json");
    assert_eq!(restored["height"], height, "{restored}");
    // The votes node1 signed after the backup are not forgotten.
    assert_eq!(restored["safety_state_from"], "replaced store", "{restored}");
    assert!(restored["safety_state_height"].as_u64().expect("safety state height") > height, "{restored}");
    assert_eq!(restored["replaced"]["height"], stopped_at, "{restored}");
    assert_eq!(stored_head(&home1), height);
    let kept = PathBuf::from(restored["replaced"]["kept_at"].as_str().expect("kept_at"));
    assert!(kept.starts_with(&home1) && kept.join("CURRENT").is_file(), "{restored}");
    audit_home(&home1);

    let others: Vec<String> = [0, 2, 3].iter().map(|index| network.rpc_url(*index)).collect();
    let mut load = Load::start(&faucet, &others, 2_000, None, &dir.join("bench2.log"));
    network.start(1, None);
    let status = load.wait(Duration::from_secs(300));
    assert!(status.success(), "{}", std::fs::read_to_string(dir.join("bench2.log")).unwrap_or_default());
    network.assert_alive(None);
    let target = [0, 2, 3].iter().filter_map(|index| network.height(*index)).max().expect("heights");
    assert!(target > stopped_at);
    wait_for("the restored node1 to catch up with the others", || {
        network.assert_alive(None);
        network.height(1).is_some_and(|height| height >= target)
    });
    // It holds the same chain as the others, block by block.
    let genesis_path = dir.join("genesis.json");
    let report: serde_json::Value = serde_json::from_str(&run_ok(&[
        "audit",
        "--json",
        "--genesis",
        text(&genesis_path),
        "--rpc",
        &network.rpc_url(0),
        "--rpc",
        &network.rpc_url(1),
    ]))
    .expect("audit json");
    assert_eq!(report["valid"], true, "{report}");
    for index in 0..4 {
        assert!(network.stop(index).success(), "node{index} stops cleanly");
    }
    let log = std::fs::read_to_string(home1.join("node.log")).expect("log");
    assert!(!log.contains("conflicting votes"), "node1 signed conflicting votes");

    // Another host: a fresh home of the same network, made by `stele init`, restored from the
    // backup, audits (its validator key is its own; the command warns about double signing).
    let fresh = dir.join("fresh");
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port_range(1));
    run_ok(&["init", "--home", text(&fresh), "--name", "fresh", "--listen", &listen, "--genesis", text(&genesis_path)]);
    let output = stele()
        .args(["backup", "restore", "--from", text(&backup), "--home", text(&fresh)])
        .stdin(Stdio::null())
        .output()
        .expect("run stele");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("sign conflicting"));
    assert_eq!(stored_head(&fresh), height);
    audit_home(&fresh);
}

#[test]
fn backup_and_restore_refuse_bad_input_and_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path(), 1, free_port_range(3));
    let home = dir.path().join("node0");
    let before = listing(dir.path());
    let out = dir.path().join("out");

    // A home that never started has no store.
    let refused = fails(&["backup", "--home", text(&home), "--out", text(&out)]);
    assert!(refused.contains("no store"), "{refused}");
    let refused = fails(&["backup", "--home", text(&dir.path().join("nowhere")), "--out", text(&out)]);
    assert!(refused.contains("genesis.json"), "{refused}");
    let refused = fails(&["backup", "--home", text(&home), "--out", text(&dir.path().join("no/such/folder"))]);
    assert!(refused.contains("does not exist"), "{refused}");
    // An existing --out is refused before anything else.
    let refused = fails(&["backup", "--home", text(&home), "--out", text(&home)]);
    assert!(refused.contains("already exists"), "{refused}");
    // A folder that is not a backup.
    let refused = fails(&["backup", "restore", "--from", text(&home), "--home", text(&home)]);
    assert!(refused.contains("not a backup"), "{refused}");
    let refused = fails(&["backup"]);
    assert!(refused.contains("--home") && refused.contains("--out"), "{refused}");
    assert_eq!(listing(dir.path()), before, "a refused command changed the disk");
}
