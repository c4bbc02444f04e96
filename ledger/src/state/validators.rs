use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{Height, PublicKey, ValidatorSet};
use serde::{Deserialize, Serialize};

/// Longest validator name accepted, in bytes.
pub const VALIDATOR_NAME_MAX: usize = 64;
/// Longest libp2p peer id text accepted, in bytes.
pub const PEER_ID_MAX: usize = 128;

/// A validator as the ledger knows it: a name for people, the consensus key that signs votes, and
/// the libp2p peer id the network admits.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorInfo {
    /// Human-readable name, unique in the set.
    pub name: String,
    /// Consensus public key.
    pub public_key: PublicKey,
    /// libp2p peer id (base58 text).
    pub peer_id: String,
}

impl ValidatorInfo {
    /// Checks the name and peer id are well-formed; names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > VALIDATOR_NAME_MAX {
            return Err(format!("name must be 1 to {VALIDATOR_NAME_MAX} bytes"));
        }
        if !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            return Err(format!("name {:?} may contain only ASCII letters, digits, '-', '_' and '.'", self.name));
        }
        if self.peer_id.is_empty() || self.peer_id.len() > PEER_ID_MAX {
            return Err(format!("peer_id must be 1 to {PEER_ID_MAX} bytes"));
        }
        if !self.peer_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("peer_id {:?} is not base58 text", self.peer_id));
        }
        Ok(())
    }
}

/// The validator sets in force from given heights on: the current one and any scheduled
/// changes. Stored in the state, so every node derives the same set for every height.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidatorSchedule {
    /// `(first height, validators)`, sorted by height; the first entry is in force now.
    pub entries: Vec<(Height, Vec<ValidatorInfo>)>,
}

impl ValidatorSchedule {
    /// A schedule with one set, in force from `height`.
    pub fn starting(height: Height, validators: Vec<ValidatorInfo>) -> Self {
        ValidatorSchedule { entries: vec![(height, validators)] }
    }

    /// The validators in force at `height` (the last entry starting at or before it).
    pub fn validators_at(&self, height: Height) -> &[ValidatorInfo] {
        self.entries
            .iter()
            .rev()
            .find(|(from, _)| *from <= height)
            .or(self.entries.first())
            .map(|(_, validators)| validators.as_slice())
            .unwrap_or(&[])
    }

    /// The consensus [`ValidatorSet`] in force at `height`.
    pub fn set_at(&self, height: Height) -> Result<ValidatorSet, consensus::ValidatorSetError> {
        ValidatorSet::new(self.validators_at(height).iter().map(|v| v.public_key).collect())
    }

    /// The most recently scheduled validators (what a new change builds on).
    pub fn latest(&self) -> &[ValidatorInfo] {
        self.entries.last().map(|(_, validators)| validators.as_slice()).unwrap_or(&[])
    }

    /// Schedules `validators` to be in force from `height` on (replacing a change already
    /// scheduled for that height).
    pub fn schedule(&mut self, height: Height, validators: Vec<ValidatorInfo>) {
        self.entries.retain(|(from, _)| *from < height);
        self.entries.push((height, validators));
    }

    /// Drops entries that can no longer be in force at or after `height`.
    pub fn prune_before(&mut self, height: Height) {
        while self.entries.len() > 1 && self.entries[1].0 <= height {
            self.entries.remove(0);
        }
    }
}
