use std::{collections::BTreeSet, sync::Arc};

use consensus::{ChainId, Digest, SigningKey};
use jsonrpsee::core::async_trait;
use ledger::{CertifiedBlock, Genesis, MemStore, Params, ValidatorInfo};
use tokio::sync::broadcast;

use crate::{Backend, NodeStatus, Peer, SubmitError};

struct Idle(MemStore);

#[async_trait]
impl Backend for Idle {
    type Store = MemStore;
    fn store(&self) -> &MemStore {
        &self.0
    }
    fn genesis_hash(&self) -> Digest {
        Digest::ZERO
    }
    async fn submit(&self, _: Vec<u8>) -> Result<Digest, SubmitError> {
        Err(SubmitError::Unavailable("idle".into()))
    }
    async fn is_pending(&self, _: Digest) -> bool {
        false
    }
    fn subscribe(&self) -> broadcast::Receiver<Arc<CertifiedBlock>> {
        broadcast::channel(1).1
    }
    async fn status(&self) -> NodeStatus {
        NodeStatus { view: 0, validator: false, syncing: false, peers: 0, mempool_txs: 0 }
    }
    async fn peers(&self) -> Vec<Peer> {
        Vec::new()
    }
}

fn backend() -> Arc<Idle> {
    let key = SigningKey::from_seed([1; 32]);
    let genesis = Genesis {
        chain_id: ChainId::new("openrpc").expect("chain id"),
        genesis_time_ms: 1,
        validators: vec![ValidatorInfo { name: "v".into(), public_key: key.public_key(), peer_id: "p".into() }],
        accounts: Vec::new(),
        params: Params::default(),
    };
    Arc::new(Idle(MemStore::new(&genesis).expect("store")))
}

#[test]
fn the_document_lists_exactly_the_served_methods() {
    let module = crate::module(backend());
    let served: BTreeSet<&str> = module.method_names().collect();
    let document = super::document();
    let described: BTreeSet<&str> = document["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|method| method["name"].as_str().expect("name"))
        .collect();
    assert_eq!(served, described);
}

#[test]
fn docs_openrpc_json_is_the_served_document() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openrpc.json");
    let expected = serde_json::to_string_pretty(&super::document()).expect("json") + "\n";
    let found = std::fs::read_to_string(path).unwrap_or_default();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, &expected).expect("write docs/openrpc.json");
        return;
    }
    assert!(found == expected, "docs/openrpc.json is stale: run `UPDATE_DOCS=1 cargo test --workspace -- openrpc`");
}
