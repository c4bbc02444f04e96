use std::time::Duration;

use consensus::SigningKey;

use super::*;
use crate::{ENTRY_FORMAT, write_key};

fn chain(name: &str) -> ChainId {
    ChainId::new(name).expect("chain id")
}

/// Writes the entry of a node with these key seeds into `dir/<file>`.
fn entry_file(dir: &Path, file: &str, name: &str, seeds: (u8, u8), chain_id: Option<&str>) -> PathBuf {
    let entry = ValidatorEntry::new(
        name,
        chain_id.map(chain),
        &SigningKey::from_seed([seeds.0; 32]),
        &SigningKey::from_seed([seeds.1; 32]),
        &format!("/ip4/10.0.0.{}/tcp/26656", seeds.0),
    )
    .expect("entry");
    let path = dir.join(file);
    entry.save(&path).expect("save");
    path
}

fn four(dir: &Path) -> Vec<PathBuf> {
    (0..4u8).map(|i| entry_file(dir, &format!("v{i}.json"), &format!("v{i}"), (10 + i, 20 + i), Some("ops"))).collect()
}

fn plan(validators: Vec<PathBuf>) -> GenesisPlan {
    GenesisPlan {
        chain_id: None,
        genesis_time: std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        validators,
        accounts: Vec::new(),
        params: Params::default(),
    }
}

#[test]
fn entries_make_a_genesis_the_node_loads_with_the_same_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let built = build_genesis(&plan(four(dir.path()))).expect("build");
    assert_eq!(built.document.chain_id.as_str(), "ops");
    let names: Vec<&str> = built.document.validators.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["v0", "v1", "v2", "v3"], "in the order given");
    assert_eq!(built.entries[1].p2p_address(), format!("/ip4/10.0.0.11/tcp/26656/p2p/{}", built.entries[1].peer_id));
    let out = dir.path().join("genesis.json");
    built.document.save(&out).expect("save");
    let loaded = GenesisDocument::load(&out).expect("the node's own load");
    assert_eq!(loaded.hash().expect("hash"), built.hash);
    assert_eq!(built.hash, built.document.to_ledger().expect("ledger").hash());
}

#[test]
fn the_chain_id_given_must_match_the_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut validators = four(dir.path());
    let mut other = plan(validators.clone());
    other.chain_id = Some(chain("other"));
    let error = build_genesis(&other).expect_err("foreign");
    assert!(matches!(&error, Error::Foreign { path, .. } if path == &validators[0]), "{error}");
    assert!(error.to_string().contains("made for chain \"ops\""), "{error}");

    // Entries that name no chain fit any, but then the chain must be given.
    let anonymous: Vec<PathBuf> = (0..4u8)
        .map(|i| entry_file(dir.path(), &format!("a{i}.json"), &format!("a{i}"), (30 + i, 40 + i), None))
        .collect();
    let error = build_genesis(&plan(anonymous.clone())).expect_err("no chain id");
    assert!(error.to_string().contains("no chain id given"), "{error}");
    let mut named = plan(anonymous);
    named.chain_id = Some(chain("anything"));
    assert_eq!(build_genesis(&named).expect("build").document.chain_id.as_str(), "anything");

    // One entry of another chain among them.
    validators[3] = entry_file(dir.path(), "stray.json", "stray", (50, 51), Some("elsewhere"));
    let error = build_genesis(&plan(validators)).expect_err("foreign");
    assert!(matches!(&error, Error::Foreign { path, .. } if path.ends_with("stray.json")), "{error}");
}

#[test]
fn duplicate_keys_peer_ids_and_names_are_refused_naming_both_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let validators = four(dir.path());
    let cases = [
        // The same entry sent twice (or copied under another name).
        (entry_file(dir.path(), "copy.json", "v0", (10, 20), Some("ops")), "consensus public key"),
        // A new consensus key on a node already listed.
        (entry_file(dir.path(), "same-node.json", "w", (60, 21), Some("ops")), "peer id"),
        (entry_file(dir.path(), "same-name.json", "v2", (61, 62), Some("ops")), "name"),
        // Another name, same consensus key.
        (entry_file(dir.path(), "same-key.json", "x", (13, 63), Some("ops")), "consensus public key"),
    ];
    for (extra, shared) in cases {
        let mut with = validators.clone();
        with.push(extra.clone());
        let error = build_genesis(&plan(with)).expect_err("duplicate");
        match &error {
            Error::Duplicate { what, second, .. } => {
                assert_eq!(*what, shared, "{error}");
                assert_eq!(second, &extra);
            }
            other => panic!("expected a duplicate for {}, got {other}", extra.display()),
        }
    }
}

#[test]
fn fewer_validators_than_min_validators_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut validators = four(dir.path());
    validators.pop();
    let error = build_genesis(&plan(validators.clone())).expect_err("too few");
    assert!(matches!(error, Error::TooFewValidators { count: 3, min: 4 }), "{error}");
    let mut lowered = plan(validators);
    lowered.params.min_validators = 3;
    assert_eq!(build_genesis(&lowered).expect("build").document.validators.len(), 3);
}

#[test]
fn the_nodes_own_checks_apply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bad = plan(four(dir.path()));
    bad.params.max_block_txs = 0;
    assert!(build_genesis(&bad).expect_err("params").to_string().contains("max_block_txs"));
    let account = GenesisAccountEntry { address: ledger::Address([7; 20]), balance: 1, roles: Vec::new() };
    let mut twice = bad;
    twice.params = Params::default();
    twice.accounts = vec![account.clone(), account];
    assert!(build_genesis(&twice).expect_err("accounts").to_string().contains("appears twice"));
}

#[test]
fn foreign_and_malformed_entries_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = entry_file(dir.path(), "good.json", "good", (70, 71), Some("ops"));
    let text = std::fs::read_to_string(&good).expect("read");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let key_file = dir.path().join("validator.key.json");
    write_key(&key_file, &SigningKey::from_seed([72; 32])).expect("key");
    let edited = |field: &str, value: serde_json::Value| {
        let mut json = json.clone();
        json[field] = value;
        serde_json::to_string(&json).expect("serialise")
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (key_file, "SECRET key file"),
        (write("genesis.json", "{\"chain_id\": \"ops\", \"validators\": []}".into()), "not a validator entry"),
        (write("text.json", "hello".into()), "not JSON"),
        (
            write("future.json", edited("format", "stele-validator-entry/9".into())),
            "is not \"stele-validator-entry/1\"",
        ),
        (write("renamed.json", edited("name", "evil".into())), "signature: does not verify"),
        (write("moved.json", edited("address", "/ip4/10.9.9.9/tcp/1".into())), "signature: does not verify"),
        (write("bad-name.json", edited("name", "no spaces".into())), "name"),
        (write("bad-address.json", edited("address", "10.0.0.1:26656".into())), "address"),
        (write("bad-peer.json", edited("peer_id", "QmNotAnEd25519Key".into())), "peer_id"),
        (write("extra.json", edited("secret", "x".into())), "unknown field"),
    ];
    assert_eq!(json["format"], ENTRY_FORMAT);
    for (path, expected) in cases {
        let error = ValidatorEntry::load(&path).expect_err("refused");
        let message = error.to_string();
        assert!(message.contains(expected), "{}: {message}", path.display());
        assert!(message.contains(&path.display().to_string()), "the error names the file: {message}");
        assert!(!message.contains("secret_key\":"), "{message}");
    }
    // A node signature from another node: the peer id is not this node's.
    let mut json = json.clone();
    let other = ValidatorEntry::new(
        "good",
        Some(chain("ops")),
        &SigningKey::from_seed([70; 32]),
        &SigningKey::from_seed([73; 32]),
        "/ip4/10.0.0.70/tcp/26656",
    )
    .expect("entry");
    json["node_signature"] = other.node_signature.to_string().into();
    let path = write("stolen-peer.json", serde_json::to_string(&json).expect("serialise"));
    assert!(ValidatorEntry::load(&path).expect_err("refused").to_string().contains("node_signature"));
}
