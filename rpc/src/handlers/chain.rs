//! The `chain_*` methods: the chain's head and status, committed blocks, validator sets, the
//! evidence of misbehaviour the node kept, and the subscription to new blocks.

use consensus::Height;
use jsonrpsee::{PendingSubscriptionSink, core::SubscriptionResult};
use ledger::{BlockReader, CertifiedBlock, StateHistory};
use tokio::sync::broadcast::error::RecvError;

use super::LedgerApi;
use crate::{
    Backend,
    api::{BLOCKS_PAGE_MAX, RpcResult},
    budget::{ResponseBudget, json_size},
    error::{invalid_params, not_found, unavailable},
    reads::{block_at, head},
    types::{Block, BlockId, ChainStatus, Divergence, Evidence, EvidenceKind, EvidenceVote, Header, Tx, Validators},
};

/// A committed block as the API serves it.
fn block_json(certified: &CertifiedBlock) -> Block {
    let block = &certified.block;
    Block {
        header: Header::new(&block.header, block.transactions.len()),
        certificate: certified.certificate.clone(),
        transactions: block.transactions.iter().map(Tx::new).collect(),
    }
}

/// `chain_status`: the head from the store, the rest from what the node publishes.
pub(super) async fn status<B: Backend>(api: &LedgerApi<B>) -> RpcResult<ChainStatus> {
    let head = api.read(|backend| backend.store().head().map_err(unavailable)).await?;
    let status = api.backend.status().await;
    Ok(ChainStatus {
        chain_id: head.chain_id.clone(),
        genesis_hash: api.backend.genesis_hash(),
        height: head.height,
        head_hash: head.hash(),
        state_root: head.state_root,
        timestamp_ms: head.timestamp_ms,
        view: status.view,
        role: if status.validator { "validator" } else { "observer" }.to_string(),
        peers: status.peers,
        syncing: status.syncing,
        mempool_txs: status.mempool_txs,
        scrub: api.backend.scrub(),
        agreement: api.backend.agreement(),
    })
}

/// `chain_getBlock`: one block by height or hash, charged to `budget`.
pub(super) async fn get_block<B: Backend>(
    api: &LedgerApi<B>,
    budget: ResponseBudget,
    block: BlockId,
) -> RpcResult<Block> {
    budget.check_left()?;
    api.read(move |backend| {
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

/// `chain_getBlocks`: a page of blocks `from..=to`, cut short by the page size, the head or
/// what is left of `budget`.
pub(super) async fn get_blocks<B: Backend>(
    api: &LedgerApi<B>,
    budget: ResponseBudget,
    from: Height,
    to: Height,
) -> RpcResult<Vec<Block>> {
    if from == 0 || to < from {
        return Err(invalid_params(format!("need 1 <= from <= to, got from {from}, to {to}")));
    }
    budget.check_left()?;
    api.read(move |backend| {
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

/// `chain_getValidators`: the set that certifies `height` (default: the next block), known up
/// to the head + 1.
pub(super) async fn get_validators<B: Backend>(api: &LedgerApi<B>, height: Option<Height>) -> RpcResult<Validators> {
    api.read(move |backend| {
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

/// `chain_getDivergences`: what the node published; no store read.
pub(super) fn get_divergences<B: Backend>(api: &LedgerApi<B>) -> Vec<Divergence> {
    api.backend.divergences()
}

/// `chain_getEvidence`: the conflicting votes the node recorded, each with the bytes its
/// signatures cover (which need the chain id, hence the head read).
pub(super) async fn get_evidence<B: Backend>(api: &LedgerApi<B>) -> RpcResult<Vec<Evidence>> {
    api.read(|backend| {
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

/// `chain_subscribeBlocks`: each committed block's header, in order, until the client leaves.
pub(super) async fn subscribe_blocks<B: Backend>(
    api: &LedgerApi<B>,
    pending: PendingSubscriptionSink,
) -> SubscriptionResult {
    let mut blocks = api.backend.subscribe();
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
