//! `stele init --home DIR`: one operator's node home, made on the operator's own host: the
//! consensus key and the node key (mode 0600, never leaving the host), a `config.toml`, and the
//! public validator entry (`validator.public.json`) to send to whoever assembles the genesis.
//! Everything is checked before anything is written; a home that exists and is not empty is
//! refused untouched.

use std::{
    io::Write,
    net::SocketAddr,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use clap::Args;
use consensus::{ChainId, SigningKey};
use genesis::{GenesisDocument, ValidatorEntry, files};
use libp2p::{Multiaddr, multiaddr::Protocol};
use node::{config::Config, node::CONFIG_FILE};

/// Create one operator's node home.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The home folder to create; refused if it exists and is not empty.
    #[arg(long)]
    home: PathBuf,
    /// The validator's name in the genesis, unique in the network (default: this host's name).
    #[arg(long)]
    name: Option<String>,
    /// libp2p listen address (network.listen).
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/26656")]
    listen: String,
    /// The address other hosts dial (network.external_address), announced to peers and put in
    /// the entry; needed when --listen is a wildcard (0.0.0.0) or behind NAT.
    #[arg(long)]
    external_address: Option<String>,
    /// JSON-RPC listen address (rpc.listen; default: the config default, loopback).
    #[arg(long)]
    rpc: Option<SocketAddr>,
    /// Prometheus listen address (metrics.listen; default: the config default, loopback).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// The chain the entry is for; a genesis of another chain refuses it.
    #[arg(long)]
    chain_id: Option<String>,
    /// The genesis of a running network to join, checked and copied into the home.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// A peer to dial at start (multiaddr ending in /p2p/<peer id>); repeat for more.
    #[arg(long)]
    bootstrap: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Checks every argument, then writes the home; on a failed write, removes what it wrote.
pub fn run(arguments: InitArgs) -> anyhow::Result<()> {
    refuse_existing_home(&arguments.home)?;
    let listen: Multiaddr = arguments.listen.parse().with_context(|| format!("--listen {:?}", arguments.listen))?;
    let external = match &arguments.external_address {
        Some(text) => {
            let address: Multiaddr = text.parse().with_context(|| format!("--external-address {text:?}"))?;
            if address.iter().any(|protocol| matches!(protocol, Protocol::P2p(_))) {
                bail!("--external-address {text:?}: give the address without /p2p/ (the peer id is added)");
            }
            if !matches!(address.iter().next(), Some(Protocol::Ip4(_) | Protocol::Ip6(_))) {
                bail!("--external-address {text:?}: give an /ip4/ or /ip6/ address (nodes do not resolve names)");
            }
            Some(address)
        }
        None => None,
    };
    let announced = match &external {
        Some(address) => address.clone(),
        None if not_dialable(&listen) => bail!(
            "--listen {listen} is not an address other hosts can dial (a wildcard or port 0): \
             give --external-address, the address peers reach this host at"
        ),
        None => listen.clone(),
    };
    for peer in &arguments.bootstrap {
        let address: Multiaddr = peer.parse().with_context(|| format!("--bootstrap {peer:?}"))?;
        if !matches!(address.iter().last(), Some(Protocol::P2p(_))) {
            bail!("--bootstrap {peer:?} must end in /p2p/<peer id>");
        }
    }
    let mut chain_id = match &arguments.chain_id {
        Some(text) => Some(ChainId::new(text.as_str()).map_err(|error| anyhow::anyhow!("--chain-id: {error}"))?),
        None => None,
    };
    let genesis = match &arguments.genesis {
        Some(path) => {
            let document = GenesisDocument::load(path)?;
            if let Some(given) = chain_id.as_ref().filter(|given| **given != document.chain_id) {
                bail!("--chain-id {given} but {} is the genesis of chain {}", path.display(), document.chain_id);
            }
            chain_id = Some(document.chain_id.clone());
            Some(document)
        }
        None => None,
    };
    let name = arguments.name.clone().unwrap_or_else(host_name);
    let config = config_text(&name, &arguments, &listen, external.as_ref())?;

    let generate = || SigningKey::generate().map_err(|error| anyhow::anyhow!("cannot generate a key: {error}"));
    let validator_key = generate()?;
    let node_key = generate()?;
    let entry = ValidatorEntry::new(&name, chain_id, &validator_key, &node_key, &announced.to_string())?;

    let home = &arguments.home;
    let created = !home.exists();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .with_context(|| format!("cannot create {}", home.display()))?;
    let entry_path = home.join(files::VALIDATOR_ENTRY);
    let written = (|| -> anyhow::Result<Option<consensus::Digest>> {
        genesis::write_key(&home.join(files::VALIDATOR_KEY), &validator_key)?;
        genesis::write_key(&home.join(files::NODE_KEY), &node_key)?;
        write_new(&home.join(CONFIG_FILE), config.as_bytes())?;
        entry.save(&entry_path)?;
        match &genesis {
            Some(document) => {
                document.save(&home.join(files::GENESIS))?;
                Ok(Some(document.hash()?))
            }
            None => Ok(None),
        }
    })();
    let genesis_hash = match written {
        Ok(hash) => hash,
        Err(error) => {
            remove_written(home, created);
            return Err(error);
        }
    };
    report(home, &entry, &entry_path, genesis_hash, arguments.json);
    Ok(())
}

fn refuse_existing_home(home: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(home).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => bail!(
            "{} exists and is not empty: refusing to touch it (`stele init` makes a new home; \
             move the old one away first)",
            home.display()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("{} cannot be used as a home", home.display())),
    }
}

/// A wildcard IP or port 0: fine to listen on, useless to dial.
fn not_dialable(address: &Multiaddr) -> bool {
    address.iter().any(|protocol| match protocol {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        Protocol::Tcp(port) => port == 0,
        _ => false,
    })
}

/// This host's name if it is a valid validator name, else `validator`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| {
            !name.is_empty()
                && name.len() <= ledger::state::VALIDATOR_NAME_MAX
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .unwrap_or_else(|| "validator".to_string())
}

/// The `config.toml` of the new home, checked as `stele start` will check it.
fn config_text(
    name: &str,
    arguments: &InitArgs,
    listen: &Multiaddr,
    external: Option<&Multiaddr>,
) -> anyhow::Result<String> {
    let quoted = |text: &str| toml::Value::String(text.to_string()).to_string();
    let defaults = Config::default();
    let rpc = arguments.rpc.unwrap_or(defaults.rpc.listen);
    let external = match external {
        Some(address) => format!("external_address = {}\n", quoted(&address.to_string())),
        None => {
            "# external_address = \"/ip4/203.0.113.7/tcp/26656\"   # what other hosts dial, if not listen\n".to_string()
        }
    };
    let bootstrap: Vec<String> = arguments.bootstrap.iter().map(|peer| quoted(peer)).collect();
    let metrics = match arguments.metrics.or(defaults.metrics.listen) {
        Some(address) => format!("listen = {}", quoted(&address.to_string())),
        None => String::new(),
    };
    let text = format!(
        "# Node {name}, written by `stele init`. Every other key has its default; see docs/operations.md.\n\n\
         [network]\n\
         listen = {listen}\n\
         {external}\
         # Peers dialled at start (multiaddrs ending in /p2p/<peer id>): `stele genesis` prints\n\
         # the validators' list. Kademlia finds the rest.\n\
         bootstrap = [{bootstrap}]\n\
         # Peer ids of nodes admitted besides the validators (observers).\n\
         observers = []\n\n\
         [rpc]\n\
         listen = {rpc}\n\n\
         [metrics]\n\
         {metrics}\n",
        listen = quoted(&listen.to_string()),
        bootstrap = bootstrap.join(", "),
        rpc = quoted(&rpc.to_string()),
    );
    let config: Config = toml::from_str(&text).context("the config.toml `stele init` would write")?;
    config.validate().context("the config.toml `stele init` would write")?;
    Ok(text)
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("cannot write {}", path.display()))
}

/// Best effort, after a failed write: the home as it was (absent, or empty).
fn remove_written(home: &Path, created: bool) {
    if created {
        let _ = std::fs::remove_dir_all(home);
        return;
    }
    for name in [files::VALIDATOR_KEY, files::NODE_KEY, CONFIG_FILE, files::VALIDATOR_ENTRY, files::GENESIS] {
        let _ = std::fs::remove_file(home.join(name));
    }
}

fn report(home: &Path, entry: &ValidatorEntry, entry_path: &Path, genesis_hash: Option<consensus::Digest>, json: bool) {
    if json {
        let value = serde_json::json!({
            "home": home.display().to_string(),
            "name": entry.name,
            "public_key": entry.public_key.to_string(),
            "peer_id": entry.peer_id,
            "p2p_address": entry.p2p_address(),
            "entry": entry_path.display().to_string(),
            "validator_key": home.join(files::VALIDATOR_KEY).display().to_string(),
            "node_key": home.join(files::NODE_KEY).display().to_string(),
            "config": home.join(CONFIG_FILE).display().to_string(),
            "genesis_hash": genesis_hash.map(|hash| hash.to_string()),
        });
        println!("{value}");
        return;
    }
    println!("created the home of validator {:?} in {}:", entry.name, home.display());
    for (file, what) in [
        (files::VALIDATOR_KEY, "consensus key (secret, mode 0600)"),
        (files::NODE_KEY, "node key (secret, mode 0600)"),
        (CONFIG_FILE, "configuration"),
        (files::VALIDATOR_ENTRY, "public validator entry"),
    ] {
        println!("  {file:<22} {what}");
    }
    println!("public key:  {}", entry.public_key);
    println!("peer id:     {}", entry.peer_id);
    println!("p2p address: {}", entry.p2p_address());
    match genesis_hash {
        None => {
            println!("entry file:  {}", entry_path.display());
            println!(
                "Send the entry file (only it: the key files stay here) to whoever assembles the genesis; \
                 then put the network's genesis.json in {} and run `stele start --home {}`.",
                home.display(),
                home.display()
            );
        }
        Some(hash) => {
            println!("genesis:     {} (hash {hash})", home.join(files::GENESIS).display());
            println!("entry file:  {}", entry_path.display());
            println!(
                "To follow the chain as an observer, the operators of the peers it dials list peer id {} in \
                 network.observers; to join the validators, an admin sends `stele tx add-validator` with the \
                 entry's name, public key and peer id. Then run `stele start --home {}`.",
                entry.peer_id,
                home.display()
            );
        }
    }
}
