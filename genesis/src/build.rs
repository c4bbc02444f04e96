//! Assembling a genesis from the validator entries of separate operators (`stele genesis`).

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use consensus::{ChainId, Digest};
use ledger::Params;

use crate::{Error, GenesisAccountEntry, GenesisDocument, ValidatorEntry};

/// What goes into the genesis.
#[derive(Clone, Debug)]
pub struct GenesisPlan {
    /// The chain; `None` takes the one the entries name (they must name one, the same).
    pub chain_id: Option<ChainId>,
    /// Genesis time; block 1 must be later.
    pub genesis_time: SystemTime,
    /// The validators' entry files, in leader-rotation order.
    pub validators: Vec<PathBuf>,
    /// Initial accounts.
    pub accounts: Vec<GenesisAccountEntry>,
    /// Chain parameters.
    pub params: Params,
}

/// A checked genesis and what it was made from.
#[derive(Clone, Debug)]
pub struct BuiltGenesis {
    /// The document to save.
    pub document: GenesisDocument,
    /// Its hash ([`GenesisDocument::hash`]), the one every node reports.
    pub hash: Digest,
    /// The entries, in genesis order (their addresses make the bootstrap list).
    pub entries: Vec<ValidatorEntry>,
}

/// Reads every entry and builds the genesis, refusing a foreign or malformed entry, two entries
/// sharing a name, key or peer id, fewer validators than `params.min_validators` (the genesis
/// would promise a fault tolerance it does not have), and anything the node's own check
/// ([`GenesisDocument::to_ledger`], run when a node loads a genesis) refuses. Writes nothing.
pub fn build_genesis(plan: &GenesisPlan) -> Result<BuiltGenesis, Error> {
    let entries: Vec<(&Path, ValidatorEntry)> = plan
        .validators
        .iter()
        .map(|path| Ok((path.as_path(), ValidatorEntry::load(path)?)))
        .collect::<Result<_, Error>>()?;
    let chain_id = match &plan.chain_id {
        Some(chain_id) => chain_id.clone(),
        None => entries.iter().find_map(|(_, entry)| entry.chain_id.clone()).ok_or_else(|| {
            crate::invalid("chain_id", "no chain id given, and no validator entry names one (stele init --chain-id)")
        })?,
    };
    for (path, entry) in &entries {
        if let Some(other) = entry.chain_id.as_ref().filter(|other| **other != chain_id) {
            return Err(Error::Foreign {
                path: path.to_path_buf(),
                message: format!("this entry was made for chain {:?}, not {:?}", other.as_str(), chain_id.as_str()),
            });
        }
    }
    for (index, (path, entry)) in entries.iter().enumerate() {
        for (earlier, first) in &entries[..index] {
            let shared = if first.public_key == entry.public_key {
                Some(("consensus public key", entry.public_key.to_string()))
            } else if first.peer_id == entry.peer_id {
                Some(("peer id", entry.peer_id.clone()))
            } else if first.name == entry.name {
                Some(("name", entry.name.clone()))
            } else {
                None
            };
            if let Some((what, value)) = shared {
                return Err(Error::Duplicate { what, value, first: earlier.to_path_buf(), second: path.to_path_buf() });
            }
        }
    }
    if entries.len() < plan.params.min_validators as usize {
        return Err(Error::TooFewValidators { count: entries.len(), min: plan.params.min_validators });
    }
    let mut document = GenesisDocument::new(
        chain_id,
        plan.genesis_time,
        entries.iter().map(|(_, entry)| entry.to_genesis()).collect(),
    );
    document.accounts = plan.accounts.clone();
    document.params = plan.params.clone();
    let hash = document.hash()?;
    Ok(BuiltGenesis { document, hash, entries: entries.into_iter().map(|(_, entry)| entry).collect() })
}

#[cfg(test)]
#[path = "build_test.rs"]
mod tests;
