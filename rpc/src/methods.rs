//! The API's methods over a [`Backend`].
//!
//! Store reads block (RocksDB), and the async workers that run them are the ones the consensus
//! driver runs on: every read goes to tokio's blocking pool instead, at most `rpc.read_threads`
//! at once, so a flood of reads waits its turn rather than starving the node. Methods that can
//! return a lot (`chain_getBlocks`, `chain_getBlock`, `tx_getProof`) charge the request's
//! [`ResponseBudget`] as they build, inside the read, so what a request holds in memory is
//! bounded by its budget, not by what it asks for.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use consensus::{Digest, Height};
use jsonrpsee::{
    Extensions, PendingSubscriptionSink,
    core::{SubscriptionResult, async_trait},
};
use ledger::{Address, AdmitError, BlockReader, CertifiedBlock, Role, StateHistory, state::keys};
use tokio::sync::{Semaphore, broadcast::error::RecvError};

use crate::{
    Backend, SubmitError,
    api::{BLOCKS_PAGE_MAX, ProofTarget, RpcResult, SUBMIT_WAIT_MAX_MS, SteleApiServer},
    budget::{ResponseBudget, json_size},
    error::{self, invalid_params, not_found, unavailable},
    types::{
        Account, Block, BlockId, ChainStatus, Divergence, Evidence, EvidenceKind, EvidenceVote, Header, PeerInfo,
        Receipt, Record, StateProof, Tx, TxProofBundle, TxState, TxStatus, Validators, from_hex, to_hex,
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

/// The API over a backend.
struct LedgerApi<B> {
    backend: Arc<B>,
    /// One permit per store read running on the blocking pool.
    reads: Arc<Semaphore>,
    max_response_bytes: usize,
}

fn block_json(certified: &CertifiedBlock) -> Block {
    let block = &certified.block;
    Block {
        header: Header::new(&block.header, block.transactions.len()),
        certificate: certified.certificate.clone(),
        transactions: block.transactions.iter().map(Tx::new).collect(),
    }
}

fn head(store: &impl BlockReader) -> RpcResult<Height> {
    Ok(store.head().map_err(unavailable)?.height)
}

/// `height`, or the head; refuses heights above the head.
fn at(store: &impl BlockReader, height: Option<Height>) -> RpcResult<Height> {
    let head = head(store)?;
    match height {
        None => Ok(head),
        Some(height) if height <= head => Ok(height),
        Some(height) => Err(not_found(format!("height {height} is above the head {head}"))),
    }
}

fn block_at(store: &impl BlockReader, height: Height) -> RpcResult<CertifiedBlock> {
    if height == 0 {
        return Err(not_found("height 0 is the genesis header; blocks start at 1"));
    }
    store.block(height).map_err(unavailable)?.ok_or_else(|| not_found(format!("no block at height {height}")))
}

/// The status of a committed transaction, or `None` if it is not committed.
fn committed(store: &impl BlockReader, hash: Digest) -> RpcResult<Option<TxStatus>> {
    let Some(location) = store.tx_location(&hash).map_err(unavailable)? else { return Ok(None) };
    let receipt = store
        .receipts(location.height)
        .map_err(unavailable)?
        .and_then(|receipts| receipts.get(location.index as usize).map(Receipt::from));
    Ok(Some(TxStatus {
        hash,
        status: TxState::Committed,
        height: Some(location.height),
        index: Some(location.index),
        receipt,
    }))
}

/// The response budget of the request a call belongs to.
fn budget_of(extensions: &Extensions, max_response_bytes: usize) -> ResponseBudget {
    extensions.get::<ResponseBudget>().cloned().unwrap_or_else(|| ResponseBudget::new(max_response_bytes))
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

    fn budget(&self, extensions: &Extensions) -> ResponseBudget {
        budget_of(extensions, self.max_response_bytes)
    }

    async fn tx_status(&self, hash: Digest) -> RpcResult<TxStatus> {
        if let Some(status) = self.read(move |backend| committed(backend.store(), hash)).await? {
            return Ok(status);
        }
        let status = if self.backend.is_pending(hash).await { TxState::Pending } else { TxState::Unknown };
        Ok(TxStatus { hash, status, height: None, index: None, receipt: None })
    }
}

#[async_trait]
impl<B: Backend> SteleApiServer for LedgerApi<B> {
    async fn chain_status(&self) -> RpcResult<ChainStatus> {
        let head = self.read(|backend| backend.store().head().map_err(unavailable)).await?;
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
            scrub: self.backend.scrub(),
            agreement: self.backend.agreement(),
        })
    }

    async fn chain_get_block(&self, extensions: &Extensions, block: BlockId) -> RpcResult<Block> {
        let budget = self.budget(extensions);
        budget.check_left()?;
        self.read(move |backend| {
            let store = backend.store();
            let height = match block {
                BlockId::Height(height) => height,
                BlockId::Hash(hash) => store
                    .height_of(&hash)
                    .map_err(unavailable)?
                    .ok_or_else(|| not_found(format!("no block with hash {hash}")))?,
            };
            let block = block_json(&block_at(store, height)?);
            budget.charge(&block, || format!("block {height}"))?;
            Ok(block)
        })
        .await
    }

    async fn chain_get_blocks(&self, extensions: &Extensions, from: Height, to: Height) -> RpcResult<Vec<Block>> {
        if from == 0 || to < from {
            return Err(invalid_params(format!("need 1 <= from <= to, got from {from}, to {to}")));
        }
        let budget = self.budget(extensions);
        budget.check_left()?;
        self.read(move |backend| {
            let store = backend.store();
            let last = to.min(from.saturating_add(BLOCKS_PAGE_MAX - 1)).min(head(store)?);
            let mut blocks = Vec::new();
            for height in from..=last {
                // An empty page would read as "nothing more": refuse instead when another call
                // of the batch used up the budget first (it only ever shrinks).
                if blocks.is_empty() {
                    budget.check_left()?;
                } else if budget.is_exhausted() {
                    break;
                }
                let block = block_json(&block_at(store, height)?);
                // A page is a shorter page once the budget runs out (the client asks again from
                // the last height + 1); only a first block that does not fit is an error.
                match budget.take(json_size(&block) + 1) {
                    Ok(()) => blocks.push(block),
                    Err(exhausted) if blocks.is_empty() => {
                        return Err(budget.refusal(&format!("block {height}"), exhausted));
                    }
                    Err(_) => break,
                }
            }
            Ok(blocks)
        })
        .await
    }

    async fn chain_get_validators(&self, height: Option<Height>) -> RpcResult<Validators> {
        self.read(move |backend| {
            let store = backend.store();
            let head = head(store)?;
            let height = height.unwrap_or(head + 1);
            if height > head + 1 {
                return Err(not_found(format!("the validator set of height {height} is not known yet (head {head})")));
            }
            let schedule = store.validator_schedule_at(height.saturating_sub(1)).map_err(unavailable)?;
            let set = schedule.set_at(height).map_err(unavailable)?;
            Ok(Validators {
                height,
                quorum: set.quorum(),
                max_faulty: set.max_faulty(),
                digest: set.digest(),
                validators: schedule.validators_at(height).to_vec(),
            })
        })
        .await
    }

    async fn chain_get_divergences(&self) -> RpcResult<Vec<Divergence>> {
        Ok(self.backend.divergences())
    }

    async fn chain_get_evidence(&self) -> RpcResult<Vec<Evidence>> {
        self.read(|backend| {
            let chain_id = backend.store().head().map_err(unavailable)?.chain_id;
            let records = backend.evidence().map_err(unavailable)?;
            Ok(records
                .iter()
                .filter_map(|record| {
                    let vote = record.first.vote;
                    Some(Evidence {
                        kind: EvidenceKind::of(vote.kind)?,
                        validator: record.first.validator,
                        public_key: record.public_key,
                        height: vote.height,
                        view: vote.view,
                        first: EvidenceVote::new(&chain_id, &record.first),
                        second: EvidenceVote::new(&chain_id, &record.second),
                        seen_at_ms: record.seen_at_ms,
                        reported_by: record.peer.clone(),
                    })
                })
                .collect())
        })
        .await
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
        let bytes = from_hex(&transaction).map_err(SubmitError::NotHex)?;
        Ok(self.backend.submit(bytes).await?)
    }

    async fn tx_submit_and_wait(&self, transaction: String, timeout_ms: Option<u64>) -> RpcResult<TxStatus> {
        let timeout = Duration::from_millis(timeout_ms.unwrap_or(SUBMIT_WAIT_MAX_MS).min(SUBMIT_WAIT_MAX_MS));
        let bytes = from_hex(&transaction).map_err(SubmitError::NotHex)?;
        // Subscribe before submitting so the commit cannot slip between the two.
        let mut blocks = self.backend.subscribe();
        let hash = match self.backend.submit(bytes.clone()).await {
            Ok(hash) => hash,
            // Submitted before (by this client or gossip): wait for it like a fresh one.
            Err(SubmitError::Refused(AdmitError::Duplicate(hash))) => hash,
            Err(SubmitError::Refused(refused @ AdmitError::NonceTaken(_))) => {
                // Another transaction with this nonce, unless these very bytes were also
                // admitted meanwhile (from gossip).
                let hash = Digest::of(&bytes);
                if !self.backend.is_pending(hash).await {
                    return Err(SubmitError::Refused(refused).into());
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

    async fn tx_get_proof(&self, extensions: &Extensions, hash: Digest) -> RpcResult<TxProofBundle> {
        let budget = self.budget(extensions);
        budget.check_left()?;
        self.read(move |backend| {
            let proof = ledger::proof::build_tx_proof(backend.store(), &hash)
                .map_err(unavailable)?
                .ok_or_else(|| not_found(format!("transaction {hash} is not committed")))?;
            let bundle = TxProofBundle {
                chain_id: proof.block.header.chain_id.clone(),
                tx_hash: hash,
                height: proof.block.header.height,
                index: proof.included.tx_proof.index,
                validator_changes: proof.validator_changes.len(),
                proof: to_hex(&proof.encode()),
            };
            budget.charge(&bundle, || format!("the proof of transaction {hash}"))?;
            Ok(bundle)
        })
        .await
    }

    async fn state_get_account(&self, address: Address, height: Option<Height>) -> RpcResult<Account> {
        self.read(move |backend| {
            let store = backend.store();
            let height = at(store, height)?;
            let account: ledger::Account =
                match store.state_at(&keys::account(&address), height).map_err(unavailable)? {
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
        })
        .await
    }

    async fn state_get_record(&self, key: String, height: Option<Height>) -> RpcResult<Record> {
        self.read(move |backend| {
            let store = backend.store();
            let height = at(store, height)?;
            let key = from_hex(&key).map_err(|error| invalid_params(format!("key: {error}")))?;
            let value = store.state_at(&keys::record(&key), height).map_err(unavailable)?;
            Ok(Record { key: to_hex(&key), value: value.as_deref().map(to_hex), height })
        })
        .await
    }

    async fn state_get_proof(&self, target: ProofTarget, height: Option<Height>) -> RpcResult<StateProof> {
        self.read(move |backend| {
            let store = backend.store();
            let height = at(store, height)?;
            let state_key = match &target {
                ProofTarget::Account(address) => keys::account(address),
                ProofTarget::Record(key) => {
                    keys::record(&from_hex(key).map_err(|error| invalid_params(format!("record: {error}")))?)
                }
            };
            let proof = store.state_proof(&state_key, height).map_err(unavailable)?;
            let header = store
                .header(height)
                .map_err(unavailable)?
                .ok_or_else(|| not_found(format!("no header at height {height}")))?;
            let certified = if height == 0 { None } else { Some(block_at(store, height)?) };
            Ok(StateProof {
                state_key: to_hex(&state_key),
                value: proof.value.as_deref().map(to_hex),
                height,
                header: Header::new(&header, certified.as_ref().map_or(0, |block| block.block.transactions.len())),
                certificate: certified.map(|block| block.certificate),
                proof: to_hex(&borsh::to_vec(&proof).map_err(unavailable)?),
            })
        })
        .await
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
