//! `stele tx <kind> ... --key FILE --rpc URL [--nonce N] [--wait] [--offline] [--token-file FILE]`:
//! build, sign and submit a transaction.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use consensus::{ChainId, PublicKey};
use ledger::{Address, Payload, Role, Transaction, ValidatorInfo};
use rpc::{
    api::SteleApiClient,
    types::{TxState, TxStatus, to_hex},
};

use super::rpc_client::{client_with_token, describe, token};

/// What every transaction command takes.
#[derive(Args, Debug)]
pub struct Common {
    /// The signer's key file.
    #[arg(long)]
    key: PathBuf,
    /// A node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26601")]
    rpc: String,
    /// The nonce (default: the account's next nonce, asked from the node).
    #[arg(long)]
    nonce: Option<u64>,
    /// Wait until the transaction is committed and print its receipt.
    #[arg(long)]
    wait: bool,
    /// Print the signed transaction as 0x-hex instead of sending it (needs --nonce and
    /// --chain-id; contacts no node).
    #[arg(long)]
    offline: bool,
    /// The chain id (default: asked from the node; required with --offline).
    #[arg(long)]
    chain_id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// A file holding the node's submit token, for a node that sets rpc.submit_token_file
    /// (default: $STELE_RPC_TOKEN, if set).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

/// The transaction kinds.
#[derive(Subcommand, Debug)]
pub enum TxCommand {
    /// Move balance to another account (needs the transact role).
    Transfer {
        /// Recipient address (0x + 40 hex).
        #[arg(long)]
        to: Address,
        /// Amount.
        #[arg(long)]
        amount: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Create new balance (needs the mint role).
    Mint {
        /// Recipient address.
        #[arg(long)]
        to: Address,
        /// Amount.
        #[arg(long)]
        amount: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Set a record (needs the write role). Keys and values are text, or hex with a 0x prefix.
    PutRecord {
        /// The record key.
        #[arg(long)]
        record: String,
        /// The value.
        #[arg(long)]
        value: String,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a record (needs the write role).
    DeleteRecord {
        /// The record key.
        #[arg(long)]
        record: String,
        #[command(flatten)]
        common: Common,
    },
    /// Give an account a role: transact, mint, write or admin (needs admin).
    GrantRole {
        /// The account.
        #[arg(long)]
        account: Address,
        /// The role.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        common: Common,
    },
    /// Take a role from an account (needs admin).
    RevokeRole {
        /// The account.
        #[arg(long)]
        account: Address,
        /// The role.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        common: Common,
    },
    /// Add a validator, in force `validator_change_delay` blocks after it commits (needs admin).
    AddValidator {
        /// Its unique name.
        #[arg(long)]
        name: String,
        /// Its consensus public key (0x hex; `stele keys show` prints it).
        #[arg(long)]
        public_key: PublicKey,
        /// Its node's libp2p peer id (`stele keys show` of its node key prints it).
        #[arg(long)]
        peer_id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a validator (needs admin).
    RemoveValidator {
        /// Its consensus public key.
        #[arg(long)]
        public_key: PublicKey,
        #[command(flatten)]
        common: Common,
    },
}

/// Text as UTF-8 bytes, or `0x...` as hex.
fn bytes_of(text: &str) -> anyhow::Result<Vec<u8>> {
    match text.strip_prefix("0x") {
        Some(digits) => hex::decode(digits).with_context(|| format!("{text:?} is not hex")),
        None => Ok(text.as_bytes().to_vec()),
    }
}

impl TxCommand {
    fn split(self) -> anyhow::Result<(Payload, Common)> {
        Ok(match self {
            TxCommand::Transfer { to, amount, common } => (Payload::Transfer { to, amount }, common),
            TxCommand::Mint { to, amount, common } => (Payload::Mint { to, amount }, common),
            TxCommand::PutRecord { record, value, common } => {
                (Payload::PutRecord { key: bytes_of(&record)?, value: bytes_of(&value)? }, common)
            }
            TxCommand::DeleteRecord { record, common } => (Payload::DeleteRecord { key: bytes_of(&record)? }, common),
            TxCommand::GrantRole { account, role, common } => (Payload::GrantRole { account, role }, common),
            TxCommand::RevokeRole { account, role, common } => (Payload::RevokeRole { account, role }, common),
            TxCommand::AddValidator { name, public_key, peer_id, common } => {
                (Payload::AddValidator { validator: ValidatorInfo { name, public_key, peer_id } }, common)
            }
            TxCommand::RemoveValidator { public_key, common } => (Payload::RemoveValidator { public_key }, common),
        })
    }
}

/// Builds, signs and submits (or prints) the transaction.
pub fn run(command: TxCommand) -> anyhow::Result<()> {
    let (payload, common) = command.split()?;
    let key = genesis::load_key(&common.key)?;
    let signer = key.public_key();
    if common.offline {
        let (Some(nonce), Some(chain_id)) = (common.nonce, common.chain_id.as_deref()) else {
            anyhow::bail!("--offline needs --nonce and --chain-id (it contacts no node)");
        };
        let chain_id = ChainId::new(chain_id).map_err(|error| anyhow::anyhow!("--chain-id: {error}"))?;
        let signed = Transaction { chain_id, signer, nonce, payload }.sign(&key);
        println!("{}", to_hex(&signed.encode()));
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let token = token(common.token_file.as_deref())?;
        let client = client_with_token(&common.rpc, token.as_deref())?;
        let chain_id = match common.chain_id.as_deref() {
            Some(chain_id) => ChainId::new(chain_id).map_err(|error| anyhow::anyhow!("--chain-id: {error}"))?,
            None => client.chain_status().await.map_err(|error| describe(&common.rpc, error))?.chain_id,
        };
        let nonce = match common.nonce {
            Some(nonce) => nonce,
            None => {
                client
                    .state_get_account(Address::of(&signer), None)
                    .await
                    .map_err(|error| describe(&common.rpc, error))?
                    .nonce
            }
        };
        let signed = Transaction { chain_id, signer, nonce, payload }.sign(&key);
        let encoded = to_hex(&signed.encode());
        if common.wait {
            let status =
                client.tx_submit_and_wait(encoded, None).await.map_err(|error| describe(&common.rpc, error))?;
            print_status(&status, common.json)?;
            if status.receipt.as_ref().is_some_and(|receipt| !receipt.success) {
                anyhow::bail!("the transaction was committed but failed");
            }
        } else {
            let hash = client.tx_submit(encoded).await.map_err(|error| describe(&common.rpc, error))?;
            if common.json {
                println!("{}", serde_json::json!({ "hash": hash, "nonce": nonce }));
            } else {
                println!("submitted {hash} (nonce {nonce})");
            }
        }
        Ok(())
    })
}

/// Prints a transaction's status.
pub fn print_status(status: &TxStatus, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(status)?);
        return Ok(());
    }
    match (&status.status, &status.receipt) {
        (TxState::Committed, Some(receipt)) => {
            let outcome = match &receipt.failure {
                None => "succeeded".to_string(),
                Some(failure) => format!("FAILED: {failure}"),
            };
            println!(
                "{} committed at height {} (index {}): {outcome}",
                status.hash,
                status.height.unwrap_or_default(),
                status.index.unwrap_or_default()
            );
        }
        (TxState::Pending, _) => println!("{} pending", status.hash),
        _ => println!("{} unknown to this node", status.hash),
    }
    Ok(())
}
