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

#[test]
fn the_mempool_keys_for_transactions_behind_a_gap_parse_and_are_checked() {
    let defaults = crate::mempool::MempoolConfig::default();
    let section = Config::default().mempool;
    assert_eq!(section.max_queued_bytes, section.max_bytes / 16);
    assert_eq!(section.queued_expiry, Duration::from_secs(60));
    let config = load(
        "[mempool]\nmax_queued_bytes = 1024\nmax_queued_per_account = 3\nqueued_expiry = \"90s\"\n",
        &[("STELE__MEMPOOL__MAX_QUEUED", "7")],
    )
    .expect("valid");
    let mempool = crate::mempool::MempoolConfig::from(&config.mempool);
    assert_eq!(
        (mempool.max_queued, mempool.max_queued_bytes, mempool.max_queued_per_account, mempool.queued_expiry),
        (7, 1024, 3, Duration::from_secs(90))
    );
    assert_eq!((mempool.max_txs, mempool.max_bytes), (defaults.max_txs, defaults.max_bytes));
    // Holding nothing behind a gap is a choice (clients must then send nonces in order); never
    // letting such a transaction expire is not.
    load("[mempool]\nmax_queued_bytes = 0\nmax_queued_per_account = 0\n", &[]).expect("none held");
    let error = load("[mempool]\nqueued_expiry = \"0s\"\n", &[]).expect_err("never expires");
    assert_eq!(
        error,
        ConfigError::Invalid { key: "mempool.queued_expiry", message: "must be longer than 0s".to_string() }
    );
    let error = load("[mempool]\nqueued_expiry = 60\n", &[]).expect_err("a duration is written like \"60s\"");
    assert!(error.to_string().contains("queued_expiry"), "{error}");
}

#[test]
fn rpc_access_keys_are_checked_and_the_token_file_is_read_from_the_home() {
    let config = Config::default();
    assert!(config.rpc.allowed_hosts.is_empty() && config.rpc.submit_token_file.is_none());
    let error = load("[rpc]\nallowed_hosts = [\"https://node.example\"]\n", &[]).expect_err("not a host name");
    assert!(matches!(error, ConfigError::Invalid { key: "rpc.allowed_hosts", .. }), "{error}");
    let error = load("[rpc]\nallowed_hosts = [\"node.example:8545\"]\n", &[]).expect_err("a port");
    assert!(matches!(error, ConfigError::Invalid { key: "rpc.allowed_hosts", .. }), "{error}");
    load("[rpc]\nallowed_hosts = [\"node.example\", \"rpc-1.internal\"]\n", &[]).expect("host names");
    let error = load("[rpc]\nread_threads = 0\n", &[]).expect_err("no reads");
    assert!(matches!(error, ConfigError::Invalid { key: "rpc.read_threads", .. }), "{error}");
    let error = load("[rpc]\nsubmit_token_file = \"\"\n", &[]).expect_err("empty path");
    assert!(matches!(error, ConfigError::Invalid { key: "rpc.submit_token_file", .. }), "{error}");

    let home = tempfile::tempdir().expect("temp dir");
    let config = load("[rpc]\nsubmit_token_file = \"rpc.token\"\n", &[]).expect("a token file");
    let missing = config.rpc.limits(home.path()).expect_err("the file is missing");
    assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
    std::fs::write(home.path().join("rpc.token"), "short\n").expect("write");
    let short = config.rpc.limits(home.path()).expect_err("too short");
    assert!(matches!(short, ConfigError::Invalid { key: "rpc.submit_token_file", .. }), "{short}");
    std::fs::write(home.path().join("rpc.token"), "0123456789abcdef-not-shown\n").expect("write");
    let limits = config.rpc.limits(home.path()).expect("a token");
    assert!(limits.submit_token.is_some());
    assert!(!format!("{limits:?}").contains("not-shown"), "the token never shows: {limits:?}");
    assert!(Config::default().rpc.limits(home.path()).expect("defaults").submit_token.is_none());
}

#[test]
fn the_checks_section_is_on_by_default_parses_and_is_checked() {
    let defaults = Config::default().checks;
    assert!(defaults.enabled, "the scrub runs unless turned off");
    assert!(defaults.blocks_per_second >= 1);
    assert!(defaults.repair && defaults.compare_with_peers, "damage is repaired and peers compared unless turned off");
    let config = load(
        "[checks]\nenabled = false\nblocks_per_second = 5\npass_interval = \"1h\"\nstate_sample_interval = 1\nrepair = false\n\
         compare_with_peers = false\ncompare_interval = \"5s\"\ncheckpoint_interval = 10\n",
        &[("STELE__CHECKS__BLOCKS_PER_SECOND", "7")],
    )
    .expect("valid");
    assert_eq!(
        config.checks,
        ChecksConfig {
            enabled: false,
            blocks_per_second: 7,
            pass_interval: Duration::from_secs(3600),
            state_sample_interval: 1,
            repair: false,
            compare_with_peers: false,
            compare_interval: Duration::from_secs(5),
            checkpoint_interval: 10,
        }
    );
    for (text, key) in [
        ("[checks]\nblocks_per_second = 0\n", "checks.blocks_per_second"),
        ("[checks]\nstate_sample_interval = 0\n", "checks.state_sample_interval"),
        ("[checks]\npass_interval = \"0s\"\n", "checks.pass_interval"),
        ("[checks]\ncompare_interval = \"0s\"\n", "checks.compare_interval"),
        ("[checks]\ncheckpoint_interval = 0\n", "checks.checkpoint_interval"),
    ] {
        let error = load(text, &[]).expect_err(text);
        assert!(matches!(error, ConfigError::Invalid { key: found, .. } if found == key), "{text}: {error}");
    }
}
