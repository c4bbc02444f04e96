//! `stele probe [--ready] [--rpc URL] [--timeout 2s]`: asks a node's `/health` (or `/ready`)
//! endpoint, prints the answer's body and succeeds only on HTTP 200. Made for health checks in
//! images that hold nothing but the `stele` binary (the docker image is built FROM scratch: no
//! shell, no curl), e.g. `["CMD", "/stele", "probe", "--ready", "--rpc", "http://127.0.0.1:26601"]`.

use std::time::Duration;

use clap::Args;
use rpc::probes::{Probe, probe};

/// What to ask, and where.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Ask `/ready` (synced, connected to a quorum, last block recent) instead of `/health`
    /// (the process serves).
    #[arg(long)]
    ready: bool,
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26601")]
    rpc: String,
    /// Give up (and fail) after this long without a complete answer.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// Probes once: prints the body; `Ok` only on HTTP 200.
pub fn run(arguments: ProbeArgs) -> anyhow::Result<()> {
    let which = if arguments.ready { Probe::Ready } else { Probe::Health };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answer = runtime.block_on(probe(&arguments.rpc, which, arguments.timeout))?;
    println!("{}", answer.body.trim_end());
    if answer.status != 200 {
        anyhow::bail!("{}{} answered HTTP {}", arguments.rpc.trim_end_matches('/'), which.path(), answer.status);
    }
    Ok(())
}
