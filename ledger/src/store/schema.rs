//! Column families and key encodings of the RocksDB store. Heights are big-endian so RocksDB's
//! key order is numeric order.

use consensus::Height;
use jmt::{KeyHash, Version};

/// Height → borsh `BlockHeader` (height 0 is the genesis header).
pub const HEADERS: &str = "headers";
/// Height → borsh `Vec<SignedTransaction>`.
pub const BODIES: &str = "bodies";
/// Height → borsh `CommitCertificate` (none at height 0).
pub const CERTIFICATES: &str = "certificates";
/// Height → borsh `Vec<Receipt>`.
pub const RECEIPTS: &str = "receipts";
/// Block hash → big-endian height.
pub const BLOCK_HASHES: &str = "block_hashes";
/// Transaction hash → borsh `TxLocation`.
pub const TX_INDEX: &str = "tx_index";
/// State key → value after the head block (fast reads for execution).
pub const STATE: &str = "state";
/// borsh `jmt::NodeKey` → borsh `jmt::Node`: every version of the state tree.
pub const TREE_NODES: &str = "tree_nodes";
/// key hash ‖ big-endian version → borsh `Option<Vec<u8>>`: each key's value history.
pub const TREE_VALUES: &str = "tree_values";
/// Fixed keys → the consensus core's persisted safety state.
pub const SAFETY: &str = "safety";
/// Fixed keys → chain id, genesis hash, head height, schema version.
pub const META: &str = "meta";
/// [`evidence_key`] → evidence of a validator's misbehaviour, encoded by the node (outside the
/// chain: each node keeps what it saw; added without a schema change, created when missing).
pub const EVIDENCE: &str = "evidence";
/// Height → nothing: the heights whose header names another validator set than the header
/// before (where a change took effect), so a transaction proof finds the changes without
/// reading every header. Written in each block's commit batch; complete once
/// [`META_VALIDATOR_CHANGES`] is set (a database from before it is indexed once when opened).
pub const VALIDATOR_CHANGES: &str = "validator_changes";

/// Every column family, in the order they are opened.
pub const ALL: [&str; 13] = [
    HEADERS,
    BODIES,
    CERTIFICATES,
    RECEIPTS,
    BLOCK_HASHES,
    TX_INDEX,
    STATE,
    TREE_NODES,
    TREE_VALUES,
    SAFETY,
    META,
    EVIDENCE,
    VALIDATOR_CHANGES,
];

/// Meta key: the chain id (UTF-8).
pub const META_CHAIN_ID: &[u8] = b"chain_id";
/// Meta key: the genesis hash (32 bytes).
pub const META_GENESIS_HASH: &[u8] = b"genesis_hash";
/// Meta key: the head height (8 bytes, big-endian).
pub const META_HEAD: &[u8] = b"head";
/// Meta key: the schema version (4 bytes, big-endian).
pub const META_SCHEMA: &[u8] = b"schema";
/// Meta key (empty value): [`VALIDATOR_CHANGES`] holds every change up to the head.
pub const META_VALIDATOR_CHANGES: &[u8] = b"validator_changes_indexed";
/// The schema this code writes; a database with another is refused. 2: Merkle roots commit to
/// their leaf count (headers of version 1 chains no longer verify).
pub const SCHEMA_VERSION: u32 = 2;

/// Safety key: the consensus core's latest safety state.
pub const SAFETY_STATE: &[u8] = b"state";
/// Safety key: sha3-256 of the saved safety state, written in the same batch.
pub const SAFETY_CHECKSUM: &[u8] = b"state_sha3";

/// The key of a height.
pub fn height_key(height: Height) -> [u8; 8] {
    height.to_be_bytes()
}

/// The key of one piece of evidence: height, view, vote kind and validator index, big-endian,
/// so key order is height order and the oldest evidence is the first to go.
pub fn evidence_key(height: Height, view: u64, kind: u8, validator: u32) -> [u8; 21] {
    let mut key = [0u8; 21];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..16].copy_from_slice(&view.to_be_bytes());
    key[16] = kind;
    key[17..].copy_from_slice(&validator.to_be_bytes());
    key
}

/// The key of one version of one tree value.
pub fn tree_value_key(key_hash: KeyHash, version: Version) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&key_hash.0);
    key[32..].copy_from_slice(&version.to_be_bytes());
    key
}
