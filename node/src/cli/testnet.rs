//! `stele testnet generate`: write a local network's files (`testnet up` arrives with the
//! testnet issue).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use consensus::ChainId;

#[derive(Subcommand, Debug)]
pub enum TestnetCommand {
    /// Write keys, genesis and one config.toml per validator (ports from --base-port).
    Generate(GenerateArgs),
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Number of validators (4 tolerates one faulty).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Folder to write into; must not hold a network yet.
    #[arg(long, default_value = "testnet")]
    dir: PathBuf,
    /// Node i uses base+3i (p2p), base+3i+1 (JSON-RPC), base+3i+2 (metrics).
    #[arg(long, default_value_t = testnet::DEFAULT_BASE_PORT)]
    base_port: u16,
    /// Chain id (a-z, 0-9 and '-').
    #[arg(long, default_value = "stele-local")]
    chain_id: String,
}

pub fn run(command: TestnetCommand) -> anyhow::Result<()> {
    match command {
        TestnetCommand::Generate(arguments) => {
            let chain_id = ChainId::new(&arguments.chain_id)
                .map_err(|error| anyhow::anyhow!("--chain-id {:?}: {error}", arguments.chain_id))?;
            let spec =
                testnet::TestnetSpec { chain_id, validators: arguments.validators, base_port: arguments.base_port };
            let generated = testnet::generate(&arguments.dir, &spec)?;
            println!("wrote a {}-validator network to {}", generated.nodes.len(), arguments.dir.display());
            println!("faucet key: {}", generated.network.faucet_key_path.display());
            println!("{:<8} {:<54} {:<24} start with", "node", "peer id", "rpc");
            for node in &generated.nodes {
                println!(
                    "{:<8} {:<54} {:<24} stele start --home {}",
                    node.name,
                    node.peer_id,
                    node.rpc_url,
                    node.home.display()
                );
            }
            Ok(())
        }
    }
}
