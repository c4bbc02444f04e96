//! What the API needs from a node: reads of its store, and the few things only the running
//! node knows (its mempool, its peers, its consensus view).

use std::sync::Arc;

use consensus::{Digest, Height, PublicKey, SignedVote, View};
use jsonrpsee::core::async_trait;
use ledger::{AdmitError, BlockReader, CertifiedBlock, StateHistory};
use tokio::sync::broadcast;

use crate::probes::{Readiness, SyncState};

/// Why `tx_submit` did not take a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Not hex: refused here, before the node sees it.
    #[error("malformed transaction: {0}")]
    NotHex(String),
    /// The node's admission refused it; each reason maps to its own JSON-RPC code.
    #[error(transparent)]
    Refused(#[from] AdmitError),
    /// The node cannot take transactions now (shutting down).
    #[error("node unavailable: {0}")]
    Unavailable(String),
}

/// What only the running node knows about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The consensus view of the height being decided.
    pub view: View,
    /// Whether this node's key is in the validator set of the next height.
    pub validator: bool,
    /// Whether it is fetching blocks from peers that are ahead.
    pub syncing: bool,
    /// Connected peers.
    pub peers: usize,
    /// Pending transactions.
    pub mempool_txs: usize,
}

/// A connected peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    /// libp2p peer id.
    pub peer_id: String,
    /// Remote address.
    pub address: String,
    /// gossipsub score (negative after rejected messages).
    pub score: Option<f64>,
}

/// Two conflicting votes one validator signed for one (height, view, kind), as the node stored
/// them when it saw the second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceRecord {
    /// The signer's consensus key (the votes name it by index in the set of their height).
    pub public_key: PublicKey,
    /// The vote seen first.
    pub first: SignedVote,
    /// The conflicting vote.
    pub second: SignedVote,
    /// When the node saw the conflict, ms since the Unix epoch by its clock.
    pub seen_at_ms: u64,
    /// The peer that delivered the second vote, if known.
    pub peer: Option<String>,
}

/// The node behind the API. The store is read directly (it is safe to read while the node
/// writes); everything else goes through the node.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The store type.
    type Store: BlockReader + StateHistory + Send + Sync + 'static;
    /// The node's store.
    fn store(&self) -> &Self::Store;
    /// Hash of the genesis document.
    fn genesis_hash(&self) -> Digest;
    /// Admits an encoded transaction to the mempool (and gossips it).
    async fn submit(&self, transaction: Vec<u8>) -> Result<Digest, SubmitError>;
    /// Whether a transaction is pending in the mempool.
    async fn is_pending(&self, hash: Digest) -> bool;
    /// Blocks committed from now on, in order.
    fn subscribe(&self) -> broadcast::Receiver<Arc<CertifiedBlock>>;
    /// The node's own status.
    async fn status(&self) -> NodeStatus;
    /// Connected peers.
    async fn peers(&self) -> Vec<Peer>;
    /// The evidence of misbehaviour this node recorded, oldest height first (none by default:
    /// a backend without a record keeps nothing).
    fn evidence(&self) -> Result<Vec<EvidenceRecord>, ledger::StoreError> {
        Ok(Vec::new())
    }
    /// Most recent height whose state this node keeps proofs for (the head).
    fn head_height(&self) -> Result<Height, ledger::StoreError> {
        Ok(self.store().head()?.height)
    }
    /// The background scrub's progress and findings (`chain_status.scrub`); `None`: this
    /// backend runs no scrub. It must not read the store: the scrub publishes what it found.
    fn scrub(&self) -> Option<crate::types::ScrubStatus> {
        None
    }
    /// The comparisons with peers (`chain_status.agreement`); `None`: this backend compares
    /// with no one. Published values only, no store reads.
    fn agreement(&self) -> Option<crate::types::AgreementStatus> {
        None
    }
    /// The divergence evidence kept (`chain_getDivergences`).
    fn divergences(&self) -> Vec<crate::types::Divergence> {
        Vec::new()
    }
    /// The facts `GET /ready` judges ([`crate::probes`]). The server calls it on the blocking
    /// pool, at most once a second however many probes come, so it may read the store (a few
    /// point reads, never a scan); it must not wait for the consensus driver's loop: what only
    /// the running node knows it reads from values the node publishes.
    ///
    /// The default reads the head and the next height's validator set and reports sync and
    /// connections as unknown, so a backend that does not implement it is never ready.
    fn readiness(&self) -> Result<Readiness, ledger::StoreError> {
        let head = self.store().head()?;
        let validators = self.store().validator_set_for(head.height + 1)?.len();
        Ok(Readiness {
            height: head.height,
            block_time_ms: head.timestamp_ms,
            sync: SyncState::Unknown("this backend does not report its sync".to_string()),
            validator: false,
            validators,
            validators_connected: None,
            damaged: Vec::new(),
            diverged: Vec::new(),
        })
    }
}
