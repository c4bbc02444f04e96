//! `stele start --home DIR`: run one node until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use node::{config::Config, logging, node::Node};
use tracing::info;

/// Run one node from its home folder.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Home folder: config.toml (optional), genesis.json, validator.key.json (optional: without
    /// it the node is an observer), node.key.json (created if missing) and data/.
    #[arg(long)]
    home: PathBuf,
}

/// Runs the node; returns after a clean shutdown, or with the fatal error that stopped it.
pub fn run(arguments: StartArgs) -> anyhow::Result<()> {
    // Test builds only: arms the store's crash points named in FAILPOINTS (see
    // `ledger::store::FAILPOINTS`); a release build has none.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let config_path = arguments.home.join(node::node::CONFIG_FILE);
    let config = Config::load(&config_path, std::env::vars())?;
    logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    runtime.block_on(async {
        let node = Node::start(&arguments.home, &config).await?;
        for address in &node.p2p_addresses {
            info!("p2p address: {address}/p2p/{}", node.peer_id);
        }
        node.run_until(shutdown_signal()).await
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        _ = terminate.recv() => info!("SIGTERM: shutting down"),
    }
}
