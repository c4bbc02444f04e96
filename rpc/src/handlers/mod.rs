//! The API's methods over a [`Backend`], one module per namespace: [`chain`] (`chain_*`),
//! [`tx`] (`tx_*`), [`state`] (`state_*`) and [`net`] (`net_*`). The [`SteleApiServer`] impl
//! here only delegates, so what each method does is read in one place, next to its siblings,
//! and the transport (accept loop, limits, access, batches: [`crate::start`]) stays apart.
//!
//! Store reads block (RocksDB), and the async workers that run them are the ones the consensus
//! driver runs on: every read goes to tokio's blocking pool instead ([`LedgerApi::read`]), at
//! most `rpc.read_threads` at once, so a flood of reads waits its turn rather than starving the
//! node. The reads themselves are typed ([`crate::reads`]): no handler decodes stored bytes.
//! Methods that can return a lot (`chain_getBlocks`, `chain_getBlock`, `tx_getProof`) charge
//! the request's [`ResponseBudget`] as they build, inside the read, so what a request holds in
//! memory is bounded by its budget, not by what it asks for.

mod chain;
mod net;
mod state;
mod tx;

use std::sync::Arc;

use consensus::{Digest, Height};
use jsonrpsee::{
    Extensions, PendingSubscriptionSink,
    core::{SubscriptionResult, async_trait},
};
use ledger::Address;
use tokio::sync::Semaphore;

use crate::{
    Backend,
    api::{ProofTarget, RpcResult, SteleApiServer},
    budget::ResponseBudget,
    error::unavailable,
    types::{
        Account, Block, BlockId, ChainStatus, Divergence, Evidence, PeerInfo, Record, StateProof, TxProofBundle,
        TxStatus, Validators,
    },
};

/// Store reads at once when the caller does not say (`rpc.read_threads`' default).
pub const READ_THREADS_DEFAULT: usize = 8;
/// The response budget when the caller does not say (`rpc.max_response_bytes`' default).
pub const MAX_RESPONSE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// Every method over `backend`, plus `rpc.discover` (the OpenRPC document), with the default
/// read concurrency and response budget.
pub fn module<B: Backend>(backend: Arc<B>) -> jsonrpsee::RpcModule<()> {
    module_with(backend, READ_THREADS_DEFAULT, MAX_RESPONSE_BYTES_DEFAULT)
}

/// Every method over `backend`: at most `read_threads` store reads at once, and a budget of
/// `max_response_bytes` for a request that comes without one (one called in-process).
pub(crate) fn module_with<B: Backend>(
    backend: Arc<B>,
    read_threads: usize,
    max_response_bytes: usize,
) -> jsonrpsee::RpcModule<()> {
    let api = LedgerApi { backend, reads: Arc::new(Semaphore::new(read_threads.max(1))), max_response_bytes };
    let mut module = jsonrpsee::RpcModule::new(());
    module.merge(api.into_rpc()).expect("the API's method names are distinct");
    let document = crate::openrpc::document();
    module.register_method("rpc.discover", move |_, _, _| document.clone()).expect("rpc.discover is not an API method");
    module
}

/// The API over a backend: what every handler shares.
struct LedgerApi<B> {
    backend: Arc<B>,
    /// One permit per store read running on the blocking pool.
    reads: Arc<Semaphore>,
    /// The budget of a request that carries none (called in-process, not through the server).
    max_response_bytes: usize,
}

impl<B: Backend> LedgerApi<B> {
    /// Runs `work` on the blocking pool once a read permit is free.
    async fn read<T: Send + 'static>(&self, work: impl FnOnce(&B) -> RpcResult<T> + Send + 'static) -> RpcResult<T> {
        let permit = self.reads.clone().acquire_owned().await.map_err(|_| unavailable("the node is shutting down"))?;
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&backend)
        })
        .await
        .map_err(|error| unavailable(format!("a store read failed: {error}")))?
    }

    /// The response budget of the request a call belongs to: the one the batch middleware put
    /// in its extensions, or a fresh one of `max_response_bytes`. Handlers get the budget, not
    /// the extensions, so they never see the transport.
    fn budget(&self, extensions: &Extensions) -> ResponseBudget {
        extensions.get::<ResponseBudget>().cloned().unwrap_or_else(|| ResponseBudget::new(self.max_response_bytes))
    }
}

#[async_trait]
impl<B: Backend> SteleApiServer for LedgerApi<B> {
    async fn chain_status(&self) -> RpcResult<ChainStatus> {
        chain::status(self).await
    }

    async fn chain_get_block(&self, extensions: &Extensions, block: BlockId) -> RpcResult<Block> {
        chain::get_block(self, self.budget(extensions), block).await
    }

    async fn chain_get_blocks(&self, extensions: &Extensions, from: Height, to: Height) -> RpcResult<Vec<Block>> {
        chain::get_blocks(self, self.budget(extensions), from, to).await
    }

    async fn chain_get_validators(&self, height: Option<Height>) -> RpcResult<Validators> {
        chain::get_validators(self, height).await
    }

    async fn chain_get_evidence(&self) -> RpcResult<Vec<Evidence>> {
        chain::get_evidence(self).await
    }

    async fn chain_get_divergences(&self) -> RpcResult<Vec<Divergence>> {
        Ok(chain::get_divergences(self))
    }

    async fn chain_subscribe_blocks(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        chain::subscribe_blocks(self, pending).await
    }

    async fn tx_submit(&self, transaction: String) -> RpcResult<Digest> {
        tx::submit(self, transaction).await
    }

    async fn tx_submit_and_wait(&self, transaction: String, timeout_ms: Option<u64>) -> RpcResult<TxStatus> {
        tx::submit_and_wait(self, transaction, timeout_ms).await
    }

    async fn tx_get(&self, hash: Digest) -> RpcResult<TxStatus> {
        tx::get(self, hash).await
    }

    async fn tx_get_proof(&self, extensions: &Extensions, hash: Digest) -> RpcResult<TxProofBundle> {
        tx::get_proof(self, self.budget(extensions), hash).await
    }

    async fn state_get_account(&self, address: Address, height: Option<Height>) -> RpcResult<Account> {
        state::get_account(self, address, height).await
    }

    async fn state_get_record(&self, key: String, height: Option<Height>) -> RpcResult<Record> {
        state::get_record(self, key, height).await
    }

    async fn state_get_proof(&self, target: ProofTarget, height: Option<Height>) -> RpcResult<StateProof> {
        state::get_proof(self, target, height).await
    }

    async fn net_peers(&self) -> RpcResult<Vec<PeerInfo>> {
        Ok(net::peers(self).await)
    }
}
