//! `stele audit --home DIR | --rpc URL [--rpc URL ...] [--json]`: re-verify a chain from its
//! genesis. Exit 0 only if everything verifies.

use std::{io::IsTerminal, path::PathBuf, time::Instant};

use anyhow::Context;
use clap::Args;
use consensus::{Digest, Height};
use ledger::{
    Block, BlockHeader, BlockReader, CertifiedBlock, Genesis, MemStore, RocksStore, SignedTransaction, StoreOptions,
    validate::apply_certified_block,
};
use rpc::{api::SteleApiClient, types};
use serde::Serialize;

use super::rpc_client::{client, describe};

/// Re-verify a chain from its genesis: links, timestamps, transaction roots, every certificate
/// against the validator set in force, and re-execution of every block (receipts, state roots).
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// A node's home folder: audits its store read-only (also while the node runs).
    #[arg(long, conflicts_with = "rpc", required_unless_present = "rpc")]
    home: Option<PathBuf>,
    /// A node's JSON-RPC URL: audits it from outside. Several: each is audited and they must agree
    /// block by block.
    #[arg(long)]
    rpc: Vec<String>,
    /// The genesis file (default: HOME/genesis.json; required with --rpc).
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints.
#[derive(Serialize, Debug)]
struct Report {
    valid: bool,
    sources: Vec<SourceReport>,
    /// The first height at which two sources hold different blocks.
    divergence: Option<Divergence>,
}

#[derive(Serialize, Debug)]
struct SourceReport {
    source: String,
    blocks: Height,
    transactions: u64,
    head_hash: Option<Digest>,
    seconds: f64,
    failure: Option<Failure>,
    #[serde(skip)]
    hashes: Vec<Digest>,
}

#[derive(Serialize, Debug)]
struct Failure {
    height: Height,
    reason: String,
}

#[derive(Serialize, Debug)]
struct Divergence {
    height: Height,
    first: (String, Digest),
    second: (String, Digest),
}

/// A progress bar on a terminal, a line per 1,000 blocks otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    source: String,
}

impl Progress {
    fn new(source: &str, total: Height) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} blocks, {per_sec}, eta {eta}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(source.to_string());
            bar
        });
        Progress { bar, source: source.to_string() }
    }

    fn at(&self, height: Height) {
        match &self.bar {
            Some(bar) => bar.set_position(height),
            None if height.is_multiple_of(1000) => eprintln!("{}: verified {height} blocks", self.source),
            None => {}
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs the audit; an invalid chain is an error (non-zero exit) after the report.
pub fn run(arguments: AuditArgs) -> anyhow::Result<()> {
    let genesis_path = match (&arguments.genesis, &arguments.home) {
        (Some(path), _) => path.clone(),
        (None, Some(home)) => home.join(genesis::files::GENESIS),
        (None, None) => anyhow::bail!("--rpc needs --genesis (the network's genesis.json)"),
    };
    let genesis = genesis::GenesisDocument::load(&genesis_path)?.to_ledger()?;
    let mut sources = Vec::new();
    if let Some(home) = &arguments.home {
        sources.push(audit_home(home, &genesis)?);
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        for url in &arguments.rpc {
            sources.push(runtime.block_on(audit_rpc(url, &genesis))?);
        }
    }
    let divergence = first_divergence(&sources);
    let valid = divergence.is_none() && sources.iter().all(|source| source.failure.is_none());
    let report = Report { valid, sources, divergence };
    print_report(&report, arguments.json)?;
    if !report.valid {
        anyhow::bail!("the audit failed");
    }
    Ok(())
}

fn audit_home(home: &std::path::Path, genesis: &Genesis) -> anyhow::Result<SourceReport> {
    let data = home.join(node::node::DATA_DIR);
    let store = RocksStore::open(&data, genesis, StoreOptions { sync_writes: false, read_only: true })
        .with_context(|| format!("cannot open the store at {}", data.display()))?;
    // The head's height only (for the progress bar): a damaged head header is the audit's to
    // report, at its height.
    let head = store.head_height()?;
    let source = home.display().to_string();
    let progress = Progress::new(&source, head);
    let started = Instant::now();
    let verdict = ledger::audit::audit_chain(&store, genesis, |height| progress.at(height));
    progress.done();
    let seconds = started.elapsed().as_secs_f64();
    // One home is one source: there is nothing to cross-check, so no hashes are collected.
    let hashes = Vec::new();
    Ok(match verdict {
        Ok(report) => SourceReport {
            source,
            blocks: report.blocks,
            transactions: report.transactions,
            head_hash: Some(report.head_hash),
            seconds,
            failure: None,
            hashes,
        },
        Err(failure) => SourceReport {
            source,
            blocks: failure.height.saturating_sub(1),
            transactions: 0,
            head_hash: None,
            seconds,
            failure: Some(Failure { height: failure.height, reason: failure.reason }),
            hashes,
        },
    })
}

/// Rebuilds a stored block from its JSON form, checking the hash the node claims.
fn block_from_json(block: &types::Block) -> Result<CertifiedBlock, String> {
    let json = &block.header;
    let header = BlockHeader {
        chain_id: block.certificate.chain_id.clone(),
        height: json.height,
        previous_hash: json.previous_hash,
        timestamp_ms: json.timestamp_ms,
        proposer: json.proposer,
        tx_root: json.tx_root,
        receipts_root: json.receipts_root,
        state_root: json.state_root,
        validator_set_digest: json.validator_set_digest,
    };
    if header.hash() != json.hash {
        return Err(format!(
            "the header's fields hash to {}, not the hash the node gives ({})",
            header.hash(),
            json.hash
        ));
    }
    let transactions = block
        .transactions
        .iter()
        .map(|tx| {
            let bytes = types::from_hex(&tx.raw)?;
            SignedTransaction::decode(&bytes, bytes.len()).map_err(|error| format!("transaction {}: {error}", tx.hash))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(CertifiedBlock { block: Block { header, transactions }, certificate: block.certificate.clone() })
}

async fn audit_rpc(url: &str, genesis: &Genesis) -> anyhow::Result<SourceReport> {
    let rpc = client(url)?;
    let head = rpc.chain_status().await.map_err(|error| describe(url, error))?.height;
    let replica = MemStore::new(genesis)?;
    let progress = Progress::new(url, head);
    let started = Instant::now();
    let (mut transactions, mut hashes, mut failure) = (0u64, Vec::new(), None);
    let mut next = 1;
    'pages: while next <= head {
        let page = rpc.chain_get_blocks(next, head).await.map_err(|error| describe(url, error))?;
        if page.is_empty() {
            failure = Some(Failure { height: next, reason: "the node returned no block".to_string() });
            break;
        }
        for json in &page {
            let height = json.header.height;
            let checked = if height != next {
                Err(format!("expected block {next}, got {height}"))
            } else {
                block_from_json(json).and_then(|certified| {
                    apply_certified_block(&replica, &certified).map_err(|error| error.to_string()).map(|()| certified)
                })
            };
            match checked {
                Ok(certified) => {
                    transactions += certified.block.transactions.len() as u64;
                    hashes.push(certified.block.hash());
                    progress.at(height);
                    next += 1;
                }
                Err(reason) => {
                    failure = Some(Failure { height: next, reason });
                    break 'pages;
                }
            }
        }
    }
    progress.done();
    let head_hash = failure.is_none().then(|| replica.head().map(|header| header.hash())).transpose()?;
    Ok(SourceReport {
        source: url.to_string(),
        blocks: next - 1,
        transactions,
        head_hash,
        seconds: started.elapsed().as_secs_f64(),
        failure,
        hashes,
    })
}

fn first_divergence(sources: &[SourceReport]) -> Option<Divergence> {
    let first = sources.first()?;
    for other in &sources[1..] {
        for (index, (a, b)) in first.hashes.iter().zip(&other.hashes).enumerate() {
            if a != b {
                return Some(Divergence {
                    height: index as Height + 1,
                    first: (first.source.clone(), *a),
                    second: (other.source.clone(), *b),
                });
            }
        }
    }
    None
}

fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    for source in &report.sources {
        match &source.failure {
            None => println!(
                "OK   {}: {} blocks, {} transactions verified from genesis in {:.2} s ({:.0} tx/s); head {}",
                source.source,
                source.blocks,
                source.transactions,
                source.seconds,
                source.transactions as f64 / source.seconds.max(1e-9),
                source.head_hash.map(|hash| hash.to_string()).unwrap_or_default(),
            ),
            Some(failure) => {
                println!("FAIL {}: height {}: {}", source.source, failure.height, failure.reason)
            }
        }
    }
    if let Some(divergence) = &report.divergence {
        println!(
            "FAIL nodes diverge at height {}: {} has {}, {} has {}",
            divergence.height, divergence.first.0, divergence.first.1, divergence.second.0, divergence.second.1
        );
    } else if report.sources.len() > 1 {
        println!("OK   the {} nodes agree block by block", report.sources.len());
    }
    Ok(())
}
