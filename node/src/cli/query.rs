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

/// How long before `now_ms` a time `at_ms` was, for people.
fn ago(at_ms: u64, now_ms: u64) -> String {
    let seconds = now_ms.saturating_sub(at_ms) / 1000;
    match seconds {
        0..120 => format!("{seconds} s ago"),
        120..7200 => format!("{} min ago", seconds / 60),
        _ => format!("{} h ago", seconds / 3600),
    }
}

/// The scrub's lines of `stele query status`: how far the pass got, the last completed pass,
/// and what is damaged (each value with its height and column).
fn scrub_lines(scrub: Option<&rpc::types::ScrubStatus>, head: Height, now_ms: u64) -> Vec<String> {
    let Some(scrub) = scrub else { return vec!["scrub:       not reported by this node".to_string()] };
    if !scrub.enabled {
        return vec!["scrub:       off (checks.enabled = false)".to_string()];
    }
    let progress = match scrub.next_pass_ms {
        Some(next) if next > now_ms => {
            format!("idle, checked to height {}; next pass in {} s", scrub.height, (next - now_ms) / 1000)
        }
        _ => format!("checking, at height {} of {head}", scrub.height),
    };
    let last = match scrub.last_pass_ms {
        Some(at) => format!("{} passes, the last completed {}", scrub.passes, ago(at, now_ms)),
        None => "no pass completed yet".to_string(),
    };
    let mut lines = vec![
        format!("scrub:       {progress}"),
        format!("             {last}"),
        format!(
            "             {} damaged values found, {} found intact again, {} damaged now",
            scrub.errors,
            scrub.repaired,
            scrub.damaged.len()
        ),
    ];
    lines.extend(
        scrub
            .damaged
            .iter()
            .map(|damage| format!("  damaged:   height {} column {}: {}", damage.height, damage.column, damage.reason)),
    );
    lines
}

/// The peer comparisons' lines of `stele query status`: the last comparison, and divergences
/// (each a safety violation) first and loud.
fn agreement_lines(agreement: Option<&rpc::types::AgreementStatus>, now_ms: u64) -> Vec<String> {
    let Some(agreement) = agreement else { return vec!["agreement:   not reported by this node".to_string()] };
    if !agreement.enabled {
        return vec!["agreement:   off (checks.compare_with_peers = false)".to_string()];
    }
    let mut lines = Vec::new();
    if agreement.divergences > 0 {
        lines.push(format!(
            "agreement:   DIVERGED: {} blocks peers hold certified differ from this node's (chain_getDivergences); \
             more than f validators are Byzantine",
            agreement.divergences
        ));
    }
    let last = match &agreement.last {
        Some(last) => format!(
            "last compared with {} {} at heights {:?}: {}",
            last.peer,
            ago(last.at_ms, now_ms),
            last.heights,
            if last.agreed { "agreed" } else { "did not agree" }
        ),
        None => "no peer compared yet".to_string(),
    };
    let prefix = if lines.is_empty() { "agreement:  " } else { "            " };
    lines.push(format!("{prefix} {last}"));
    lines
        .push(format!("             {} comparisons, {} bad answers", agreement.comparisons, agreement.invalid_answers));
    lines
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
                for line in scrub_lines(status.scrub.as_ref(), status.height, node::state_file::now_ms()) {
                    println!("{line}");
                }
                for line in agreement_lines(status.agreement.as_ref(), node::state_file::now_ms()) {
                    println!("{line}");
                }
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

#[cfg(test)]
mod tests {
    use rpc::types::{ScrubDamage, ScrubStatus};

    use super::*;

    #[test]
    fn status_shows_the_scrub_progress_last_pass_and_damage() {
        let now = 10_000_000;
        let scrub = ScrubStatus {
            enabled: true,
            height: 40,
            passes: 3,
            pass_started_ms: Some(now - 60_000),
            last_pass_ms: Some(now - 30_000),
            next_pass_ms: None,
            errors: 2,
            repaired: 1,
            damaged: vec![ScrubDamage { height: 12, column: "bodies".into(), reason: "does not decode".into() }],
        };
        assert_eq!(
            scrub_lines(Some(&scrub), 90, now),
            vec![
                "scrub:       checking, at height 40 of 90",
                "             3 passes, the last completed 30 s ago",
                "             2 damaged values found, 1 found intact again, 1 damaged now",
                "  damaged:   height 12 column bodies: does not decode",
            ]
        );
        let idle = ScrubStatus { next_pass_ms: Some(now + 5_000), damaged: Vec::new(), ..scrub };
        assert_eq!(scrub_lines(Some(&idle), 90, now)[0], "scrub:       idle, checked to height 40; next pass in 5 s");
        let off = ScrubStatus { enabled: false, ..ScrubStatus::default() };
        assert_eq!(scrub_lines(Some(&off), 90, now), vec!["scrub:       off (checks.enabled = false)"]);
        assert_eq!(scrub_lines(None, 90, now), vec!["scrub:       not reported by this node"]);
    }

    #[test]
    fn status_shows_the_last_peer_comparison_and_divergences_first() {
        let now = 10_000_000;
        let agreement = rpc::types::AgreementStatus {
            enabled: true,
            comparisons: 12,
            invalid_answers: 1,
            divergences: 0,
            last: Some(rpc::types::PeerComparison {
                peer: "12D3Koo".into(),
                at_ms: now - 4_000,
                heights: vec![200, 257],
                agreed: true,
            }),
        };
        assert_eq!(
            agreement_lines(Some(&agreement), now),
            vec![
                "agreement:   last compared with 12D3Koo 4 s ago at heights [200, 257]: agreed",
                "             12 comparisons, 1 bad answers",
            ]
        );
        let diverged = rpc::types::AgreementStatus { divergences: 2, ..agreement };
        let lines = agreement_lines(Some(&diverged), now);
        assert!(lines[0].starts_with("agreement:   DIVERGED: 2 blocks"), "{lines:?}");
        assert!(lines[1].starts_with("             last compared"), "{lines:?}");
        let off = rpc::types::AgreementStatus::default();
        assert_eq!(agreement_lines(Some(&off), now), vec!["agreement:   off (checks.compare_with_peers = false)"]);
    }
}
