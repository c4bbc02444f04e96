//! Validation of one block: the pure checks shared by validators (checking a proposal), block
//! sync and `stele audit`, each taking what it checks and returning a precise error, touching
//! nothing else; and [`apply_certified_block`], the one path a block from outside is committed
//! by. The audit of a whole stored chain is [`crate::audit`].

use consensus::{CertificateError, ChainId, CommitCertificate, Digest, Height, ValidatorSet};

use crate::{Block, BlockHeader, Execution, ExecutionError, Receipt, StateReader};

/// Why a block does not belong on the chain.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum BlockError {
    /// Header for another chain.
    #[error("block {height} is for chain {found}")]
    WrongChain {
        /// Height of the block.
        height: Height,
        /// Chain it names.
        found: ChainId,
    },
    /// Height is not the previous height plus one.
    #[error("block height {found} does not follow {previous}")]
    WrongHeight {
        /// Previous height.
        previous: Height,
        /// Height found.
        found: Height,
    },
    /// `previous_hash` is not the previous header's hash.
    #[error("block {height} links to {found}, the previous block is {expected}")]
    BrokenLink {
        /// Height of the block.
        height: Height,
        /// Previous header's hash.
        expected: Digest,
        /// Hash in the header.
        found: Digest,
    },
    /// Timestamp not after the previous one.
    #[error("block {height} timestamp {found} is not after the previous {previous}")]
    TimestampNotIncreasing {
        /// Height of the block.
        height: Height,
        /// Previous timestamp.
        previous: u64,
        /// Timestamp found.
        found: u64,
    },
    /// A header root or digest that the body or execution does not reproduce.
    #[error("block {height}: {field} is {found} in the header but {computed} when recomputed")]
    RootMismatch {
        /// Height of the block.
        height: Height,
        /// Which field.
        field: &'static str,
        /// Value in the header.
        found: Digest,
        /// Value recomputed.
        computed: Digest,
    },
    /// Stored receipts differ from re-execution.
    #[error("block {height}: stored receipt {index} differs from re-execution")]
    ReceiptMismatch {
        /// Height of the block.
        height: Height,
        /// First differing receipt (or the count, if lengths differ).
        index: usize,
    },
    /// The certificate does not prove the block.
    #[error("block {height}: certificate: {error}")]
    Certificate {
        /// Height of the block.
        height: Height,
        /// Why.
        error: CertificateError,
    },
    /// The body does not execute.
    #[error("block {height}: {error}")]
    Execution {
        /// Height of the block.
        height: Height,
        /// Why.
        error: ExecutionError,
    },
}

/// Checks that `header` follows `previous`: same chain, next height, hash link, later time.
pub fn check_link(previous: &BlockHeader, header: &BlockHeader) -> Result<(), BlockError> {
    if header.chain_id != previous.chain_id {
        return Err(BlockError::WrongChain { height: header.height, found: header.chain_id.clone() });
    }
    if header.height != previous.height + 1 {
        return Err(BlockError::WrongHeight { previous: previous.height, found: header.height });
    }
    let expected = previous.hash();
    if header.previous_hash != expected {
        return Err(BlockError::BrokenLink { height: header.height, expected, found: header.previous_hash });
    }
    if header.timestamp_ms <= previous.timestamp_ms {
        return Err(BlockError::TimestampNotIncreasing {
            height: header.height,
            previous: previous.timestamp_ms,
            found: header.timestamp_ms,
        });
    }
    Ok(())
}

/// Checks that the header's transaction root matches the body.
pub fn check_tx_root(block: &Block) -> Result<(), BlockError> {
    compare(block.header.height, "tx_root", block.header.tx_root, block.compute_tx_root())
}

/// Checks the certificate against the validator set in force at the block's height.
pub fn check_certificate(
    block: &Block,
    certificate: &CommitCertificate,
    validators: &ValidatorSet,
) -> Result<(), BlockError> {
    let header = &block.header;
    if header.validator_set_digest != validators.digest() {
        return Err(BlockError::RootMismatch {
            height: header.height,
            field: "validator_set_digest",
            found: header.validator_set_digest,
            computed: validators.digest(),
        });
    }
    certificate
        .verify(&header.chain_id, validators, header.height, &header.hash())
        .map_err(|error| BlockError::Certificate { height: header.height, error })
}

/// Re-executes the block on the state after its parent, checking the signatures `signatures`
/// asks for, and checks every root in its header. Returns the execution so the caller can
/// commit it.
pub fn check_execution<S: StateReader + Sync>(
    state: &S,
    block: &Block,
    signatures: crate::SignatureCheck<'_>,
) -> Result<Execution, BlockError> {
    let header = &block.header;
    let execution = crate::execute(
        state,
        crate::BlockInput {
            chain_id: &header.chain_id,
            height: header.height,
            timestamp_ms: header.timestamp_ms,
            transactions: &block.transactions,
        },
        signatures,
    )
    .map_err(|error| BlockError::Execution { height: header.height, error })?;
    compare(header.height, "tx_root", header.tx_root, execution.tx_root)?;
    compare(header.height, "receipts_root", header.receipts_root, execution.receipts_root)?;
    compare(header.height, "state_root", header.state_root, execution.state_root)?;
    compare(header.height, "validator_set_digest", header.validator_set_digest, execution.validator_set_digest)?;
    Ok(execution)
}

/// Checks stored receipts against those re-execution produced.
pub fn check_receipts(height: Height, stored: &[Receipt], computed: &[Receipt]) -> Result<(), BlockError> {
    if let Some(index) = stored.iter().zip(computed).position(|(a, b)| a != b) {
        return Err(BlockError::ReceiptMismatch { height, index });
    }
    if stored.len() != computed.len() {
        return Err(BlockError::ReceiptMismatch { height, index: stored.len().min(computed.len()) });
    }
    Ok(())
}

fn compare(height: Height, field: &'static str, found: Digest, computed: Digest) -> Result<(), BlockError> {
    if found != computed {
        return Err(BlockError::RootMismatch { height, field, found, computed });
    }
    Ok(())
}

/// Why a certified block could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ApplyError {
    /// The block or its certificate is wrong.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

/// The path every block from outside takes (block sync, replay, catching up after a decision):
/// check the link to the head, the transaction root, the certificate against the validator set
/// in force at its height, re-execute it, and commit it. Nothing is written unless every check
/// passes.
pub fn apply_certified_block<S>(store: &S, certified: &crate::CertifiedBlock) -> Result<(), ApplyError>
where
    S: crate::BlockReader + crate::BlockWriter + crate::StateHistory + Sync,
{
    let block = &certified.block;
    let head = store.head()?;
    check_link(&head, &block.header)?;
    check_tx_root(block)?;
    let validators = store.validator_set_for(block.header.height)?;
    check_certificate(block, &certified.certificate, &validators)?;
    let execution = check_execution(store, block, crate::SignatureCheck::All)?;
    store.commit(block, &certified.certificate, execution)?;
    Ok(())
}
