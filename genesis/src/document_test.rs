use super::*;
use crate::{NetworkSpec, generate_network, load_key, network::files};

fn spec(validators: usize) -> NetworkSpec {
    NetworkSpec {
        chain_id: ChainId::new("stele-local").expect("chain id"),
        validators,
        faucet_balance: 1_000_000,
        genesis_time: std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

#[test]
fn a_generated_network_loads_and_hashes_stably() {
    let dir = tempfile::tempdir().expect("temp dir");
    let network = generate_network(dir.path(), &spec(4)).expect("generate");
    assert_eq!(network.nodes.len(), 4);
    let loaded = GenesisDocument::load(&network.genesis_path).expect("load");
    assert_eq!(loaded, network.genesis);
    let hash = loaded.hash().expect("hash");
    // Every home has the same genesis; reformatting the JSON does not change the hash.
    for node in &network.nodes {
        let home_genesis = GenesisDocument::load(&node.home.join(files::GENESIS)).expect("load");
        assert_eq!(home_genesis.hash().expect("hash"), hash);
        let key = load_key(&node.home.join(files::VALIDATOR_KEY)).expect("validator key");
        assert_eq!(key.public_key(), node.public_key);
    }
    let compact = serde_json::to_string(&loaded).expect("serialise");
    let reformatted = dir.path().join("compact.json");
    write(&reformatted, &compact);
    assert_eq!(GenesisDocument::load(&reformatted).expect("load").hash().expect("hash"), hash);
    let faucet = load_key(&network.faucet_key_path).expect("faucet key");
    assert_eq!(Address::of(&faucet.public_key()), network.faucet_address);

    // A second generation into the same folder is refused and changes nothing.
    let error = generate_network(dir.path(), &spec(4)).expect_err("refused");
    assert!(matches!(error, Error::Exists(_)), "{error}");
    assert_eq!(GenesisDocument::load(&network.genesis_path).expect("load").hash().expect("hash"), hash);
}

#[test]
fn key_files_are_private_and_checked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("key.json");
    let key = consensus::SigningKey::from_seed([4; 32]);
    crate::write_key(&path, &key).expect("write");
    let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(load_key(&path).expect("load").public_key(), key.public_key());
    assert!(matches!(crate::write_key(&path, &key), Err(Error::Exists(_))));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = load_key(&path).expect_err("refused");
    assert!(error.to_string().contains("chmod 600"), "{error}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = std::fs::read_to_string(&path).expect("read");
    let other = consensus::SigningKey::from_seed([5; 32]).public_key().to_string();
    std::fs::write(&path, text.replace(&key.public_key().to_string(), &other)).expect("write");
    let error = load_key(&path).expect_err("refused");
    assert!(error.to_string().contains("does not match"), "{error}");

    std::fs::write(&path, "{ not json").expect("write");
    assert!(matches!(load_key(&path), Err(Error::Parse { .. })));
}

#[test]
fn errors_name_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let network = generate_network(dir.path(), &spec(4)).expect("generate");
    let text = std::fs::read_to_string(&network.genesis_path).expect("read");
    let path = dir.path().join("bad.json");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");

    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|j| j["validators"][2]["public_key"] = "0x1234".into()), "validators[2].public_key"),
        (Box::new(|j| j["chain_id"] = "Not Valid".into()), "chain_id"),
        (Box::new(|j| j["genesis_time"] = "yesterday".into()), "genesis_time"),
        (Box::new(|j| j["params"]["max_block_txs"] = 0.into()), "params"),
        (Box::new(|j| j["params"]["surprise"] = 1.into()), "params.surprise"),
        (Box::new(|j| j["accounts"][0]["roles"] = serde_json::json!(["root"])), "accounts[0].roles[0]"),
        (Box::new(|j| j["validators"][1]["peer_id"] = j["validators"][0]["peer_id"].clone()), "validators[1]"),
        (Box::new(|j| j["validators"] = serde_json::json!([])), "validators"),
    ];
    for (mutate, field) in cases {
        let mut bad = json.clone();
        mutate(&mut bad);
        std::fs::remove_file(&path).ok();
        write(&path, &serde_json::to_string_pretty(&bad).expect("serialise"));
        let error = GenesisDocument::load(&path).expect_err("refused");
        match &error {
            Error::Parse { field: found, .. } => assert_eq!(found, field, "{error}"),
            other => panic!("expected a field-named error for {field}, got {other}"),
        }
    }
    json["accounts"][0]["balance"] = u64::MAX.into();
    let mut second = json["accounts"][0].clone();
    second["address"] = "0x0101010101010101010101010101010101010101".into();
    json["accounts"].as_array_mut().expect("array").push(second);
    write(&path, &serde_json::to_string(&json).expect("serialise"));
    let error = GenesisDocument::load(&path).expect_err("supply overflow refused");
    assert!(error.to_string().contains("accounts[1]"), "{error}");
}
