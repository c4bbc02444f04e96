//! Validation of one block: the pure checks shared by validators (checking a proposal), block
//! sync and `stele audit`, each taking what it checks and returning a precise error, touching
//! nothing else; and [`apply_certified_block`], the one path a block from outside is committed
//! by. The audit of a whole stored chain is [`crate::audit`].

use consensus::{CertificateError, ChainId, CommitCertificate, Digest, Height, ValidatorSet};

use crate::SignatureCheck;

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
        /// Why (boxed: a `StoreError` inside makes it large, and every check returns this).
        error: Box<ExecutionError>,
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
    .map_err(|error| BlockError::Execution { height: header.height, error: Box::new(error) })?;
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

/// How far ahead of a validator's clock a proposed block's timestamp may be (ms).
pub const CLOCK_DRIFT_MAX_MS: u64 = 10_000;

/// Why a validator refuses a block proposed for a height: a fault of the block, never of
/// timing (a block that is only early is [`ProposalVerdict::Early`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("the block proposed at height {height} is refused: {reason}")]
pub struct ProposalRejected {
    /// The height it was proposed at.
    pub height: Height,
    /// What is wrong with it.
    pub reason: RejectReason,
}

/// What is wrong with a proposed block.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum RejectReason {
    /// Its header is for another height.
    #[error("its header is for height {block}")]
    WrongHeight {
        /// The header's height.
        block: Height,
    },
    /// Its header names a proposer outside the validator set.
    #[error("its proposer is not a validator")]
    ProposerNotValidator,
    /// It does not follow the head, or does not execute to its header.
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// What the proposal rules say of a block.
pub enum ProposalVerdict {
    /// Valid: its execution, ready to commit once decided.
    Valid(Box<Execution>),
    /// Its timestamp is more than [`CLOCK_DRIFT_MAX_MS`] ahead of `now_ms`: no fault (a
    /// leader's clock may run a little ahead), to be checked again from `until_ms`.
    Early {
        /// This node's clock reading from which the timestamp is acceptable.
        until_ms: u64,
    },
    /// Refused.
    Rejected(ProposalRejected),
}

/// The rules a validator applies to a block proposed at `height` on `head` before voting for
/// it, cheap checks first and execution last: the header's height, its link to the head, its
/// proposer in `validators`, its timestamp against this node's clock `now_ms`, then
/// [`check_execution`] (which compares the transaction root and every other root).
pub fn check_proposal<S: StateReader + Sync>(
    state: &S,
    head: &BlockHeader,
    validators: &ValidatorSet,
    height: Height,
    block: &Block,
    now_ms: u64,
    signatures: SignatureCheck<'_>,
) -> ProposalVerdict {
    let reject = |reason: RejectReason| ProposalVerdict::Rejected(ProposalRejected { height, reason });
    if block.header.height != height {
        return reject(RejectReason::WrongHeight { block: block.header.height });
    }
    if let Err(error) = check_link(head, &block.header) {
        return reject(error.into());
    }
    if validators.index_of(&block.header.proposer).is_none() {
        return reject(RejectReason::ProposerNotValidator);
    }
    let acceptable_from = block.header.timestamp_ms.saturating_sub(CLOCK_DRIFT_MAX_MS);
    if now_ms < acceptable_from {
        return ProposalVerdict::Early { until_ms: acceptable_from };
    }
    match check_execution(state, block, signatures) {
        Ok(execution) => ProposalVerdict::Valid(Box::new(execution)),
        Err(error) => reject(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use consensus::{ChainId, SigningKey};

    use super::*;
    use crate::{BlockReader, Genesis, MemStore, Params, StateHistory, ValidatorInfo, build_block};

    #[test]
    fn the_proposal_rules_refuse_each_fault_with_its_reason_and_an_early_block_is_no_fault() {
        let key = SigningKey::from_seed([5; 32]);
        let genesis = Genesis {
            chain_id: ChainId::new("proposals").expect("chain id"),
            genesis_time_ms: 1_000,
            validators: vec![ValidatorInfo { name: "v0".into(), public_key: key.public_key(), peer_id: "p".into() }],
            accounts: Vec::new(),
            params: Params::default(),
        };
        let store = MemStore::new(&genesis).expect("store");
        let head = store.head().expect("head");
        let validators = store.validator_set_for(1).expect("validators");
        let now_ms = 50_000;
        let propose = |proposer: &SigningKey, timestamp_ms: u64| {
            build_block(&store, &head, proposer.public_key(), timestamp_ms, Vec::new(), SignatureCheck::All)
                .expect("block")
                .0
        };
        let check = |block: &Block, height: Height| {
            check_proposal(&store, &head, &validators, height, block, now_ms, SignatureCheck::All)
        };
        let block = propose(&key, now_ms);
        assert!(matches!(check(&block, 1), ProposalVerdict::Valid(_)));
        let rejected = |verdict: ProposalVerdict| match verdict {
            ProposalVerdict::Rejected(rejected) => rejected,
            _ => panic!("not rejected"),
        };
        assert_eq!(
            rejected(check(&block, 2)),
            ProposalRejected { height: 2, reason: RejectReason::WrongHeight { block: 1 } }
        );
        let stranger = propose(&SigningKey::from_seed([6; 32]), now_ms);
        assert_eq!(rejected(check(&stranger, 1)).reason, RejectReason::ProposerNotValidator);
        let mut unlinked = block.clone();
        unlinked.header.previous_hash = Digest([7; 32]);
        assert!(matches!(rejected(check(&unlinked, 1)).reason, RejectReason::Block(BlockError::BrokenLink { .. })));
        let mut wrong_root = block.clone();
        wrong_root.header.state_root = Digest([8; 32]);
        assert!(matches!(rejected(check(&wrong_root, 1)).reason, RejectReason::Block(BlockError::RootMismatch { .. })));
        // Ahead of this clock by more than the drift allowed: checked again later, not refused.
        let ahead = propose(&key, now_ms + CLOCK_DRIFT_MAX_MS + 1);
        assert!(matches!(check(&ahead, 1), ProposalVerdict::Early { until_ms } if until_ms == now_ms + 1));
        let just = propose(&key, now_ms + CLOCK_DRIFT_MAX_MS);
        assert!(matches!(check(&just, 1), ProposalVerdict::Valid(_)));
    }
}
