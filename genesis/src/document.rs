use std::{path::Path, time::Duration};

use consensus::{ChainId, Digest, PublicKey};
use ledger::{Address, Genesis, GenesisAccount, Params, Role, ValidatorInfo};
use serde::{Deserialize, Serialize};

use crate::{Error, invalid, io_error, parse_json};

/// A validator as `genesis.json` lists it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidatorEntry {
    /// Unique human-readable name.
    pub name: String,
    /// Consensus key (0x hex).
    pub public_key: PublicKey,
    /// libp2p peer id of its node key.
    pub peer_id: String,
}

/// An account as `genesis.json` lists it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccountEntry {
    /// The account (0x hex, 20 bytes).
    pub address: Address,
    /// Starting balance.
    #[serde(default)]
    pub balance: u64,
    /// Starting roles: any of `transact`, `mint`, `write`, `admin`.
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// The `genesis.json` document: everything a node needs to start the chain from nothing.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisDocument {
    /// Network name: 1 to 64 of `a-z 0-9 -`.
    pub chain_id: ChainId,
    /// Genesis time, RFC 3339 (`2026-11-23T10:00:00Z`); block 1 must be later.
    pub genesis_time: String,
    /// The first validators, in leader-rotation order.
    pub validators: Vec<GenesisValidatorEntry>,
    /// Initial accounts.
    #[serde(default)]
    pub accounts: Vec<GenesisAccountEntry>,
    /// Chain parameters; omitted fields cannot be, every node must agree on all of them.
    pub params: Params,
}

impl GenesisDocument {
    /// Reads and checks a `genesis.json`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let document: GenesisDocument = parse_json(path, &text)?;
        document.to_ledger().map_err(|error| match error {
            Error::Invalid { field, message } => Error::Parse { path: path.to_path_buf(), field, message },
            other => other,
        })?;
        Ok(document)
    }

    /// Writes the document as pretty JSON (refusing to overwrite an existing file).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self).expect("a genesis document always serialises");
        write_new(path, format!("{text}\n").as_bytes(), 0o644)
    }

    /// The genesis time in milliseconds since the Unix epoch.
    pub fn genesis_time_ms(&self) -> Result<u64, Error> {
        let time = humantime::parse_rfc3339(&self.genesis_time).map_err(|error| {
            invalid("genesis_time", format!("{error} (expected RFC 3339, e.g. 2026-11-23T10:00:00Z)"))
        })?;
        let since_epoch = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| invalid("genesis_time", "must be after 1970-01-01"))?;
        u64::try_from(since_epoch.as_millis()).map_err(|_| invalid("genesis_time", "too far in the future"))
    }

    /// The canonical genesis the ledger runs, after checking every field; errors name the field.
    pub fn to_ledger(&self) -> Result<Genesis, Error> {
        let genesis_time_ms = self.genesis_time_ms()?;
        if self.validators.is_empty() {
            return Err(invalid("validators", "at least one validator is required"));
        }
        for (index, validator) in self.validators.iter().enumerate() {
            let info = to_info(validator);
            info.validate().map_err(|message| invalid(format!("validators[{index}]"), message))?;
            if let Some(earlier) = self.validators[..index].iter().position(|other| {
                other.name == validator.name
                    || other.public_key == validator.public_key
                    || other.peer_id == validator.peer_id
            }) {
                return Err(invalid(
                    format!("validators[{index}]"),
                    format!("repeats the name, public key or peer id of validators[{earlier}]"),
                ));
            }
        }
        self.params.validate().map_err(|message| invalid("params", message))?;
        let genesis = Genesis {
            chain_id: self.chain_id.clone(),
            genesis_time_ms,
            validators: self.validators.iter().map(to_info).collect(),
            accounts: self
                .accounts
                .iter()
                .map(|entry| GenesisAccount {
                    address: entry.address,
                    balance: entry.balance,
                    roles: entry.roles.clone(),
                })
                .collect(),
            params: self.params.clone(),
        };
        genesis.validate().map_err(|error| match error {
            ledger::GenesisError::Account { index, reason } => invalid(format!("accounts[{index}]"), reason),
            ledger::GenesisError::Validators(reason) => invalid("validators", reason),
            ledger::GenesisError::Params(reason) => invalid("params", reason),
        })?;
        Ok(genesis)
    }

    /// The genesis hash every node of the network shares.
    pub fn hash(&self) -> Result<Digest, Error> {
        Ok(self.to_ledger()?.hash())
    }

    /// A document for `validators` with default parameters and the given time.
    pub fn new(chain_id: ChainId, genesis_time: std::time::SystemTime, validators: Vec<GenesisValidatorEntry>) -> Self {
        let time = genesis_time
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| std::time::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64))
            .unwrap_or(std::time::UNIX_EPOCH);
        GenesisDocument {
            chain_id,
            genesis_time: humantime::format_rfc3339_millis(time).to_string(),
            validators,
            accounts: Vec::new(),
            params: Params::default(),
        }
    }
}

fn to_info(entry: &GenesisValidatorEntry) -> ValidatorInfo {
    ValidatorInfo { name: entry.name.clone(), public_key: entry.public_key, peer_id: entry.peer_id.clone() }
}

/// Creates `path` with `mode` and writes `bytes`, failing if it exists.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(
        |source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Exists(path.to_path_buf()),
            _ => Error::Io { path: path.to_path_buf(), source },
        },
    )?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_error(path))
}

#[cfg(test)]
#[path = "document_test.rs"]
mod tests;
