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

/// An error and its causes on one line, like `{:#}`, but without a cause whose text the line
/// already ends with: typed errors (the store's, the ledger's) show their source in their own
/// message and keep it as `source()` too, which `{:#}` would print twice.
pub fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("does not decode: {0}")]
    struct Typed(#[source] std::io::Error);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated_and_others_are_kept() {
        let io = std::io::Error::other("unexpected length of input");
        let error = anyhow::Error::new(Typed(io)).context("cannot open the store");
        assert_eq!(super::describe(&error), "cannot open the store: does not decode: unexpected length of input");
        let plain = anyhow::anyhow!("disk full").context("cannot write");
        assert_eq!(super::describe(&plain), "cannot write: disk full");
    }
}
