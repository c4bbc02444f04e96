//! `stele query <status|block|tx|account|record|validators|proof> ... --rpc URL`.

use clap::{Args, Subcommand};
use consensus::{Digest, Height};
use ledger::Address;
use rpc::{
    api::{ProofTarget, SteleApiClient},
    types::{BlockId, to_hex},
};
use serde::Serialize;

use super::rpc_client::{client, describe};

/// Where to ask and how to print.
#[derive(Args, Debug)]
pub struct Common {
    /// A node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26601")]
    rpc: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What to ask.
#[derive(Subcommand, Debug)]
pub enum QueryCommand {
    /// The node's head, state root, view, role, peers.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// A block by height or 0x hash, with its certificate and transactions.
    Block {
        /// Height or hash.
        block: String,
        #[command(flatten)]
        common: Common,
    },
    /// A transaction's status and receipt.
    Tx {
        /// Its hash.
        hash: Digest,
        #[command(flatten)]
        common: Common,
    },
    /// A self-contained proof that a transaction was committed (JSON; check it offline with
    /// `stele verify-proof FILE --genesis genesis.json`).
    TxProof {
        /// The transaction's hash.
        hash: Digest,
        #[command(flatten)]
        common: Common,
    },
    /// An account's balance, nonce and roles.
    Account {
        /// Its address.
        address: Address,
        /// At this height (default: the head).
        #[arg(long)]
        height: Option<Height>,
        #[command(flatten)]
        common: Common,
    },
    /// A record (text key, or hex with 0x).
    Record {
        /// The key.
        key: String,
        /// At this height (default: the head).
        #[arg(long)]
        height: Option<Height>,
        #[command(flatten)]
        common: Common,
    },
    /// The validator set certifying a height (default: the next block).
    Validators {
        /// The height.
        #[arg(long)]
        height: Option<Height>,
        #[command(flatten)]
        common: Common,
    },
    /// A state proof of an account (0x + 40 hex) or a record key, with its certified header.
    Proof {
        /// An address, or a record key (text, or hex with 0x).
        target: String,
        /// At this height (default: the head).
        #[arg(long)]
        height: Option<Height>,
        #[command(flatten)]
        common: Common,
    },
}

fn record_key(text: &str) -> anyhow::Result<String> {
    Ok(match text.strip_prefix("0x") {
        Some(digits) => {
            hex::decode(digits).map_err(|error| anyhow::anyhow!("{text:?} is not hex: {error}"))?;
            text.to_string()
        }
        None => to_hex(text.as_bytes()),
    })
}

fn print(value: &impl Serialize, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", serde_json::to_string_pretty(value)?);
    }
    Ok(())
}

/// Asks the node and prints the answer.
pub fn run(command: QueryCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        match command {
            QueryCommand::Status { common } => {
                let rpc = client(&common.rpc)?;
                let status = rpc.chain_status().await.map_err(|error| describe(&common.rpc, error))?;
                if common.json {
                    return print(&status, true);
                }
                println!("chain:       {}", status.chain_id);
                println!("height:      {} ({})", status.height, status.head_hash);
                println!("state root:  {}", status.state_root);
                println!("view:        {}", status.view);
                println!("role:        {}", status.role);
                println!("peers:       {}", status.peers);
                println!("syncing:     {}", status.syncing);
                println!("mempool:     {} transactions", status.mempool_txs);
                Ok(())
            }
            QueryCommand::Block { block, common } => {
                let id = match block.parse::<Height>() {
                    Ok(height) => BlockId::Height(height),
                    Err(_) => BlockId::Hash(
                        block.parse().map_err(|_| anyhow::anyhow!("{block:?} is neither a height nor a 0x hash"))?,
                    ),
                };
                let rpc = client(&common.rpc)?;
                print(&rpc.chain_get_block(id).await.map_err(|error| describe(&common.rpc, error))?, common.json)
            }
            QueryCommand::Tx { hash, common } => {
                let rpc = client(&common.rpc)?;
                let status = rpc.tx_get(hash).await.map_err(|error| describe(&common.rpc, error))?;
                super::tx::print_status(&status, common.json)
            }
            QueryCommand::TxProof { hash, common } => {
                let rpc = client(&common.rpc)?;
                print(&rpc.tx_get_proof(hash).await.map_err(|error| describe(&common.rpc, error))?, common.json)
            }
            QueryCommand::Account { address, height, common } => {
                let rpc = client(&common.rpc)?;
                let account =
                    rpc.state_get_account(address, height).await.map_err(|error| describe(&common.rpc, error))?;
                if common.json {
                    return print(&account, true);
                }
                let roles: Vec<String> = account.roles.iter().map(ToString::to_string).collect();
                println!("address: {}", account.address);
                println!("balance: {}", account.balance);
                println!("nonce:   {}", account.nonce);
                println!("roles:   {}", if roles.is_empty() { "none".to_string() } else { roles.join(", ") });
                println!("height:  {}", account.height);
                Ok(())
            }
            QueryCommand::Record { key, height, common } => {
                let rpc = client(&common.rpc)?;
                let record = rpc
                    .state_get_record(record_key(&key)?, height)
                    .await
                    .map_err(|error| describe(&common.rpc, error))?;
                print(&record, common.json)
            }
            QueryCommand::Validators { height, common } => {
                let rpc = client(&common.rpc)?;
                print(
                    &rpc.chain_get_validators(height).await.map_err(|error| describe(&common.rpc, error))?,
                    common.json,
                )
            }
            QueryCommand::Proof { target, height, common } => {
                let target = match target.parse::<Address>() {
                    Ok(address) => ProofTarget::Account(address),
                    Err(_) => ProofTarget::Record(record_key(&target)?),
                };
                let rpc = client(&common.rpc)?;
                print(
                    &rpc.state_get_proof(target, height).await.map_err(|error| describe(&common.rpc, error))?,
                    common.json,
                )
            }
        }
    })
}
