use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{ChainId, Digest};

use crate::{
    Account, Address, Params, Role, Roles, ValidatorInfo, ValidatorSchedule, encode,
    state::{LastBlock, keys},
};

/// An account funded or empowered by the genesis.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct GenesisAccount {
    /// The account.
    pub address: Address,
    /// Its starting balance.
    pub balance: u64,
    /// Its starting roles.
    pub roles: Vec<Role>,
}

/// The canonical content of a genesis document: what the genesis hash commits to and what the
/// state at height 0 is built from. (The `genesis` crate reads and checks the JSON file.)
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Genesis {
    /// The chain.
    pub chain_id: ChainId,
    /// Genesis time in milliseconds since the Unix epoch; block 1 must be later.
    pub genesis_time_ms: u64,
    /// The first validator set, in leader-rotation order.
    pub validators: Vec<ValidatorInfo>,
    /// Initial accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Chain parameters.
    pub params: Params,
}

/// Errors in a genesis that would make it unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum GenesisError {
    /// The validators do not form a set.
    #[error("validators: {0}")]
    Validators(String),
    /// An account entry is unusable.
    #[error("accounts[{index}]: {reason}")]
    Account {
        /// Position in `accounts`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A parameter is unusable.
    #[error("params: {0}")]
    Params(String),
}

impl Genesis {
    /// The genesis hash: sha3-256 of a domain tag and the borsh encoding, so JSON formatting
    /// never changes it.
    pub fn hash(&self) -> Digest {
        Digest::of_parts(&[b"stele/genesis/v1", &borsh::to_vec(self).expect("encoding to a Vec cannot fail")])
    }

    /// Checks what the ledger relies on: a valid validator set, distinct funded accounts whose
    /// balances sum without overflow, usable parameters.
    pub fn validate(&self) -> Result<(), GenesisError> {
        self.params.validate().map_err(GenesisError::Params)?;
        for validator in &self.validators {
            validator.validate().map_err(|reason| GenesisError::Validators(format!("{}: {reason}", validator.name)))?;
        }
        ValidatorSchedule::starting(0, self.validators.clone())
            .set_at(0)
            .map_err(|error| GenesisError::Validators(error.to_string()))?;
        let mut names = std::collections::HashSet::new();
        let mut peers = std::collections::HashSet::new();
        for validator in &self.validators {
            if !names.insert(&validator.name) {
                return Err(GenesisError::Validators(format!("name {:?} appears twice", validator.name)));
            }
            if !peers.insert(&validator.peer_id) {
                return Err(GenesisError::Validators(format!("peer id {} appears twice", validator.peer_id)));
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut supply: u64 = 0;
        for (index, account) in self.accounts.iter().enumerate() {
            if !seen.insert(account.address) {
                return Err(GenesisError::Account {
                    index,
                    reason: format!("address {} appears twice", account.address),
                });
            }
            supply = supply.checked_add(account.balance).ok_or_else(|| GenesisError::Account {
                index,
                reason: "balances sum to more than the largest supply (2^64 - 1)".to_string(),
            })?;
        }
        Ok(())
    }

    /// The state at height 0, as key/value writes.
    pub fn state_writes(&self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        let mut writes = BTreeMap::new();
        let mut supply: u64 = 0;
        for account in &self.accounts {
            supply = supply.saturating_add(account.balance);
            let state = Account { balance: account.balance, nonce: 0, roles: Roles::of(&account.roles) };
            writes.insert(keys::account(&account.address), Some(encode(&state)));
        }
        writes.insert(keys::SUPPLY.to_vec(), Some(encode(&supply)));
        writes.insert(keys::PARAMS.to_vec(), Some(encode(&self.params)));
        let schedule = ValidatorSchedule::starting(0, self.validators.clone());
        writes.insert(keys::VALIDATORS.to_vec(), Some(encode(&schedule)));
        let last = LastBlock { height: 0, timestamp_ms: self.genesis_time_ms };
        writes.insert(keys::LAST_BLOCK.to_vec(), Some(encode(&last)));
        writes
    }
}
