//! `stele bench --rpc URL [--rpc URL ...] [--txs N] [--accounts K] [--rate R] [--json]`: load a
//! running network and report committed tx/s and commit latency.
//!
//! `stele bench --flood --rpc URL [--rpc URL ...]`: block interval and trickle commit latency
//! quiet, then while the first node is flooded (connections, oversized bodies and batches,
//! malformed JSON, idle and slow connections, a mempool flood), side by side with its RSS.

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
    /// Key that funds the senders (admin and transact roles, a balance); default: the faucet of
    /// `stele testnet up`'s network, ~/.stele/testnet/faucet.key.json.
    #[arg(long, default_value_os_t = super::testnet::default_folder("testnet").join("faucet.key.json"))]
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
    #[command(flatten)]
    flood: FloodArgs,
}

/// `--flood` and its settings (the other options then do not apply, but `--key`, `--rpc` and
/// `--json`).
#[derive(Args, Debug)]
struct FloodArgs {
    /// Measure block time quiet and under a flood of the first --rpc node instead.
    #[arg(long)]
    flood: bool,
    /// The flooded node's process id, for its RSS (default: the process listening on its RPC
    /// port, found through /proc).
    #[arg(long)]
    pid: Option<u32>,
    /// How long to measure before the flood.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    quiet: Duration,
    /// How long the flood lasts.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    flood_for: Duration,
    /// How long to measure after the flood.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Raw HTTP connections sending bad requests at once.
    #[arg(long, default_value_t = 256)]
    flood_connections: usize,
    /// Connections opened and left idle.
    #[arg(long, default_value_t = 64)]
    flood_idle: usize,
    /// WebSocket connections, each over the subscription limit.
    #[arg(long, default_value_t = 16)]
    flood_ws: usize,
    /// Accounts of the mempool flood (transact role, no balance), which offer fresh transfers
    /// as fast as the node answers; 0: no mempool flood.
    #[arg(long, default_value_t = 100)]
    flood_accounts: u64,
    /// The node's rpc.max_request_bytes (bodies are sent over it).
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    max_request_bytes: usize,
    /// The node's rpc.max_batch (batches are sent over it).
    #[arg(long, default_value_t = 100)]
    max_batch: usize,
    /// The node's rpc.max_subscriptions_per_connection.
    #[arg(long, default_value_t = 16)]
    max_subscriptions: usize,
    /// Pause between trickle transfers (each waits for its commit).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    trickle_interval: Duration,
}

/// Runs the load and prints the report.
pub fn run(arguments: BenchArgs) -> anyhow::Result<()> {
    if arguments.flood.flood {
        return run_flood(arguments);
    }
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

fn run_flood(arguments: BenchArgs) -> anyhow::Result<()> {
    let funder = genesis::load_key(&arguments.key)?;
    let flood = &arguments.flood;
    let mempool = (flood.flood_accounts > 0).then(|| testnet::flood::MempoolFlood {
        funder: funder.clone(),
        accounts: flood.flood_accounts,
        batch: arguments.batch.min(flood.max_batch).max(1),
        in_flight: arguments.in_flight.max(1),
    });
    let spec = testnet::bench::FloodBenchSpec {
        rpc: arguments.rpc.clone(),
        funder,
        pid: flood.pid,
        quiet: flood.quiet,
        settle: flood.settle,
        trickle_interval: flood.trickle_interval,
        flood: testnet::flood::FloodSpec {
            rpc: arguments.rpc.first().cloned().unwrap_or_default(),
            duration: flood.flood_for,
            http_connections: flood.flood_connections,
            idle_connections: flood.flood_idle,
            ws_connections: flood.flood_ws,
            max_request_bytes: flood.max_request_bytes,
            max_batch: flood.max_batch,
            max_subscriptions: flood.max_subscriptions,
            mempool,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(testnet::bench::run_flood(&spec))?;
    if arguments.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!("{:<22} {:>12} {:>12} {:>12}", "", "quiet", "flood", "after");
    let phases = [&report.quiet, &report.flood, &report.after];
    let row = |name: &str, value: &dyn Fn(&testnet::bench::PhaseFigures) -> String| {
        println!("{name:<22} {:>12} {:>12} {:>12}", value(phases[0]), value(phases[1]), value(phases[2]));
    };
    row("seconds", &|p| format!("{:.0}", p.seconds));
    row("blocks", &|p| p.blocks.to_string());
    row("txs/block", &|p| format!("{:.0}", p.txs_per_block));
    row("block interval mean", &|p| format!("{:.0} ms", p.block_interval_mean_ms));
    row("block interval p50", &|p| format!("{:.0} ms", p.block_interval_ms.p50));
    row("block interval p90", &|p| format!("{:.0} ms", p.block_interval_ms.p90));
    row("block interval max", &|p| format!("{:.0} ms", p.block_interval_ms.max));
    row("trickle committed", &|p| p.trickle_committed.to_string());
    row("trickle latency p50", &|p| format!("{:.0} ms", p.trickle_latency_ms.p50));
    row("trickle latency p90", &|p| format!("{:.0} ms", p.trickle_latency_ms.p90));
    row("trickle latency max", &|p| format!("{:.0} ms", p.trickle_latency_ms.max));
    row("trickle retries", &|p| p.trickle_retries.values().sum::<u64>().to_string());
    match &report.rss_kib {
        Some(rss) => println!(
            "node0 RSS (pid {}): before {} MiB, during max {} MiB, after {} MiB",
            rss.pid,
            rss.before / 1024,
            rss.during_max / 1024,
            rss.after / 1024
        ),
        None => println!("node0 RSS: process not found (pass --pid)"),
    }
    println!(
        "after the flood: node0 {} at height {}",
        if report.alive_after { "answers" } else { "DOES NOT ANSWER" },
        report.height_after
    );
    let answers = &report.answers;
    println!(
        "mempool flood: {} offered, {} admitted, refused {:?}",
        answers.mempool_offered, answers.mempool_admitted, answers.mempool_refused
    );
    for (kind, counts) in &answers.answers {
        println!("  {kind:<18} {counts:?}");
    }
    Ok(())
}
