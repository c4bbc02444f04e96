use super::*;

fn load(text: &str, environment: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write");
    Config::load(&path, environment.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn a_missing_file_means_defaults_and_the_defaults_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::load(&dir.path().join("absent.toml"), Vec::new()).expect("defaults");
    assert_eq!(config, Config::default());
    assert_eq!(load(&Config::default_toml(), &[]).expect("defaults file"), Config::default());
    assert_eq!(config.rpc.listen.ip().to_string(), "127.0.0.1", "loopback by default");
    assert!(config.rpc.cors_origins.is_empty());
    assert!(config.storage.sync_writes);
}

#[test]
fn values_durations_and_sections_parse() {
    let config =
        load("[consensus]\nempty_block_interval = \"2s\"\n[rpc]\nmax_batch = 7\n[log]\nformat = \"json\"\n", &[])
            .expect("valid");
    assert_eq!(config.consensus.empty_block_interval, Duration::from_secs(2));
    assert_eq!(config.rpc.max_batch, 7);
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn unknown_keys_and_bad_values_are_refused_by_name() {
    let error = load("[rpc]\nmax_batchh = 7\n", &[]).expect_err("unknown key");
    assert!(error.to_string().contains("max_batchh"), "{error}");
    let error = load("[surprise]\n", &[]).expect_err("unknown section");
    assert!(error.to_string().contains("surprise"), "{error}");
    let error = load("[rpc]\nmax_batch = 0\n", &[]).expect_err("zero");
    assert_eq!(error, ConfigError::Invalid { key: "rpc.max_batch", message: "must be at least 1".to_string() });
    let error = load("[consensus]\nempty_block_interval = \"soon\"\n", &[]).expect_err("bad duration");
    assert!(error.to_string().contains("empty_block_interval"), "{error}");
    let error = load("[network]\nbootstrap = [\"/ip4/127.0.0.1/tcp/1\"]\n", &[]).expect_err("no peer id");
    assert!(matches!(error, ConfigError::Invalid { key: "network.bootstrap", .. }));
    assert!(matches!(load("not = [valid", &[]), Err(ConfigError::Parse { .. })));
    let error = load("[rpc]\ncors_origins = [\"app.example\"]\n", &[]).expect_err("not an origin");
    assert!(matches!(error, ConfigError::Invalid { key: "rpc.cors_origins", .. }));
    load("[rpc]\ncors_origins = [\"https://app.example\"]\n", &[]).expect("an origin");
}

#[test]
fn the_environment_overrides_the_file() {
    let config = load(
        "[rpc]\nmax_batch = 7\n",
        &[
            ("STELE__RPC__MAX_BATCH", "9"),
            ("STELE__RPC__LISTEN", "127.0.0.1:9000"),
            ("STELE__STORAGE__SYNC_WRITES", "false"),
            ("STELE__NETWORK__OBSERVERS", "[\"12D3KooWObserver\"]"),
            ("UNRELATED", "1"),
        ],
    )
    .expect("valid");
    assert_eq!(config.rpc.max_batch, 9);
    assert_eq!(config.rpc.listen, SocketAddr::from(([127, 0, 0, 1], 9000)));
    assert!(!config.storage.sync_writes);
    assert_eq!(config.network.observers, vec!["12D3KooWObserver".to_string()]);
    let error = load("", &[("STELE__RPC__NOPE", "1")]).expect_err("unknown key from the environment");
    assert!(error.to_string().contains("nope"), "{error}");
    assert!(matches!(load("", &[("STELE__RPC", "1")]), Err(ConfigError::Parse { .. })));
}

#[test]
fn docs_show_the_real_defaults() {
    let docs = include_str!("../../docs/operations.md");
    assert!(
        docs.contains(&Config::default_toml()),
        "docs/operations.md must contain Config::default_toml() verbatim:\n{}",
        Config::default_toml()
    );
}
