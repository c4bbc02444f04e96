//! Launching and operating local networks of `stele` processes, the load generator behind
//! `stele bench`, and the multi-process fault tests.
//!
//! Drives `stele` as a process and talks to it over JSON-RPC; never links the node crate (so
//! the configuration it writes is plain TOML text, checked by the node when it starts).

pub mod bench;
mod compose;
pub mod faults;
pub mod flood;
mod generate;
mod launch;

pub use compose::{ComposeFiles, Subnet, compose_files, write_compose};
pub use generate::{DEFAULT_BASE_PORT, LocalNode, Testnet, TestnetSpec, generate, ports};
pub use launch::{LocalNetwork, NodeProcess, Running, exists, load, reset, start};

/// Why a local network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Generating keys and genesis failed.
    #[error(transparent)]
    Genesis(#[from] genesis::Error),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A node's config.toml is unreadable.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The network did not start.
    #[error("{0}")]
    Launch(String),
    /// The ports do not fit below 65536.
    #[error("base port {base_port} leaves no room for {validators} nodes (3 ports each)")]
    Ports {
        /// The base port asked for.
        base_port: u16,
        /// The number of nodes.
        validators: usize,
    },
}
