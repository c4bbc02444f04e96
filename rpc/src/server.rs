//! The server: [`SteleApiServer`] over a [`Backend`], on one port for HTTP and WebSocket, with
//! every limit set.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use consensus::{Digest, Height};
use jsonrpsee::{
    PendingSubscriptionSink,
    core::{SubscriptionResult, async_trait},
    server::{BatchRequestConfig, Server, ServerConfig, ServerHandle, middleware::rpc::RpcServiceBuilder},
};
use ledger::{Address, BlockReader, CertifiedBlock, Role, StateHistory, state::keys};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    Backend, SubmitError,
    api::{BLOCKS_PAGE_MAX, ProofTarget, RpcResult, SUBMIT_WAIT_MAX_MS, SteleApiServer},
    error::{self, invalid_params, not_found, unavailable},
    types::{
        Account, Block, BlockId, ChainStatus, Header, PeerInfo, Receipt, Record, StateProof, Tx, TxProofBundle,
        TxState, TxStatus, Validators, from_hex, to_hex,
    },
};

/// Limits of the server (from `[rpc]` in config.toml).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes.
    pub max_response_bytes: u32,
    /// Most calls in one batch.
    pub max_batch: u32,
    /// Most simultaneous connections.
    pub max_connections: u32,
    /// Most subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// Browser origins allowed by CORS (`https://app.example`); empty allows none.
    pub cors_origins: Vec<String>,
}

/// CORS for the allowed origins; `None` (no CORS headers, so browsers refuse cross-origin
/// calls) when the list is empty.
fn cors(origins: &[String]) -> std::io::Result<Option<tower_http::cors::CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|origin| {
            http::HeaderValue::from_str(origin).map_err(|error| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("CORS origin {origin:?}: {error}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::list(origins))
            .allow_methods([http::Method::POST])
            .allow_headers([http::header::CONTENT_TYPE]),
    ))
}

/// A running server.
pub struct RpcServer {
    handle: ServerHandle,
    address: SocketAddr,
}

impl RpcServer {
    /// The bound address (with the port the OS picked, if 0 was asked).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, closes connections and waits until it is done.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}

/// Binds `listen` and serves the API over `backend`.
pub async fn start<B: Backend>(listen: SocketAddr, limits: Limits, backend: Arc<B>) -> std::io::Result<RpcServer> {
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .build();
    let middleware = tower::ServiceBuilder::new().option_layer(cors(&limits.cors_origins)?);
    let max_response_bytes = limits.max_response_bytes as usize;
    let rpc_middleware = RpcServiceBuilder::new()
        .layer_fn(move |service| crate::batch::ConcurrentBatch::new(service, max_response_bytes));
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .set_rpc_middleware(rpc_middleware)
        .build(listen)
        .await?;
    let address = server.local_addr()?;
    let handle = server.start(module(backend));
    tracing::info!(%address, "JSON-RPC listening (HTTP and WebSocket)");
    Ok(RpcServer { handle, address })
}

/// Every method over `backend`, plus `rpc.discover` (the OpenRPC document).
pub fn module<B: Backend>(backend: Arc<B>) -> jsonrpsee::RpcModule<()> {
    let mut module = jsonrpsee::RpcModule::new(());
    module.merge(LedgerApi { backend }.into_rpc()).expect("the API's method names are distinct");
    let document = crate::openrpc::document();
    module.register_method("rpc.discover", move |_, _, _| document.clone()).expect("rpc.discover is not an API method");
    module
}

/// The API over a backend.
struct LedgerApi<B> {
    backend: Arc<B>,
}

fn block_json(certified: &CertifiedBlock) -> Block {
    let block = &certified.block;
    Block {
        header: Header::new(&block.header, block.transactions.len()),
        certificate: certified.certificate.clone(),
        transactions: block.transactions.iter().map(Tx::new).collect(),
    }
}

impl<B: Backend> LedgerApi<B> {
    fn store(&self) -> &B::Store {
        self.backend.store()
    }

    fn head(&self) -> RpcResult<Height> {
        Ok(self.store().head().map_err(unavailable)?.height)
    }

    /// `height`, or the head; refuses heights above the head.
    fn at(&self, height: Option<Height>) -> RpcResult<Height> {
        let head = self.head()?;
        match height {
            None => Ok(head),
            Some(height) if height <= head => Ok(height),
            Some(height) => Err(not_found(format!("height {height} is above the head {head}"))),
        }
    }

    fn block_at(&self, height: Height) -> RpcResult<CertifiedBlock> {
        if height == 0 {
            return Err(not_found("height 0 is the genesis header; blocks start at 1"));
        }
        self.store()
            .block(height)
            .map_err(unavailable)?
            .ok_or_else(|| not_found(format!("no block at height {height}")))
    }

    async fn tx_status(&self, hash: Digest) -> RpcResult<TxStatus> {
        if let Some(location) = self.store().tx_location(&hash).map_err(unavailable)? {
            let receipt = self
                .store()
                .receipts(location.height)
                .map_err(unavailable)?
                .and_then(|receipts| receipts.get(location.index as usize).map(Receipt::from));
            return Ok(TxStatus {
                hash,
                status: TxState::Committed,
                height: Some(location.height),
                index: Some(location.index),
                receipt,
            });
        }
        let status = if self.backend.is_pending(hash).await { TxState::Pending } else { TxState::Unknown };
        Ok(TxStatus { hash, status, height: None, index: None, receipt: None })
    }

    fn state_value(&self, key: &[u8], height: Height) -> RpcResult<Option<Vec<u8>>> {
        self.store().state_at(key, height).map_err(unavailable)
    }
}

#[async_trait]
impl<B: Backend> SteleApiServer for LedgerApi<B> {
    async fn chain_status(&self) -> RpcResult<ChainStatus> {
        let head = self.store().head().map_err(unavailable)?;
        let status = self.backend.status().await;
        Ok(ChainStatus {
            chain_id: head.chain_id.clone(),
            genesis_hash: self.backend.genesis_hash(),
            height: head.height,
            head_hash: head.hash(),
            state_root: head.state_root,
            timestamp_ms: head.timestamp_ms,
            view: status.view,
            role: if status.validator { "validator" } else { "observer" }.to_string(),
            peers: status.peers,
            syncing: status.syncing,
            mempool_txs: status.mempool_txs,
        })
    }

    async fn chain_get_block(&self, block: BlockId) -> RpcResult<Block> {
        let height = match block {
            BlockId::Height(height) => height,
            BlockId::Hash(hash) => self
                .store()
                .height_of(&hash)
                .map_err(unavailable)?
                .ok_or_else(|| not_found(format!("no block with hash {hash}")))?,
        };
        Ok(block_json(&self.block_at(height)?))
    }

    async fn chain_get_blocks(&self, from: Height, to: Height) -> RpcResult<Vec<Block>> {
        if from == 0 || to < from {
            return Err(invalid_params(format!("need 1 <= from <= to, got from {from}, to {to}")));
        }
        let last = to.min(from.saturating_add(BLOCKS_PAGE_MAX - 1)).min(self.head()?);
        (from..=last).map(|height| self.block_at(height).map(|block| block_json(&block))).collect()
    }

    async fn chain_get_validators(&self, height: Option<Height>) -> RpcResult<Validators> {
        let head = self.head()?;
        let height = height.unwrap_or(head + 1);
        if height > head + 1 {
            return Err(not_found(format!("the validator set of height {height} is not known yet (head {head})")));
        }
        let schedule = self.store().validator_schedule_at(height.saturating_sub(1)).map_err(unavailable)?;
        let set = schedule.set_at(height).map_err(unavailable)?;
        Ok(Validators {
            height,
            quorum: set.quorum(),
            max_faulty: set.max_faulty(),
            digest: set.digest(),
            validators: schedule.validators_at(height).to_vec(),
        })
    }

    async fn chain_subscribe_blocks(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut blocks = self.backend.subscribe();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                _ = sink.closed() => break,
                received = blocks.recv() => match received {
                    Ok(block) => {
                        let header = Header::new(&block.block.header, block.block.transactions.len());
                        let message = serde_json::value::to_raw_value(&header)?;
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                    // A subscriber too slow to keep up is dropped rather than silently missing
                    // blocks; it can resubscribe and fetch the gap with chain_getBlocks.
                    Err(RecvError::Lagged(missed)) => {
                        return Err(format!("subscriber fell behind by {missed} blocks; resubscribe").into());
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
        Ok(())
    }

    async fn tx_submit(&self, transaction: String) -> RpcResult<Digest> {
        let bytes = from_hex(&transaction).map_err(SubmitError::Malformed)?;
        Ok(self.backend.submit(bytes).await?)
    }

    async fn tx_submit_and_wait(&self, transaction: String, timeout_ms: Option<u64>) -> RpcResult<TxStatus> {
        let timeout = Duration::from_millis(timeout_ms.unwrap_or(SUBMIT_WAIT_MAX_MS).min(SUBMIT_WAIT_MAX_MS));
        let bytes = from_hex(&transaction).map_err(SubmitError::Malformed)?;
        // Subscribe before submitting so the commit cannot slip between the two.
        let mut blocks = self.backend.subscribe();
        let hash = match self.backend.submit(bytes.clone()).await {
            Ok(hash) => hash,
            // Submitted before (by this client or gossip): wait for it like a fresh one.
            Err(SubmitError::AlreadyPending(_)) => {
                let hash = Digest::of(&bytes);
                if !self.backend.is_pending(hash).await {
                    return Err(SubmitError::AlreadyPending("another transaction has this nonce".into()).into());
                }
                hash
            }
            Err(failure) => return Err(failure.into()),
        };
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.tx_status(hash).await?;
            if status.status == TxState::Committed {
                return Ok(status);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, blocks.recv()).await {
                Err(_) => {
                    return Err(error::error(
                        error::TIMEOUT,
                        format!("transaction {hash} not committed within {} ms; ask tx_get later", timeout.as_millis()),
                    ));
                }
                Ok(Err(RecvError::Closed)) => return Err(unavailable("the node is shutting down")),
                Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
            }
        }
    }

    async fn tx_get(&self, hash: Digest) -> RpcResult<TxStatus> {
        self.tx_status(hash).await
    }

    async fn tx_get_proof(&self, hash: Digest) -> RpcResult<TxProofBundle> {
        let proof = ledger::proof::build_tx_proof(self.store(), &hash)
            .map_err(unavailable)?
            .ok_or_else(|| not_found(format!("transaction {hash} is not committed")))?;
        Ok(TxProofBundle {
            chain_id: proof.block.header.chain_id.clone(),
            tx_hash: hash,
            height: proof.block.header.height,
            index: proof.included.tx_proof.index,
            validator_changes: proof.validator_changes.len(),
            proof: to_hex(&proof.encode()),
        })
    }

    async fn state_get_account(&self, address: Address, height: Option<Height>) -> RpcResult<Account> {
        let height = self.at(height)?;
        let account: ledger::Account = match self.state_value(&keys::account(&address), height)? {
            Some(bytes) => borsh::from_slice(&bytes).map_err(unavailable)?,
            None => ledger::Account::default(),
        };
        Ok(Account {
            address,
            balance: account.balance,
            nonce: account.nonce,
            roles: Role::ALL.into_iter().filter(|role| account.roles.contains(*role)).collect(),
            height,
        })
    }

    async fn state_get_record(&self, key: String, height: Option<Height>) -> RpcResult<Record> {
        let height = self.at(height)?;
        let key = from_hex(&key).map_err(|error| invalid_params(format!("key: {error}")))?;
        let value = self.state_value(&keys::record(&key), height)?;
        Ok(Record { key: to_hex(&key), value: value.as_deref().map(to_hex), height })
    }

    async fn state_get_proof(&self, target: ProofTarget, height: Option<Height>) -> RpcResult<StateProof> {
        let height = self.at(height)?;
        let state_key = match &target {
            ProofTarget::Account(address) => keys::account(address),
            ProofTarget::Record(key) => {
                keys::record(&from_hex(key).map_err(|error| invalid_params(format!("record: {error}")))?)
            }
        };
        let proof = self.store().state_proof(&state_key, height).map_err(unavailable)?;
        let header = self
            .store()
            .header(height)
            .map_err(unavailable)?
            .ok_or_else(|| not_found(format!("no header at height {height}")))?;
        let certified = if height == 0 { None } else { Some(self.block_at(height)?) };
        Ok(StateProof {
            state_key: to_hex(&state_key),
            value: proof.value.as_deref().map(to_hex),
            height,
            header: Header::new(&header, certified.as_ref().map_or(0, |block| block.block.transactions.len())),
            certificate: certified.map(|block| block.certificate),
            proof: to_hex(&borsh::to_vec(&proof).map_err(unavailable)?),
        })
    }

    async fn net_peers(&self) -> RpcResult<Vec<PeerInfo>> {
        Ok(self
            .backend
            .peers()
            .await
            .into_iter()
            .map(|peer| PeerInfo { peer_id: peer.peer_id, address: peer.address, score: peer.score })
            .collect())
    }
}
