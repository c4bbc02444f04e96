//! The `net_*` methods: the node's view of its peer-to-peer network, from what the running node
//! publishes (no store read, so nothing goes to the blocking pool).

use super::LedgerApi;
use crate::{Backend, types::PeerInfo};

/// `net_peers`: the connected peers.
pub(super) async fn peers<B: Backend>(api: &LedgerApi<B>) -> Vec<PeerInfo> {
    api.backend
        .peers()
        .await
        .into_iter()
        .map(|peer| PeerInfo { peer_id: peer.peer_id, address: peer.address, score: peer.score })
        .collect()
}
