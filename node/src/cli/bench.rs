//! `stele bench --rpc URL [--rpc URL ...] [--txs N] [--accounts K] [--rate R] [--json]`: load a
//! running network and report committed tx/s and commit latency.

use std::{path::PathBuf, time::Duration};

use clap::Args;

/// Load a running network with transfers and measure what it commits.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The nodes' JSON-RPC URLs (load is spread over all; commits are followed on the first).
    #[arg(long, required = true)]
    rpc: Vec<String>,
    /// Transfers to commit.
    #[arg(long, default_value_t = 100_000)]
    txs: u64,
    /// Sending accounts (funded first, not timed); at most 1,000 transfers each.
    #[arg(long, default_value_t = 200)]
    accounts: u64,
    /// Offered load in tx/s (default: as fast as the nodes accept).
    #[arg(long)]
    rate: Option<u64>,
    /// Key that funds the senders (admin and transact roles, a balance).
    #[arg(long, default_value = "testnet/faucet.key.json")]
    key: PathBuf,
    /// Transfers per JSON-RPC batch (at most the nodes' rpc.max_batch).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// JSON-RPC batches in flight to each node at once.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Give up waiting for commits after this long.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the load and prints the report.
pub fn run(arguments: BenchArgs) -> anyhow::Result<()> {
    let spec = testnet::bench::BenchSpec {
        rpc: arguments.rpc,
        funder: genesis::load_key(&arguments.key)?,
        txs: arguments.txs,
        accounts: arguments.accounts,
        rate: arguments.rate,
        batch: arguments.batch,
        in_flight: arguments.in_flight,
        timeout: arguments.timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(testnet::bench::run(&spec))?;
    if arguments.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "committed {} of {} transfers in {:.2} s: {:.0} tx/s, {} blocks ({:.2} blocks/s, {:.0} txs/block)",
        report.committed,
        report.submitted,
        report.seconds,
        report.tx_per_second,
        report.blocks,
        report.blocks_per_second,
        report.txs_per_block
    );
    println!(
        "submit-to-commit latency: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        report.latency_ms.p50, report.latency_ms.p90, report.latency_ms.p99, report.latency_ms.max
    );
    if report.refused > 0 {
        println!("refused: {} (first: {})", report.refused, report.first_refusal.unwrap_or_default());
    }
    Ok(())
}
