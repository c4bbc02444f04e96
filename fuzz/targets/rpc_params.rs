//! `rpc_params`: arbitrary text as the params of a JSON-RPC call, answered by the rpc crate's own
//! method table (`rpc::module`, the one the server serves) in-process, over a backend whose
//! store is the fixture's chain and whose `submit` is the node's real mempool admission. An input
//! is `method\nparams` (the params as raw JSON text), or without a newline a whole request.
//!
//! Every answer must be a well-formed response with a stable error code (never an internal
//! error, never "unavailable" from a healthy store), and every result must parse as the type the
//! Rust client expects; proofs in results must verify.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use consensus::Digest;
use jsonrpsee::{RpcModule, core::async_trait};
use ledger::{CertifiedBlock, MemStore, proof::TxProof};
use node::{
    mempool::{Mempool, MempoolConfig, precheck},
    verified::VerifiedCache,
};
use rpc::{Backend, NodeStatus, Peer, SubmitError, error, types};
use serde_json::Value;
use tokio::sync::broadcast;

use super::{Depth, fixture::Fixture};

/// The backend: the fixture's store, a mempool emptied before every input (so an input's answer
/// never depends on the ones before it), and a block feed that is already closed (so
/// `tx_submitAndWait` and subscriptions end at once instead of waiting for blocks).
struct FuzzBackend {
    mempool: Mutex<Mempool>,
}

fn new_mempool() -> Mempool {
    Mempool::new(Fixture::get().chain_id.clone(), MempoolConfig { max_txs: 16, ..MempoolConfig::default() })
}

#[async_trait]
impl Backend for FuzzBackend {
    type Store = MemStore;

    fn store(&self) -> &MemStore {
        &Fixture::get().store
    }

    fn genesis_hash(&self) -> Digest {
        Fixture::get().genesis.hash()
    }

    async fn submit(&self, transaction: Vec<u8>) -> Result<Digest, SubmitError> {
        let fixture = Fixture::get();
        let checked = precheck(&fixture.chain_id, &fixture.genesis.params, vec![transaction], &VerifiedCache::new(0));
        let mut mempool = self.mempool.lock().unwrap_or_else(PoisonError::into_inner);
        match mempool.admit_prechecked(&fixture.store, checked, std::time::Instant::now()).pop() {
            Some(verdict) => verdict.map(|admitted| admitted.hash()).map_err(SubmitError::Refused),
            None => Err(SubmitError::Unavailable("no verdict".to_string())),
        }
    }

    async fn is_pending(&self, hash: Digest) -> bool {
        self.mempool.lock().unwrap_or_else(PoisonError::into_inner).contains(&hash)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<CertifiedBlock>> {
        let (_, receiver) = broadcast::channel(1);
        receiver
    }

    async fn status(&self) -> NodeStatus {
        let mempool_txs = self.mempool.lock().unwrap_or_else(PoisonError::into_inner).len();
        NodeStatus { view: 0, validator: true, syncing: false, peers: 1, mempool_txs }
    }

    async fn peers(&self) -> Vec<Peer> {
        vec![Peer {
            peer_id: "12D3KooWFuzzPeer".to_string(),
            address: "/ip4/127.0.0.1/tcp/1".to_string(),
            score: Some(0.5),
        }]
    }
}

struct Server {
    runtime: tokio::runtime::Runtime,
    module: RpcModule<()>,
    backend: Arc<FuzzBackend>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let backend = Arc::new(FuzzBackend { mempool: Mutex::new(new_mempool()) });
        let module = rpc::module(backend.clone());
        Server { runtime, module, backend }
    })
}

/// The JSON-RPC request an input stands for, and its method name (if it names one).
fn request(data: &[u8]) -> Option<(String, Option<String>)> {
    let text = std::str::from_utf8(data).ok()?;
    match text.split_once('\n') {
        Some((method, params)) => {
            let method_json = serde_json::to_string(method).expect("a string serializes");
            let params = params.trim();
            let request = if params.is_empty() {
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":{method_json}}}"#)
            } else {
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":{method_json},"params":{params}}}"#)
            };
            Some((request, Some(method.to_string())))
        }
        None => Some((text.to_string(), None)),
    }
}

/// Error codes an answer may carry: the protocol's, and Stele's own (rpc/src/error.rs).
fn allowed(code: i64) -> bool {
    matches!(code, -32700 | -32600 | -32601 | -32602 | -32006 | -32007 | -32008 | -32009 | -32010)
        || (i64::from(error::MALFORMED_TRANSACTION)..=i64::from(error::UNAVAILABLE)).contains(&code)
}

/// Runs the target on one input.
pub fn run(data: &[u8]) -> Depth {
    let Some((request, method)) = request(data) else { return Depth::Undecodable };
    let server = server();
    *server.backend.mempool.lock().unwrap_or_else(PoisonError::into_inner) = new_mempool();
    let Ok((response, _subscription)) = server.runtime.block_on(server.module.raw_json_request(&request, 16)) else {
        return Depth::Undecodable;
    };
    let response: Value = serde_json::from_str(response.get()).expect("the server answers with JSON");
    assert_eq!(response["jsonrpc"], "2.0", "not a JSON-RPC 2.0 response: {response}");
    let method =
        method.or_else(|| serde_json::from_str::<Value>(&request).ok()?.get("method")?.as_str().map(str::to_string));
    let method = method.unwrap_or_default();
    match (response.get("result"), response.get("error")) {
        (Some(result), None) => {
            check_result(&method, result);
            Depth::Accepted
        }
        (None, Some(failure)) => {
            let code = failure["code"].as_i64().expect("an error has an integer code");
            assert!(allowed(code), "{method}: unexpected error code in {failure}");
            // The fixture's store never fails, so "unavailable" may only come from waiting on a
            // block feed that is closed.
            if code == i64::from(error::UNAVAILABLE) {
                assert_eq!(method, "tx_submitAndWait", "unavailable from a healthy store: {failure}");
            }
            assert!(failure["message"].is_string(), "an error has a message: {failure}");
            Depth::Rejected
        }
        _ => panic!("a response with neither or both of result and error: {response}"),
    }
}

fn parse<T: serde::de::DeserializeOwned>(method: &str, result: &Value) -> T {
    match serde_json::from_value(result.clone()) {
        Ok(value) => value,
        Err(failure) => panic!("{method}: the result does not parse as the client's type ({failure}): {result}"),
    }
}

/// Each result parses as what `SteleApiClient` expects, and what it proves verifies.
fn check_result(method: &str, result: &Value) {
    let fixture = Fixture::get();
    match method {
        "chain_status" => {
            let status: types::ChainStatus = parse(method, result);
            assert_eq!(status.chain_id, fixture.chain_id);
        }
        "chain_getBlock" => {
            let block: types::Block = parse(method, result);
            let certified = fixture.blocks.iter().find(|stored| stored.block.hash() == block.header.hash);
            assert!(certified.is_some(), "chain_getBlock served a block that is not the fixture's");
        }
        "chain_getBlocks" => {
            let blocks: Vec<types::Block> = parse(method, result);
            assert!(blocks.len() as u64 <= rpc::api::BLOCKS_PAGE_MAX);
        }
        "chain_getValidators" => {
            let validators: types::Validators = parse(method, result);
            assert!(validators.validators.len() >= validators.quorum, "a set smaller than its quorum");
        }
        "tx_submit" => {
            let _: Digest = parse(method, result);
        }
        "tx_get" | "tx_submitAndWait" => {
            let _: types::TxStatus = parse(method, result);
        }
        "tx_getProof" => {
            let bundle: types::TxProofBundle = parse(method, result);
            let bytes = types::from_hex(&bundle.proof).expect("a proof is hex");
            let proof = TxProof::decode(&bytes).expect("a served proof decodes");
            proof.verify(&fixture.genesis).expect("a served transaction proof verifies against the genesis");
            assert_eq!(proof.tx_hash(), bundle.tx_hash);
        }
        "state_getAccount" => {
            let _: types::Account = parse(method, result);
        }
        "state_getRecord" => {
            let _: types::Record = parse(method, result);
        }
        "state_getProof" => {
            let served: types::StateProof = parse(method, result);
            let bytes = types::from_hex(&served.proof).expect("a proof is hex");
            let proof: ledger::StateProof = borsh::from_slice(&bytes).expect("a served state proof decodes");
            proof.verify(&served.header.state_root).expect("a served state proof verifies against its header");
            assert_eq!(proof.value.as_deref().map(types::to_hex), served.value);
        }
        "net_peers" => {
            let _: Vec<types::PeerInfo> = parse(method, result);
        }
        _ => {}
    }
}
