use consensus::PublicKey;

use crate::{
    Block, BlockHeader, BlockInput, Execution, ExecutionError, SignatureCheck, SignedTransaction, StateReader, execute,
};

/// Builds the next block on `previous` (the head) from `transactions`, executing them to fill
/// in the header's roots: what a leader proposes. The timestamp is raised to one millisecond
/// past the previous block if the proposer's clock is behind, so timestamps always increase.
pub fn build_block<S: StateReader + Sync>(
    state: &S,
    previous: &BlockHeader,
    proposer: PublicKey,
    timestamp_ms: u64,
    transactions: Vec<SignedTransaction>,
    signatures: SignatureCheck<'_>,
) -> Result<(Block, Execution), ExecutionError> {
    let timestamp_ms = timestamp_ms.max(previous.timestamp_ms + 1);
    let height = previous.height + 1;
    let input = BlockInput { chain_id: &previous.chain_id, height, timestamp_ms, transactions: &transactions };
    let execution = execute(state, input, signatures)?;
    let header = BlockHeader {
        chain_id: previous.chain_id.clone(),
        height,
        previous_hash: previous.hash(),
        timestamp_ms,
        proposer,
        tx_root: execution.tx_root,
        receipts_root: execution.receipts_root,
        state_root: execution.state_root,
        validator_set_digest: execution.validator_set_digest,
    };
    Ok((Block { header, transactions }, execution))
}
