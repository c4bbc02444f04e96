use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use consensus::{ChainId, PublicKey, SigningKey};
use ledger::{Address, Role};

use crate::{Error, GenesisAccountEntry, GenesisDocument, GenesisValidatorEntry, io_error, peer_id_of, write_key};

/// File names inside a network folder and each node's home.
pub mod files {
    /// The genesis document (in the network folder and in every home).
    pub const GENESIS: &str = "genesis.json";
    /// The funded key with every role (in the network folder).
    pub const FAUCET_KEY: &str = "faucet.key.json";
    /// A validator's consensus key (in its home).
    pub const VALIDATOR_KEY: &str = "validator.key.json";
    /// A node's libp2p identity key (in its home).
    pub const NODE_KEY: &str = "node.key.json";
    /// A validator's public entry for whoever assembles the genesis (in its home; no secret).
    pub const VALIDATOR_ENTRY: &str = "validator.public.json";
}

/// What network to generate.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    /// Network name.
    pub chain_id: ChainId,
    /// Number of validators (4 tolerates one Byzantine).
    pub validators: usize,
    /// Balance of the faucet account.
    pub faucet_balance: u64,
    /// Genesis time.
    pub genesis_time: SystemTime,
}

/// One generated validator node.
#[derive(Clone, Debug)]
pub struct GeneratedNode {
    /// Its name (`node0`, `node1`, ...), also its home folder's name.
    pub name: String,
    /// Its home folder.
    pub home: PathBuf,
    /// Its consensus public key.
    pub public_key: PublicKey,
    /// Its libp2p peer id.
    pub peer_id: String,
}

/// Everything [`generate_network`] wrote.
#[derive(Clone, Debug)]
pub struct GeneratedNetwork {
    /// The genesis document.
    pub genesis: GenesisDocument,
    /// Where it was written.
    pub genesis_path: PathBuf,
    /// The faucet key file.
    pub faucet_key_path: PathBuf,
    /// The faucet's account.
    pub faucet_address: Address,
    /// The validators, in genesis order.
    pub nodes: Vec<GeneratedNode>,
}

/// Writes a complete n-validator network into `dir`: fresh keys (mode 0600), a genesis with a
/// faucet holding every role, and one home folder per validator with its keys and the genesis.
/// Refuses a folder that already holds a genesis.
pub fn generate_network(dir: &Path, spec: &NetworkSpec) -> Result<GeneratedNetwork, Error> {
    if spec.validators == 0 || spec.validators > consensus::VALIDATOR_SET_MAX {
        return Err(crate::invalid(
            "validators",
            format!("must be 1 to {}, got {}", consensus::VALIDATOR_SET_MAX, spec.validators),
        ));
    }
    let genesis_path = dir.join(files::GENESIS);
    if genesis_path.exists() {
        return Err(Error::Exists(genesis_path));
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let key = || SigningKey::generate().map_err(|error| crate::invalid("keys", error));

    let mut nodes = Vec::with_capacity(spec.validators);
    let mut entries = Vec::with_capacity(spec.validators);
    for index in 0..spec.validators {
        let name = format!("node{index}");
        let home = dir.join(&name);
        std::fs::create_dir_all(&home).map_err(io_error(&home))?;
        let validator_key = key()?;
        let node_key = key()?;
        write_key(&home.join(files::VALIDATOR_KEY), &validator_key)?;
        write_key(&home.join(files::NODE_KEY), &node_key)?;
        let peer_id = peer_id_of(&node_key.public_key());
        entries.push(GenesisValidatorEntry {
            name: name.clone(),
            public_key: validator_key.public_key(),
            peer_id: peer_id.clone(),
        });
        nodes.push(GeneratedNode { name, home, public_key: validator_key.public_key(), peer_id });
    }

    let faucet = key()?;
    let faucet_key_path = dir.join(files::FAUCET_KEY);
    write_key(&faucet_key_path, &faucet)?;
    let faucet_address = Address::of(&faucet.public_key());
    let mut genesis = GenesisDocument::new(spec.chain_id.clone(), spec.genesis_time, entries);
    genesis.accounts.push(GenesisAccountEntry {
        address: faucet_address,
        balance: spec.faucet_balance,
        roles: Role::ALL.to_vec(),
    });
    genesis.to_ledger()?;
    for node in &nodes {
        genesis.save(&node.home.join(files::GENESIS))?;
    }
    // Written last: its presence marks a complete network folder.
    genesis.save(&genesis_path)?;
    Ok(GeneratedNetwork { genesis, genesis_path, faucet_key_path, faucet_address, nodes })
}
