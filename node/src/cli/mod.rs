//! The command line: one module per command group, parsed with clap derive.

mod audit;
mod backup;
mod bench;
mod init;
mod keys;
mod make_genesis;
mod probe;
mod query;
mod rpc_client;
mod start;
mod testnet;
mod tx;
mod verify_proof;

use clap::{Parser, Subcommand};

/// Stele: a permissioned blockchain ledger node.
#[derive(Parser, Debug)]
#[command(name = "stele", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create and inspect key files.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Create one operator's node home: keys, config.toml and its public validator entry.
    Init(init::InitArgs),
    /// Build a genesis from validator entries, accounts and parameters; print its hash.
    Genesis(make_genesis::GenesisArgs),
    /// Run a node from its home folder until SIGINT or SIGTERM.
    Start(start::StartArgs),
    /// Copy a running node's store consistently (a RocksDB checkpoint).
    Backup(backup::BackupArgs),
    /// Ask a node's `/health` (or `/ready`) endpoint; exit 0 if it answers 200.
    Probe(probe::ProbeArgs),
    /// Local networks on 127.0.0.1.
    #[command(subcommand)]
    Testnet(testnet::TestnetCommand),
    /// Build, sign and submit a transaction (or print it with --offline).
    #[command(subcommand)]
    Tx(Box<tx::TxCommand>),
    /// Ask a node about the chain.
    #[command(subcommand)]
    Query(query::QueryCommand),
    /// Load a running network with transfers; report committed tx/s and latency.
    Bench(bench::BenchArgs),
    /// Re-verify a chain from its genesis, from a node's store or over JSON-RPC.
    Audit(audit::AuditArgs),
    /// Check a transaction proof bundle offline against a genesis file.
    VerifyProof(verify_proof::VerifyProofArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keys(command) => keys::run(command),
        Command::Init(arguments) => init::run(arguments),
        Command::Genesis(arguments) => make_genesis::run(arguments),
        Command::Start(arguments) => start::run(arguments),
        Command::Backup(arguments) => backup::run(arguments),
        Command::Probe(arguments) => probe::run(arguments),
        Command::Testnet(command) => testnet::run(command),
        Command::Tx(command) => tx::run(*command),
        Command::Query(command) => query::run(command),
        Command::VerifyProof(arguments) => verify_proof::run(arguments),
        Command::Audit(arguments) => audit::run(arguments),
        Command::Bench(arguments) => bench::run(arguments),
    }
}
