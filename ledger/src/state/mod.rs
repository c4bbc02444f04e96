//! The ledger's state: accounts, records, the validator schedule, the parameters and the last
//! block, all in one Jellyfish Merkle tree (the `jmt` crate, over sha3-256) whose root every
//! header commits to. The tree keeps every version (version = height), so past states can be
//! read and proven.

mod guard;
mod path;
mod validators;

pub(crate) use guard::Guarded;
pub use path::versions_on_path;

pub use validators::{PEER_ID_MAX, VALIDATOR_NAME_MAX, ValidatorInfo, ValidatorSchedule};

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{Digest, Height};
use jmt::{KeyHash, RootHash, SimpleHasher, proof::SparseMerkleProof, storage::TreeReader};
use serde::{Deserialize, Serialize};

use crate::{
    Roles,
    store::{StoreError, StoredKey},
};

/// An account's state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, BorshSerialize, BorshDeserialize)]
pub struct Account {
    /// Units held.
    pub balance: u64,
    /// The nonce the account's next transaction must carry.
    pub nonce: u64,
    /// Roles held.
    pub roles: Roles,
}

/// The block whose execution produced this state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct LastBlock {
    /// Its height.
    pub height: Height,
    /// Its timestamp.
    pub timestamp_ms: u64,
}

/// The state keys. Every key starts with a one-byte namespace so none can collide.
pub mod keys {
    use crate::Address;

    /// The account of an address.
    pub fn account(address: &Address) -> Vec<u8> {
        [b"a".as_slice(), address.as_ref()].concat()
    }

    /// A record.
    pub fn record(key: &[u8]) -> Vec<u8> {
        [b"r".as_slice(), key].concat()
    }

    /// The validator schedule.
    pub const VALIDATORS: &[u8] = b"v";
    /// The chain parameters.
    pub const PARAMS: &[u8] = b"p";
    /// The total supply (sum of all balances), a `u64`.
    pub const SUPPLY: &[u8] = b"s";
    /// The last executed block ([`super::LastBlock`]).
    pub const LAST_BLOCK: &[u8] = b"l";

    /// A state key in words, for messages: "state key 0x70 (the parameters)".
    pub(crate) fn describe(key: &[u8]) -> String {
        let name = match key {
            VALIDATORS => " (the validator schedule)",
            PARAMS => " (the parameters)",
            SUPPLY => " (the total supply)",
            LAST_BLOCK => " (the last block)",
            _ => "",
        };
        format!("state key {}{name}", consensus::hex::encode(key))
    }
}

/// sha3-256 as the Jellyfish Merkle tree's hasher.
#[derive(Clone, Debug)]
pub struct Sha3Hasher(sha3::Sha3_256);

impl SimpleHasher for Sha3Hasher {
    fn new() -> Self {
        Sha3Hasher(<sha3::Sha3_256 as sha3::Digest>::new())
    }

    fn update(&mut self, data: &[u8]) {
        sha3::Digest::update(&mut self.0, data);
    }

    fn finalize(self) -> [u8; 32] {
        sha3::Digest::finalize(self.0).into()
    }
}

/// The Jellyfish Merkle tree as Stele instantiates it.
pub type StateTree<'a, R> = jmt::JellyfishMerkleTree<'a, R, Sha3Hasher>;

/// The tree's key for a state key.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash(Sha3Hasher::hash(key))
}

/// Read access to the latest state and to the versioned tree behind it.
pub trait StateReader: TreeReader {
    /// The value of a key after the head block, if any.
    fn latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Proof that a key holds a value (or holds none) under a state root: a client checks it with
/// [`StateProof::verify`] and a header it trusts.
#[derive(BorshSerialize, BorshDeserialize)]
pub struct StateProof {
    /// The state key proven.
    pub key: Vec<u8>,
    /// Its value, or `None` for a proof of absence.
    pub value: Option<Vec<u8>>,
    /// Height whose state root the proof is against.
    pub height: Height,
    /// The Jellyfish Merkle proof.
    pub proof: SparseMerkleProof<Sha3Hasher>,
}

impl StateProof {
    /// Checks the proof against a state root (from a certified header).
    pub fn verify(&self, state_root: &Digest) -> Result<(), String> {
        self.proof
            .verify(RootHash(state_root.0), key_hash(&self.key), self.value.as_ref())
            .map_err(|error| error.to_string())
    }
}

impl std::fmt::Debug for StateProof {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StateProof")
            .field("key", &consensus::hex::encode(&self.key))
            .field("value", &self.value.as_ref().map(consensus::hex::encode))
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

/// Decodes a state value, naming the key if the bytes are corrupt.
pub(crate) fn decode_value<T: BorshDeserialize>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    borsh::from_slice(bytes).map_err(|error| StoreError::Undecodable {
        column: crate::store::schema::STATE,
        key: StoredKey::Bytes(key.to_vec()),
        error: error.into(),
    })
}

/// The account of an address after the head block (a default, empty account if none).
pub fn read_account(state: &impl StateReader, address: &crate::Address) -> Result<Account, StoreError> {
    let key = keys::account(address);
    Ok(state.latest(&key)?.map(|bytes| decode_value(&key, &bytes)).transpose()?.unwrap_or_default())
}

/// The chain parameters in force after the head block.
pub fn read_params(state: &impl StateReader) -> Result<crate::Params, StoreError> {
    let bytes = state
        .latest(keys::PARAMS)?
        .ok_or_else(|| StoreError::MissingState { key: keys::PARAMS.to_vec(), height: None })?;
    decode_value(keys::PARAMS, &bytes)
}
