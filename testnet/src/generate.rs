//! `stele testnet generate`: keys, genesis and one `config.toml` per validator, with every
//! node on 127.0.0.1 at ports derived from one base port.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use consensus::ChainId;
use genesis::{GeneratedNetwork, NetworkSpec, generate_network};

use crate::Error;

/// First port used when none is given.
pub const DEFAULT_BASE_PORT: u16 = 26600;
/// Balance of the faucet account of a generated network.
pub const FAUCET_BALANCE: u64 = 1_000_000_000_000;

/// What to generate.
#[derive(Clone, Debug)]
pub struct TestnetSpec {
    /// The chain id.
    pub chain_id: ChainId,
    /// Number of validators.
    pub validators: usize,
    /// Node `i` uses ports `base_port + 3i` (p2p), `+ 1` (JSON-RPC) and `+ 2` (metrics).
    pub base_port: u16,
}

/// The ports of node `index`: (p2p, rpc, metrics).
pub fn ports(base_port: u16, index: usize) -> Option<(u16, u16, u16)> {
    let p2p = u16::try_from(usize::from(base_port) + 3 * index).ok()?;
    Some((p2p, p2p.checked_add(1)?, p2p.checked_add(2)?))
}

/// One generated node.
#[derive(Clone, Debug)]
pub struct LocalNode {
    /// Its name (`node0`, ...).
    pub name: String,
    /// Its home folder (for `stele start --home`).
    pub home: PathBuf,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Its p2p multiaddr, with the peer id.
    pub p2p_address: String,
    /// Its JSON-RPC URL.
    pub rpc_url: String,
    /// Its metrics URL.
    pub metrics_url: String,
}

/// A generated local network.
#[derive(Clone, Debug)]
pub struct Testnet {
    /// Keys and genesis.
    pub network: GeneratedNetwork,
    /// The nodes with their addresses.
    pub nodes: Vec<LocalNode>,
}

/// Writes a network into `dir`: keys, genesis, and a `config.toml` per node in which every
/// node lists every other as a bootstrap peer. Refuses a folder that already has a genesis.
pub fn generate(dir: &Path, spec: &TestnetSpec) -> Result<Testnet, Error> {
    let port_error = || Error::Ports { base_port: spec.base_port, validators: spec.validators };
    if spec.validators == 0 || ports(spec.base_port, spec.validators - 1).is_none() {
        return Err(port_error());
    }
    let network = generate_network(
        dir,
        &NetworkSpec {
            chain_id: spec.chain_id.clone(),
            validators: spec.validators,
            faucet_balance: FAUCET_BALANCE,
            genesis_time: SystemTime::now(),
        },
    )?;
    let mut nodes = Vec::with_capacity(network.nodes.len());
    for (index, node) in network.nodes.iter().enumerate() {
        let (p2p, rpc, metrics) = ports(spec.base_port, index).ok_or_else(port_error)?;
        nodes.push(LocalNode {
            name: node.name.clone(),
            home: node.home.clone(),
            peer_id: node.peer_id.clone(),
            p2p_address: format!("/ip4/127.0.0.1/tcp/{p2p}/p2p/{}", node.peer_id),
            rpc_url: format!("http://127.0.0.1:{rpc}"),
            metrics_url: format!("http://127.0.0.1:{metrics}/metrics"),
        });
    }
    for (index, node) in nodes.iter().enumerate() {
        let (p2p, rpc, metrics) = ports(spec.base_port, index).ok_or_else(port_error)?;
        let bootstrap: Vec<String> = nodes
            .iter()
            .filter(|other| other.name != node.name)
            .map(|other| format!("{:?}", other.p2p_address))
            .collect();
        let text = format!(
            "# {name} of the local network {chain}, written by `stele testnet generate`.\n\
             # Every other key has its default; see docs/operations.md.\n\n\
             [network]\nlisten = \"/ip4/127.0.0.1/tcp/{p2p}\"\nbootstrap = [{bootstrap}]\n\n\
             [rpc]\nlisten = \"127.0.0.1:{rpc}\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics}\"\n",
            name = node.name,
            chain = spec.chain_id,
            bootstrap = bootstrap.join(", "),
        );
        let path = node.home.join("config.toml");
        std::fs::write(&path, text).map_err(|source| Error::Io { path, source })?;
    }
    Ok(Testnet { network, nodes })
}
