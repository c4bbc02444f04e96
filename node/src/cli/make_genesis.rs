//! `stele genesis --validator FILE... --out genesis.json`: builds a network's genesis from the
//! public entries its operators' `stele init` wrote, plus accounts and parameters; checks it as
//! a node checks the genesis it loads, writes it (never over an existing file) and prints its
//! hash. `stele genesis --hash FILE` prints the hash of a genesis, so every operator can check
//! the one they were sent.
//!
//! The genesis hash is the one nodes already use: sha3-256 of the tag `stele/genesis/v1` and
//! the canonical (borsh) encoding of the genesis content, the `previous_hash` of block 1 and the
//! `genesis_hash` of `stele query status`; reformatting the JSON does not change it.

use std::{path::PathBuf, time::SystemTime};

use anyhow::{Context, bail};
use clap::Args;
use consensus::ChainId;
use genesis::{BuiltGenesis, GenesisAccountEntry, GenesisDocument, GenesisPlan, build_genesis};
use ledger::{Address, Params, Role};

/// Build a genesis from validator entries, or print a genesis's hash.
#[derive(Args, Debug)]
pub struct GenesisArgs {
    /// Print the hash of this genesis (checked as a node checks it) instead of building one.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["validators", "accounts", "faucet_key", "chain_id", "params", "genesis_time", "out"]
    )]
    hash: Option<PathBuf>,
    /// A validator's public entry (the validator.public.json of its `stele init`); repeat for
    /// each, in leader-rotation order.
    #[arg(long = "validator", value_name = "FILE", required_unless_present = "hash")]
    validators: Vec<PathBuf>,
    /// An initial account: ADDRESS=BALANCE, or ADDRESS=BALANCE:ROLE,... with roles transact,
    /// mint, write, admin or all; repeat for more.
    #[arg(long = "account", value_name = "ADDRESS=BALANCE[:ROLES]", value_parser = parse_account)]
    accounts: Vec<GenesisAccountEntry>,
    /// A key file (`stele keys generate`) whose account gets every role and --faucet-balance:
    /// the network's first admin, who can add validators. Only its public key is read.
    #[arg(long, value_name = "FILE")]
    faucet_key: Option<PathBuf>,
    /// The faucet account's balance.
    #[arg(long, default_value_t = 1_000_000_000_000)]
    faucet_balance: u64,
    /// The chain id (default: the one the entries name).
    #[arg(long)]
    chain_id: Option<String>,
    /// A chain parameter, KEY=VALUE (min_validators=4, validator_change_delay=2, ...); every
    /// other parameter keeps its default. Repeat for more.
    #[arg(long = "param", visible_alias = "params", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Genesis time, RFC 3339 (default: now); block 1 must be later.
    #[arg(long)]
    genesis_time: Option<String>,
    /// Where to write the genesis; refused if it exists.
    #[arg(long, value_name = "FILE", required_unless_present = "hash")]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Builds and writes the genesis, or prints the hash of one.
pub fn run(arguments: GenesisArgs) -> anyhow::Result<()> {
    if let Some(path) = &arguments.hash {
        let document = GenesisDocument::load(path)?;
        let hash = document.hash()?;
        if arguments.json {
            let value = serde_json::json!({
                "genesis_hash": hash.to_string(),
                "chain_id": document.chain_id.as_str(),
                "validators": document.validators.len(),
            });
            println!("{value}");
        } else {
            println!("{hash}  {}", path.display());
        }
        return Ok(());
    }
    let out = arguments.out.clone().context("--out is required")?;
    if out.symlink_metadata().is_ok() {
        bail!("{} already exists; refusing to overwrite it", out.display());
    }
    let mut accounts = arguments.accounts.clone();
    if let Some(path) = &arguments.faucet_key {
        let key = genesis::load_key(path)
            .with_context(|| format!("--faucet-key (make one with `stele keys generate --out {}`)", path.display()))?;
        accounts.push(GenesisAccountEntry {
            address: Address::of(&key.public_key()),
            balance: arguments.faucet_balance,
            roles: Role::ALL.to_vec(),
        });
    }
    let chain_id = match &arguments.chain_id {
        Some(text) => Some(ChainId::new(text.as_str()).map_err(|error| anyhow::anyhow!("--chain-id: {error}"))?),
        None => None,
    };
    let genesis_time = match &arguments.genesis_time {
        Some(text) => humantime::parse_rfc3339(text).with_context(|| format!("--genesis-time {text:?}"))?,
        None => SystemTime::now(),
    };
    let plan = GenesisPlan {
        chain_id,
        genesis_time,
        validators: arguments.validators.clone(),
        accounts,
        params: params(&arguments.params)?,
    };
    let built = build_genesis(&plan)?;
    built.document.save(&out)?;
    report(&built, &out, arguments.json);
    Ok(())
}

/// `ADDRESS=BALANCE[:ROLE,...]`.
fn parse_account(text: &str) -> Result<GenesisAccountEntry, String> {
    let (address, rest) = text.split_once('=').ok_or("expected ADDRESS=BALANCE[:ROLES]")?;
    let address: Address = address.parse().map_err(|error| format!("address {address:?}: {error}"))?;
    let (balance, roles) = rest.split_once(':').unwrap_or((rest, ""));
    let balance = balance.parse().map_err(|error| format!("balance {balance:?}: {error}"))?;
    let roles = match roles {
        "" => Vec::new(),
        "all" => Role::ALL.to_vec(),
        list => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
    };
    Ok(GenesisAccountEntry { address, balance, roles })
}

/// The default parameters with each `KEY=VALUE` applied.
fn params(settings: &[String]) -> anyhow::Result<Params> {
    let mut value = serde_json::to_value(Params::default()).context("parameters")?;
    let object = value.as_object_mut().context("parameters are an object")?;
    for setting in settings {
        let Some((key, number)) = setting.split_once('=') else {
            bail!("--param {setting:?}: expected KEY=VALUE");
        };
        let Some(slot) = object.get_mut(key) else {
            let known: Vec<&str> = object.keys().map(String::as_str).collect();
            bail!("--param {key}: no such parameter (known: {})", known.join(", "));
        };
        let number: u64 = number.parse().with_context(|| format!("--param {key}: {number:?} is not a number"))?;
        *slot = number.into();
    }
    serde_json::from_value(value).context("--param")
}

fn report(built: &BuiltGenesis, out: &std::path::Path, json: bool) {
    let bootstrap: Vec<String> = built.entries.iter().map(genesis::ValidatorEntry::p2p_address).collect();
    if json {
        let value = serde_json::json!({
            "out": out.display().to_string(),
            "genesis_hash": built.hash.to_string(),
            "chain_id": built.document.chain_id.as_str(),
            "validators": built.entries.iter().map(|entry| serde_json::json!({
                "name": entry.name,
                "public_key": entry.public_key.to_string(),
                "peer_id": entry.peer_id,
                "p2p_address": entry.p2p_address(),
            })).collect::<Vec<_>>(),
            "accounts": built.document.accounts.len(),
            "bootstrap": bootstrap,
        });
        println!("{value}");
        return;
    }
    println!(
        "wrote {}: chain {}, {} validators, {} accounts",
        out.display(),
        built.document.chain_id,
        built.entries.len(),
        built.document.accounts.len()
    );
    println!("genesis hash: {}", built.hash);
    println!(
        "Send it to every operator: each puts it in its home as genesis.json, checks that \
         `stele genesis --hash HOME/genesis.json` prints this hash, and lists the other validators in \
         network.bootstrap of its config.toml:"
    );
    let quoted: Vec<String> = bootstrap.iter().map(|address| format!("{address:?}")).collect();
    println!("bootstrap = [{}]", quoted.join(", "));
}
