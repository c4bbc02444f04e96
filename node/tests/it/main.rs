//! End-to-end tests of the `stele` binary.

mod backup;
mod byzantine;
mod compose;
mod corruption;
mod crash_points;
mod faults;
mod flood;
mod operators;
mod processes;
mod scrub;

use std::process::Command;

fn stele() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stele"))
}

/// Tests that run a multi-node network take this first: two cores cannot run several networks
/// of debug `stele` processes at once without their view timeouts firing, which would test the
/// machine instead of the node.
fn one_network_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn version_prints_the_crate_version() {
    let output = stele().arg("--version").output().expect("run stele");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.trim(), format!("stele {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn keys_generate_writes_a_private_key_file_and_show_reads_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alice.json");
    let output = stele().args(["keys", "generate", "--json", "--out"]).arg(&path).output().expect("run stele");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let generated: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json output");
    let mode = std::fs::metadata(&path).expect("key file exists").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let address = generated["address"].as_str().expect("address");
    assert!(address.starts_with("0x") && address.len() == 42, "{address}");

    let shown = stele().args(["keys", "show", "--json"]).arg(&path).output().expect("run stele");
    assert!(shown.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json output");
    assert_eq!(shown["public_key"], generated["public_key"]);
    assert_eq!(shown["address"], generated["address"]);

    // Never overwrites a key; fails with a clear message and a non-zero status.
    let again = stele().args(["keys", "generate", "--out"]).arg(&path).output().expect("run stele");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    let unchanged = stele().args(["keys", "show", "--json"]).arg(&path).output().expect("run stele");
    let unchanged: serde_json::Value = serde_json::from_slice(&unchanged.stdout).expect("json output");
    assert_eq!(unchanged["public_key"], generated["public_key"]);
}

#[test]
fn keys_show_refuses_a_missing_or_malformed_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = stele().args(["keys", "show"]).arg(dir.path().join("nope.json")).output().expect("run stele");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.json"));
}
