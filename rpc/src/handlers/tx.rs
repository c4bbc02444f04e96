//! The `tx_*` methods: submitting transactions to the node's mempool (and waiting for their
//! commit), their status, and the proofs that they were committed.

use std::time::{Duration, Instant};

use consensus::Digest;
use ledger::{AdmitError, BlockReader};
use tokio::sync::broadcast::error::RecvError;

use super::LedgerApi;
use crate::{
    Backend, SubmitError,
    api::{RpcResult, SUBMIT_WAIT_MAX_MS},
    budget::ResponseBudget,
    error::{self, not_found, unavailable},
    types::{Receipt, TxProofBundle, TxState, TxStatus, from_hex, to_hex},
};

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

/// `tx_get`: committed (from the store), else pending (in the mempool), else unknown.
pub(super) async fn get<B: Backend>(api: &LedgerApi<B>, hash: Digest) -> RpcResult<TxStatus> {
    if let Some(status) = api.read(move |backend| committed(backend.store(), hash)).await? {
        return Ok(status);
    }
    let status = if api.backend.is_pending(hash).await { TxState::Pending } else { TxState::Unknown };
    Ok(TxStatus { hash, status, height: None, index: None, receipt: None })
}

/// `tx_submit`: hands the decoded hex to the node's admission.
pub(super) async fn submit<B: Backend>(api: &LedgerApi<B>, transaction: String) -> RpcResult<Digest> {
    let bytes = from_hex(&transaction).map_err(SubmitError::NotHex)?;
    Ok(api.backend.submit(bytes).await?)
}

/// `tx_submitAndWait`: submits (or finds already pending) and waits for the commit, checking
/// again at each new block, until `timeout_ms` (capped at [`SUBMIT_WAIT_MAX_MS`]).
pub(super) async fn submit_and_wait<B: Backend>(
    api: &LedgerApi<B>,
    transaction: String,
    timeout_ms: Option<u64>,
) -> RpcResult<TxStatus> {
    let timeout = Duration::from_millis(timeout_ms.unwrap_or(SUBMIT_WAIT_MAX_MS).min(SUBMIT_WAIT_MAX_MS));
    let bytes = from_hex(&transaction).map_err(SubmitError::NotHex)?;
    // Subscribe before submitting so the commit cannot slip between the two.
    let mut blocks = api.backend.subscribe();
    let hash = match api.backend.submit(bytes.clone()).await {
        Ok(hash) => hash,
        // Submitted before (by this client or gossip): wait for it like a fresh one.
        Err(SubmitError::Refused(AdmitError::Duplicate(hash))) => hash,
        Err(SubmitError::Refused(refused @ AdmitError::NonceTaken(_))) => {
            // Another transaction with this nonce, unless these very bytes were also
            // admitted meanwhile (from gossip).
            let hash = Digest::of(&bytes);
            if !api.backend.is_pending(hash).await {
                return Err(SubmitError::Refused(refused).into());
            }
            hash
        }
        Err(failure) => return Err(failure.into()),
    };
    let deadline = Instant::now() + timeout;
    loop {
        let status = get(api, hash).await?;
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

/// `tx_getProof`: the self-contained proof bundle of a committed transaction, charged to
/// `budget`.
pub(super) async fn get_proof<B: Backend>(
    api: &LedgerApi<B>,
    budget: ResponseBudget,
    hash: Digest,
) -> RpcResult<TxProofBundle> {
    budget.check_left()?;
    api.read(move |backend| {
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
