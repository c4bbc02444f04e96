//! The API, defined once: jsonrpsee generates the server trait (`SteleApiServer`, implemented
//! in [`crate::start`]) and the typed Rust client (`SteleApiClient`) from it. Method names are
//! fixed by the design; docs/rpc.md documents every one. The methods marked `with_extensions`
//! read the request's response budget from its extensions (the client is the same).

use consensus::{Digest, Height};
use jsonrpsee::{core::SubscriptionResult, proc_macros::rpc, types::ErrorObjectOwned};
use ledger::Address;
use serde::{Deserialize, Serialize};

use crate::types::{
    Account, Block, BlockId, ChainStatus, Divergence, Evidence, Header, PeerInfo, Record, StateProof, TxProofBundle,
    TxStatus, Validators,
};

/// Result of a method call.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Most blocks `chain_getBlocks` returns in one page.
pub const BLOCKS_PAGE_MAX: u64 = 100;
/// Most pieces of evidence a node keeps (and `chain_getEvidence` returns); older ones go first.
pub const EVIDENCE_MAX: usize = 1000;
/// Longest wait `tx_submitAndWait` accepts, in milliseconds (and its default).
pub const SUBMIT_WAIT_MAX_MS: u64 = 60_000;

/// What `state_getProof` proves: an account or a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ProofTarget {
    /// An account by address.
    Account(Address),
    /// A record by its 0x-hex key.
    Record(String),
}

/// Stele's JSON-RPC API.
#[rpc(server, client)]
pub trait SteleApi {
    /// The node's view of the chain: head, state root, view, role, peers, sync.
    #[method(name = "chain_status")]
    async fn chain_status(&self) -> RpcResult<ChainStatus>;

    /// A committed block, by height or hash, with its certificate and transactions.
    #[method(name = "chain_getBlock", with_extensions)]
    async fn chain_get_block(&self, block: BlockId) -> RpcResult<Block>;

    /// Committed blocks `from..=to`, at most [`BLOCKS_PAGE_MAX`] and at most the request's
    /// response budget (ask again from the last + 1).
    #[method(name = "chain_getBlocks", with_extensions)]
    async fn chain_get_blocks(&self, from: Height, to: Height) -> RpcResult<Vec<Block>>;

    /// The validator set that certifies `height` (default: the next block).
    #[method(name = "chain_getValidators")]
    async fn chain_get_validators(&self, height: Option<Height>) -> RpcResult<Validators>;

    /// Evidence of misbehaviour this node saw: pairs of conflicting votes signed by one
    /// validator, oldest height first (the latest [`EVIDENCE_MAX`] are kept).
    #[method(name = "chain_getEvidence")]
    async fn chain_get_evidence(&self) -> RpcResult<Vec<Evidence>>;

    /// Blocks a peer holds certified at a height where this node certified another, with both
    /// headers and certificates, first found first (at most 16 kept). Empty unless more than f
    /// validators signed two blocks at one height.
    #[method(name = "chain_getDivergences")]
    async fn chain_get_divergences(&self) -> RpcResult<Vec<Divergence>>;

    /// Each committed block's header (with its transaction count), in order.
    #[subscription(name = "chain_subscribeBlocks" => "chain_block", unsubscribe = "chain_unsubscribeBlocks", item = Header)]
    async fn chain_subscribe_blocks(&self) -> SubscriptionResult;

    /// Admits a transaction (0x-hex of its borsh encoding) to the mempool; returns its hash.
    #[method(name = "tx_submit")]
    async fn tx_submit(&self, transaction: String) -> RpcResult<Digest>;

    /// Submits a transaction and waits (up to `timeout_ms`, default and at most 60 s) until it
    /// is committed; returns its status with the receipt.
    #[method(name = "tx_submitAndWait")]
    async fn tx_submit_and_wait(&self, transaction: String, timeout_ms: Option<u64>) -> RpcResult<TxStatus>;

    /// Whether a transaction is pending, committed (where, with its receipt) or unknown.
    #[method(name = "tx_get")]
    async fn tx_get(&self, hash: Digest) -> RpcResult<TxStatus>;

    /// A self-contained proof that a transaction was committed: the transaction and its receipt
    /// with Merkle paths, the certified header, and every validator-set change since the
    /// genesis, each proven; it verifies offline against the genesis file alone.
    #[method(name = "tx_getProof", with_extensions)]
    async fn tx_get_proof(&self, hash: Digest) -> RpcResult<TxProofBundle>;

    /// An account at a height (default: the head).
    #[method(name = "state_getAccount")]
    async fn state_get_account(&self, address: Address, height: Option<Height>) -> RpcResult<Account>;

    /// A record (0x-hex key) at a height (default: the head).
    #[method(name = "state_getRecord")]
    async fn state_get_record(&self, key: String, height: Option<Height>) -> RpcResult<Record>;

    /// A proof of an account or record (or its absence) against the certified state root of a
    /// height (default: the head).
    #[method(name = "state_getProof")]
    async fn state_get_proof(&self, target: ProofTarget, height: Option<Height>) -> RpcResult<StateProof>;

    /// The connected peers.
    #[method(name = "net_peers")]
    async fn net_peers(&self) -> RpcResult<Vec<PeerInfo>>;
}
