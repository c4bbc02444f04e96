//! `config.toml`: every section has documented defaults, rejects unknown keys and checks its
//! values; any key can be overridden from the environment as `STELE__SECTION__KEY`.

use std::{net::SocketAddr, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

/// A configuration that cannot be used, naming the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// Not valid TOML of the expected shape (unknown keys included).
    #[error("{path}: {message}")]
    Parse {
        /// The file (or the environment variable).
        path: String,
        /// The parser's message, with the key and line.
        message: String,
    },
    /// A value that parses but cannot be used.
    #[error("{key}: {message}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, message: message.into() }
}

/// The node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Peer-to-peer networking.
    pub network: NetworkConfig,
    /// The JSON-RPC server.
    pub rpc: RpcConfig,
    /// The mempool.
    pub mempool: MempoolSection,
    /// Block production.
    pub consensus: ConsensusConfig,
    /// The RocksDB store.
    pub storage: StorageConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Logging.
    pub log: LogConfig,
    /// The background scrub of the stored chain.
    pub checks: ChecksConfig,
}

/// `[network]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// libp2p listen address (multiaddr).
    pub listen: String,
    /// The address other hosts dial to reach this node (multiaddr, without `/p2p/`), announced
    /// to peers; unset: the listen addresses are announced. Set it when `listen` is a wildcard
    /// (`/ip4/0.0.0.0/...`) or behind NAT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_address: Option<String>,
    /// Peers to dial at start (multiaddrs ending in `/p2p/<peer id>`); Kademlia finds the rest.
    pub bootstrap: Vec<String>,
    /// Peer ids admitted besides the validators (observers).
    pub observers: Vec<String>,
    /// Most simultaneous connections.
    pub max_connections: u32,
    /// Largest gossip or sync message, in bytes.
    pub max_message_bytes: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            listen: "/ip4/127.0.0.1/tcp/26656".to_string(),
            external_address: None,
            bootstrap: Vec::new(),
            observers: Vec::new(),
            max_connections: 64,
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}

/// `[rpc]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// HTTP and WebSocket listen address; loopback by default.
    pub listen: SocketAddr,
    /// Largest request body, in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes (a page of large blocks needs room).
    pub max_response_bytes: u32,
    /// Most calls in one batch request.
    pub max_batch: u32,
    /// Most simultaneous TCP connections, HTTP and WebSocket together (over it: HTTP 429).
    pub max_connections: u32,
    /// Most subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// An HTTP connection that sends no complete request head for this long (after connecting
    /// or after its last response) is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A request body not received whole within this long of its head gets HTTP 408.
    #[serde(with = "humantime_serde")]
    pub request_body_timeout: Duration,
    /// A WebSocket silent and deaf to pings for this long is closed.
    #[serde(with = "humantime_serde")]
    pub ws_idle_timeout: Duration,
    /// Origins allowed by CORS; empty allows none. Any request carrying an `Origin` header
    /// (every WebSocket upgrade and cross-origin call a browser makes) from another origin gets
    /// HTTP 403.
    pub cors_origins: Vec<String>,
    /// Host names a request's `Host` header may name besides IP addresses and `localhost`
    /// (say, the name of a proxy in front of the node); others get HTTP 403, which defeats DNS
    /// rebinding.
    pub allowed_hosts: Vec<String>,
    /// A file holding the bearer token that `tx_submit` and `tx_submitAndWait` then need
    /// (`Authorization: Bearer <token>`); relative to the home folder. Unset: anyone who can
    /// reach the port may submit. Reads never need it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_token_file: Option<std::path::PathBuf>,
    /// Most store reads the RPC server runs at once, each on a thread of the blocking pool (not
    /// on the async workers the consensus driver needs).
    pub read_threads: u32,
    /// `GET /ready` answers 503 while the last committed block is older than this (with no
    /// load, blocks come every `consensus.empty_block_interval`, so keep it above that).
    #[serde(with = "humantime_serde")]
    pub ready_max_block_age: Duration,
}

impl RpcConfig {
    /// Most `read_threads` accepted.
    pub const READ_THREADS_MAX: u32 = 256;

    /// The server's limits and access rules, reading the submit token file (relative paths from
    /// `home`). The token itself is never logged or shown.
    pub fn limits(&self, home: &Path) -> Result<rpc::Limits, ConfigError> {
        let submit_token = match &self.submit_token_file {
            None => None,
            Some(file) => {
                let path = home.join(file);
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(&path)
                    .map_err(|error| ConfigError::Read { path: shown.clone(), message: error.to_string() })?;
                warn_if_readable_by_others(&path);
                let token = rpc::SubmitToken::new(&text)
                    .map_err(|error| invalid("rpc.submit_token_file", format!("{shown}: {error}")))?;
                Some(token)
            }
        };
        Ok(rpc::Limits {
            max_request_bytes: self.max_request_bytes,
            max_response_bytes: self.max_response_bytes,
            max_batch: self.max_batch,
            max_connections: self.max_connections,
            max_subscriptions_per_connection: self.max_subscriptions_per_connection,
            idle_timeout: self.idle_timeout,
            request_body_timeout: self.request_body_timeout,
            ws_idle_timeout: self.ws_idle_timeout,
            cors_origins: self.cors_origins.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            submit_token,
            read_threads: self.read_threads as usize,
            ready_max_block_age: self.ready_max_block_age,
        })
    }

    /// Checks the `[rpc]` keys that [`Config::validate`] does not check with other sections'.
    fn validate(&self) -> Result<(), ConfigError> {
        let host_name = |host: &String| {
            !host.is_empty() && host.bytes().all(|byte| byte.is_ascii_alphanumeric() || b".-_".contains(&byte))
        };
        if let Some(bad) = self.allowed_hosts.iter().find(|host| !host_name(host)) {
            return Err(invalid(
                "rpc.allowed_hosts",
                format!(
                    "{bad:?} must be a host name such as node.example (no scheme, port or path; IP addresses and \
                     localhost are always allowed)"
                ),
            ));
        }
        if self.submit_token_file.as_ref().is_some_and(|file| file.as_os_str().is_empty()) {
            return Err(invalid("rpc.submit_token_file", "must name a file (or be left out)"));
        }
        if !(1..=Self::READ_THREADS_MAX).contains(&self.read_threads) {
            return Err(invalid("rpc.read_threads", format!("must be between 1 and {}", Self::READ_THREADS_MAX)));
        }
        Ok(())
    }
}

/// A token file others can read is a token others can use: say so (the node still starts).
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{:o}", metadata.permissions().mode() & 0o777),
                "rpc.submit_token_file is readable by other users; chmod 600 it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8545)),
            max_request_bytes: 2 * 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            max_batch: 100,
            max_connections: 256,
            max_subscriptions_per_connection: 16,
            idle_timeout: Duration::from_secs(60),
            request_body_timeout: Duration::from_secs(20),
            ws_idle_timeout: Duration::from_secs(60),
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            submit_token_file: None,
            read_threads: rpc::READ_THREADS_DEFAULT as u32,
            ready_max_block_age: Duration::from_secs(120),
        }
    }
}

/// `[mempool]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolSection {
    /// Most pending transactions.
    pub max_txs: usize,
    /// Most pending bytes.
    pub max_bytes: usize,
    /// Most pending transactions per account.
    pub max_per_account: usize,
    /// Highest nonce accepted above an account's next one.
    pub max_nonce_ahead: u64,
    /// Most pending transactions waiting behind a nonce gap (part of `max_txs`).
    pub max_queued: usize,
    /// Most bytes of pending transactions waiting behind a nonce gap (part of `max_bytes`).
    pub max_queued_bytes: usize,
    /// Most transactions of one account waiting behind a nonce gap.
    pub max_queued_per_account: usize,
    /// A transaction still waiting behind a nonce gap this long after admission is dropped.
    #[serde(with = "humantime_serde")]
    pub queued_expiry: Duration,
}

impl Default for MempoolSection {
    fn default() -> Self {
        let defaults = crate::mempool::MempoolConfig::default();
        MempoolSection {
            max_txs: defaults.max_txs,
            max_bytes: defaults.max_bytes,
            max_per_account: defaults.max_per_account,
            max_nonce_ahead: defaults.max_nonce_ahead,
            max_queued: defaults.max_queued,
            max_queued_bytes: defaults.max_queued_bytes,
            max_queued_per_account: defaults.max_queued_per_account,
            queued_expiry: defaults.queued_expiry,
        }
    }
}

impl MempoolSection {
    /// Checks what the shared checks in [`Config::validate`] do not.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.queued_expiry.is_zero() {
            return Err(invalid("mempool.queued_expiry", "must be longer than 0s"));
        }
        Ok(())
    }
}

impl From<&MempoolSection> for crate::mempool::MempoolConfig {
    fn from(section: &MempoolSection) -> Self {
        crate::mempool::MempoolConfig {
            max_txs: section.max_txs,
            max_bytes: section.max_bytes,
            max_per_account: section.max_per_account,
            max_nonce_ahead: section.max_nonce_ahead,
            max_queued: section.max_queued,
            max_queued_bytes: section.max_queued_bytes,
            max_queued_per_account: section.max_queued_per_account,
            queued_expiry: section.queued_expiry,
        }
    }
}

/// `[consensus]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// With no transactions pending, still propose an (empty) block this often, so liveness is
    /// visible; `0s` never does.
    #[serde(with = "humantime_serde")]
    pub empty_block_interval: Duration,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig { empty_block_interval: Duration::from_secs(30) }
    }
}

/// `[storage]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// fsync every committed block (turning it off risks losing the last blocks on power loss).
    pub sync_writes: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { sync_writes: true }
    }
}

/// `[checks]`: the background scrub, which re-verifies the stored chain while the node runs
/// (see `crate::scrub`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// Run the scrub.
    pub enabled: bool,
    /// Most blocks checked per second: each costs a few point reads, a hash per transaction
    /// and receipt, and two batch checks of 2f+1 signatures.
    pub blocks_per_second: u32,
    /// A full pass starts at most this often (counted from the start of the previous one).
    #[serde(with = "humantime_serde")]
    pub pass_interval: Duration,
    /// The state is proven against the certified state root at heights that are multiples of
    /// this (1: every height): one proof for the validator schedule and one per sender.
    pub state_sample_interval: u64,
    /// Repair what the scrub finds damaged: a block's header, body or certificate with a peer's
    /// certified copy (checked as block sync checks blocks), its receipts and index entries by
    /// re-executing it on the certified state before it. Repaired values are checked as
    /// committed ones are; unrepaired ones stay errors on every read.
    pub repair: bool,
    /// Compare this node's certified blocks with its peers' ([`crate::agreement`]).
    pub compare_with_peers: bool,
    /// Peers are asked for their certified head and checkpoint this often.
    #[serde(with = "humantime_serde")]
    pub compare_interval: Duration,
    /// The checkpoint compared is the highest multiple of this at or below the head.
    pub checkpoint_interval: u64,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            enabled: true,
            blocks_per_second: 20,
            pass_interval: Duration::from_secs(24 * 3600),
            state_sample_interval: 100,
            repair: true,
            compare_with_peers: true,
            compare_interval: Duration::from_secs(30),
            checkpoint_interval: 100,
        }
    }
}

/// `[metrics]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Prometheus listen address (loopback by default).
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: Some(SocketAddr::from(([127, 0, 0, 1], 9615))) }
    }
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter (`info`, `stele=debug,libp2p=warn`).
    pub filter: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { filter: "info".to_string(), format: LogFormat::Text }
    }
}

/// Prefix of environment overrides: `STELE__RPC__LISTEN=127.0.0.1:9000`.
pub const ENV_PREFIX: &str = "STELE__";

impl Config {
    /// Reads `path` (defaults if it does not exist), applies `STELE__SECTION__KEY` overrides
    /// from `environment`, and checks the result.
    pub fn load(path: &Path, environment: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(ConfigError::Read { path: shown, message: error.to_string() }),
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| ConfigError::Parse { path: shown.clone(), message: error.to_string() })?;
        for (name, value) in environment {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let parse_error = |message: String| ConfigError::Parse { path: format!("${name}"), message };
            let Some((section, key)) = rest.split_once("__") else {
                return Err(parse_error("expected STELE__SECTION__KEY".to_string()));
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            // A value is TOML if it parses as one (numbers, booleans, arrays), else a string.
            let parsed = format!("value = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut wrapper| wrapper.remove("value"))
                .unwrap_or(toml::Value::String(value.clone()));
            let entry = table.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = entry else {
                return Err(parse_error(format!("[{section}] is not a section")));
            };
            section_table.insert(key, parsed);
        }
        let config: Config = Config::deserialize(table)
            .map_err(|error| ConfigError::Parse { path: shown, message: error.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.network.listen.starts_with('/') {
            return Err(invalid("network.listen", "must be a multiaddr such as /ip4/127.0.0.1/tcp/26656"));
        }
        if let Some(external) = &self.network.external_address
            && (!external.starts_with('/') || external.contains("/p2p/"))
        {
            return Err(invalid(
                "network.external_address",
                format!("{external:?} must be a multiaddr such as /ip4/203.0.113.7/tcp/26656 (without /p2p/)"),
            ));
        }
        if let Some(bad) = self.network.bootstrap.iter().find(|peer| !peer.starts_with('/') || !peer.contains("/p2p/"))
        {
            return Err(invalid("network.bootstrap", format!("{bad:?} must be a multiaddr ending in /p2p/<peer id>")));
        }
        if let Some(bad) =
            self.rpc.cors_origins.iter().find(|origin| {
                !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/')
            })
        {
            return Err(invalid(
                "rpc.cors_origins",
                format!("{bad:?} must be an origin such as https://app.example (scheme and host, no path)"),
            ));
        }
        self.rpc.validate()?;
        let positive: [(&'static str, u64); 13] = [
            ("checks.checkpoint_interval", self.checks.checkpoint_interval),
            ("checks.blocks_per_second", self.checks.blocks_per_second.into()),
            ("checks.state_sample_interval", self.checks.state_sample_interval),
            ("network.max_connections", self.network.max_connections.into()),
            ("network.max_message_bytes", self.network.max_message_bytes as u64),
            ("rpc.max_request_bytes", self.rpc.max_request_bytes.into()),
            ("rpc.max_response_bytes", self.rpc.max_response_bytes.into()),
            ("rpc.max_batch", self.rpc.max_batch.into()),
            ("rpc.max_connections", self.rpc.max_connections.into()),
            ("rpc.max_subscriptions_per_connection", self.rpc.max_subscriptions_per_connection.into()),
            ("mempool.max_txs", self.mempool.max_txs as u64),
            ("mempool.max_bytes", self.mempool.max_bytes as u64),
            ("mempool.max_per_account", self.mempool.max_per_account as u64),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(invalid(key, "must be at least 1"));
        }
        let durations = [
            ("rpc.idle_timeout", self.rpc.idle_timeout),
            ("rpc.request_body_timeout", self.rpc.request_body_timeout),
            ("rpc.ws_idle_timeout", self.rpc.ws_idle_timeout),
            ("rpc.ready_max_block_age", self.rpc.ready_max_block_age),
            ("checks.pass_interval", self.checks.pass_interval),
            ("checks.compare_interval", self.checks.compare_interval),
        ];
        if let Some((key, _)) = durations.iter().find(|(_, value)| value.is_zero()) {
            return Err(invalid(key, "must be longer than 0s"));
        }
        self.mempool.validate()?;
        if self.log.filter.trim().is_empty() {
            return Err(invalid("log.filter", "must not be empty (use \"info\")"));
        }
        Ok(())
    }

    /// The defaults as a commented `config.toml`.
    pub fn default_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).expect("the defaults always serialise");
        format!(
            "# Stele node configuration. Every key is optional; these are the defaults.\n# Override any key with STELE__SECTION__KEY=value.\n\n{body}"
        )
    }
}

#[cfg(test)]
#[path = "config_test.rs"]
mod tests;
