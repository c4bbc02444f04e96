//! The node's side of the JSON-RPC API: [`rpc::Backend`] over the store, the driver and the
//! network.

use std::sync::Arc;

use consensus::Digest;
use jsonrpsee::core::async_trait;
use ledger::{CertifiedBlock, RocksStore, TxError};
use rpc::{EvidenceRecord, NodeStatus, Peer, SubmitError};
use tokio::sync::broadcast;

use crate::{driver::DriverHandle, mempool::AdmitError, p2p::NetworkHandle};

/// What the RPC server reads and calls.
pub struct NodeBackend {
    /// The store (read while the driver writes).
    pub store: Arc<RocksStore>,
    /// Hash of the genesis document.
    pub genesis_hash: Digest,
    /// The driver.
    pub driver: DriverHandle,
    /// The network.
    pub network: NetworkHandle,
}

/// The RPC error for a mempool refusal.
pub fn submit_error(error: AdmitError) -> SubmitError {
    let message = error.to_string();
    match error {
        AdmitError::Invalid(TxError::Malformed(_)) => SubmitError::Malformed(message),
        AdmitError::Invalid(TxError::BadSignature) => SubmitError::BadSignature,
        AdmitError::Invalid(TxError::WrongChain { .. }) => SubmitError::WrongChain(message),
        AdmitError::Invalid(TxError::TooLarge { .. } | TxError::KeySize { .. } | TxError::ValueTooLarge { .. }) => {
            SubmitError::TooLarge(message)
        }
        AdmitError::Invalid(_) => SubmitError::Invalid(message),
        AdmitError::PermissionDenied(_) => SubmitError::PermissionDenied(message),
        AdmitError::NonceTooLow { expected, found } => SubmitError::NonceTooLow { expected, found },
        AdmitError::NonceTooHigh { max, found } => SubmitError::NonceTooHigh { max, found },
        AdmitError::Duplicate(_) | AdmitError::NonceTaken(_) => SubmitError::AlreadyPending(message),
        AdmitError::Full(_) | AdmitError::QueueFull { .. } => SubmitError::MempoolFull(message),
        AdmitError::Store(_) => SubmitError::Unavailable(message),
    }
}

#[async_trait]
impl rpc::Backend for NodeBackend {
    type Store = RocksStore;

    fn store(&self) -> &RocksStore {
        &self.store
    }

    fn genesis_hash(&self) -> Digest {
        self.genesis_hash
    }

    async fn submit(&self, transaction: Vec<u8>) -> Result<Digest, SubmitError> {
        let verdicts =
            self.driver.submit(vec![transaction]).await.map_err(|error| SubmitError::Unavailable(error.to_string()))?;
        match verdicts.into_iter().next() {
            Some(verdict) => verdict.map_err(submit_error),
            None => Err(SubmitError::Unavailable("no verdict".to_string())),
        }
    }

    async fn is_pending(&self, hash: Digest) -> bool {
        self.driver.is_pending(hash).await.unwrap_or(false)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<CertifiedBlock>> {
        self.driver.subscribe()
    }

    async fn status(&self) -> NodeStatus {
        let peers = self.network.peers().await.len();
        match self.driver.status().await {
            Ok(status) => NodeStatus {
                view: status.view,
                validator: status.validator,
                syncing: status.syncing,
                peers,
                mempool_txs: status.mempool_txs,
            },
            Err(_) => NodeStatus { view: 0, validator: false, syncing: false, peers, mempool_txs: 0 },
        }
    }

    fn evidence(&self) -> Result<Vec<EvidenceRecord>, ledger::StoreError> {
        crate::driver::evidence::load(&self.store)
    }

    async fn peers(&self) -> Vec<Peer> {
        self.network
            .peers()
            .await
            .into_iter()
            .map(|peer| Peer {
                peer_id: peer.peer_id.to_string(),
                address: peer.address.to_string(),
                score: peer.score,
            })
            .collect()
    }
}
