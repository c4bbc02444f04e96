//! What the crate's unit tests share: one in-memory [`Backend`], server limits with a token,
//! allowed names and origins set, and a raw HTTP/1.1 exchange for the requests a JSON-RPC client
//! would never send.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use consensus::{ChainId, Digest, SigningKey};
use jsonrpsee::core::async_trait;
use ledger::{CertifiedBlock, Genesis, MemStore, Params, ValidatorInfo};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::broadcast,
};

use crate::{Backend, Limits, NodeStatus, Peer, Readiness, SubmitError, SubmitToken, SyncState};

/// The `ready_max_block_age` of [`limits`].
pub(crate) const MAX_AGE: Duration = Duration::from_secs(120);

/// A node with a one-validator genesis and no blocks, mempool or peers, whose readiness facts
/// the test sets, counting how often they are read.
pub(crate) struct TestBackend {
    store: MemStore,
    /// What [`Backend::readiness`] answers.
    pub facts: Mutex<Readiness>,
    /// How many times [`Backend::readiness`] was called.
    pub reads: AtomicUsize,
}

impl TestBackend {
    /// A backend on chain `chain_id` answering `facts`.
    pub fn new(chain_id: &str, facts: Readiness) -> Arc<Self> {
        let key = SigningKey::from_seed([1; 32]);
        let genesis = Genesis {
            chain_id: ChainId::new(chain_id).expect("chain id"),
            genesis_time_ms: 1,
            validators: vec![ValidatorInfo { name: "v".into(), public_key: key.public_key(), peer_id: "p".into() }],
            accounts: Vec::new(),
            params: Params::default(),
        };
        Arc::new(Self {
            store: MemStore::new(&genesis).expect("store"),
            facts: Mutex::new(facts),
            reads: AtomicUsize::new(0),
        })
    }

    /// A backend whose readiness is not known (never ready), for tests that do not look at it.
    pub fn idle(chain_id: &str) -> Arc<Self> {
        Self::new(
            chain_id,
            Readiness {
                height: 0,
                block_time_ms: 0,
                sync: SyncState::Unknown("a test backend".into()),
                validator: false,
                validators: 1,
                validators_connected: None,
                damaged: Vec::new(),
                diverged: Vec::new(),
            },
        )
    }
}

#[async_trait]
impl Backend for TestBackend {
    type Store = MemStore;
    fn store(&self) -> &MemStore {
        &self.store
    }
    fn genesis_hash(&self) -> Digest {
        Digest::ZERO
    }
    async fn submit(&self, _: Vec<u8>) -> Result<Digest, SubmitError> {
        Err(SubmitError::Unavailable("a test backend".into()))
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
    fn readiness(&self) -> Result<Readiness, ledger::StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.facts.lock().expect("facts").clone())
    }
}

/// Server limits for tests: small, a submit token, `node.test` an allowed host and
/// `http://allowed.test` an allowed origin.
pub(crate) fn limits() -> Limits {
    Limits {
        max_request_bytes: 1024 * 1024,
        max_response_bytes: 1024 * 1024,
        max_batch: 10,
        max_connections: 512,
        max_subscriptions_per_connection: 4,
        idle_timeout: Duration::from_secs(10),
        request_body_timeout: Duration::from_secs(10),
        ws_idle_timeout: Duration::from_secs(10),
        cors_origins: vec!["http://allowed.test".to_string()],
        allowed_hosts: vec!["node.test".to_string()],
        submit_token: Some(SubmitToken::new("0123456789abcdef-secret").expect("token")),
        read_threads: 2,
        ready_max_block_age: MAX_AGE,
    }
}

/// One raw HTTP/1.1 exchange (`Connection: close`): the status and the whole answer text.
pub(crate) async fn exchange(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    let status = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// The `Host` header line naming `address` itself.
pub(crate) fn host(address: SocketAddr) -> String {
    format!("Host: {address}\r\n")
}

/// The body of an [`exchange`]'s answer.
pub(crate) fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The value of header `name` (any case) in an [`exchange`]'s answer.
pub(crate) fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
