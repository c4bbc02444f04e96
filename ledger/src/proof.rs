//! Self-contained transaction proofs: a transaction, its Merkle paths to a certified header's
//! transaction and receipt roots, and every validator-set change from the genesis to that
//! height (each itself proven), so the whole bundle verifies from the genesis file alone.
//!
//! Completeness of the changes is checked, not trusted: every certified header commits to the
//! digest of the set that signs it, so a bundle that leaves a change out computes a different
//! set and fails.

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{ChainId, CommitCertificate, Digest, Height};

use crate::{
    BlockHeader, BlockReader, Genesis, Payload, Receipt, SignedTransaction, StateHistory, StoreError,
    ValidatorSchedule,
    merkle::{self, InclusionProof},
    store::BlockPart,
};

/// A header with the certificate that decided it.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// 2f+1 COMMIT signatures over its hash.
    pub certificate: CommitCertificate,
}

/// A transaction and its receipt, each with its path to the header's roots.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct IncludedTx {
    /// The transaction.
    pub transaction: SignedTransaction,
    /// Its path to the header's `tx_root`.
    pub tx_proof: InclusionProof,
    /// Its receipt.
    pub receipt: Receipt,
    /// The receipt's path to the header's `receipts_root` (same index).
    pub receipt_proof: InclusionProof,
}

/// A block that changed the validator set, with the successful changes it carries.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ValidatorChange {
    /// The block's certified header.
    pub block: CertifiedHeader,
    /// Its successful `AddValidator` / `RemoveValidator` transactions, in block order.
    pub changes: Vec<IncludedTx>,
}

/// Proof that a transaction was committed, checkable offline from the genesis.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct TxProof {
    /// Every validator-set change before the block, in height order.
    pub validator_changes: Vec<ValidatorChange>,
    /// The block holding the transaction.
    pub block: CertifiedHeader,
    /// The transaction and its receipt.
    pub included: IncludedTx,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The bytes are not a proof.
    #[error("not a transaction proof: {0}")]
    Undecodable(String),
    /// A header of another chain.
    #[error("height {height}: header of chain {found}, expected {expected}")]
    WrongChain {
        /// Height.
        height: Height,
        /// Chain in the header.
        found: ChainId,
        /// The genesis chain.
        expected: ChainId,
    },
    /// A certified header that does not check out.
    #[error("height {height}: {reason}")]
    Header {
        /// Height.
        height: Height,
        /// Why.
        reason: String,
    },
    /// A transaction or receipt that is not where the proof says.
    #[error("height {height}: {reason}")]
    Inclusion {
        /// Height.
        height: Height,
        /// Why.
        reason: String,
    },
    /// A validator change that is not one, failed, or is out of order.
    #[error("height {height}: {reason}")]
    Change {
        /// Height.
        height: Height,
        /// Why.
        reason: String,
    },
}

impl TxProof {
    /// The encoded bundle.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("encoding to a Vec cannot fail")
    }

    /// Decodes a bundle.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        borsh::from_slice(bytes).map_err(|error| ProofError::Undecodable(error.to_string()))
    }

    /// The proven transaction's hash.
    pub fn tx_hash(&self) -> Digest {
        self.included.transaction.hash()
    }

    /// Checks the whole bundle against `genesis`: each change block's certificate against the set
    /// in force then, each change's inclusion and success, the set they produce, and finally the
    /// block's certificate and the transaction's and receipt's inclusion.
    pub fn verify(&self, genesis: &Genesis) -> Result<(), ProofError> {
        let mut schedule = ValidatorSchedule::starting(0, genesis.validators.clone());
        let target = self.block.header.height;
        let mut previous: Height = 0;
        for change in &self.validator_changes {
            let height = change.block.header.height;
            let fail = |reason: &str| ProofError::Change { height, reason: reason.to_string() };
            if height <= previous || height >= target {
                return Err(fail("validator changes must be in increasing height order, before the block"));
            }
            previous = height;
            check_certified(&genesis.chain_id, &change.block, &schedule)?;
            if change.changes.is_empty() {
                return Err(fail("a change block without changes"));
            }
            let mut last_index = None;
            for included in &change.changes {
                check_included(&change.block.header, included)?;
                if last_index.is_some_and(|last| included.tx_proof.index <= last) {
                    return Err(fail("changes must be in block order"));
                }
                last_index = Some(included.tx_proof.index);
                if included.receipt.failure.is_some() {
                    return Err(fail("a failed transaction changes nothing"));
                }
                let mut next = schedule.latest().to_vec();
                match &included.transaction.transaction.payload {
                    Payload::AddValidator { validator } => next.push(validator.clone()),
                    Payload::RemoveValidator { public_key } => next.retain(|v| &v.public_key != public_key),
                    _ => return Err(fail("not a validator change")),
                }
                schedule.schedule(height + genesis.params.validator_change_delay, next);
            }
        }
        check_certified(&genesis.chain_id, &self.block, &schedule)?;
        check_included(&self.block.header, &self.included)
    }
}

fn check_certified(
    chain_id: &ChainId,
    block: &CertifiedHeader,
    schedule: &ValidatorSchedule,
) -> Result<(), ProofError> {
    let header = &block.header;
    let height = header.height;
    if header.chain_id != *chain_id {
        return Err(ProofError::WrongChain { height, found: header.chain_id.clone(), expected: chain_id.clone() });
    }
    let fail = |reason: String| ProofError::Header { height, reason };
    let validators = schedule.set_at(height).map_err(|error| fail(format!("validator set: {error}")))?;
    if header.validator_set_digest != validators.digest() {
        return Err(fail("the header names another validator set (a validator change is missing or wrong)".into()));
    }
    block
        .certificate
        .verify(chain_id, &validators, height, &header.hash())
        .map_err(|error| fail(format!("certificate: {error}")))
}

fn check_included(header: &BlockHeader, included: &IncludedTx) -> Result<(), ProofError> {
    let fail = |reason: &str| ProofError::Inclusion { height: header.height, reason: reason.to_string() };
    let hash = included.transaction.hash();
    if !included.tx_proof.verify(&header.tx_root, &hash) {
        return Err(fail("the transaction is not under the header's tx_root"));
    }
    if included.receipt.tx_hash != hash {
        return Err(fail("the receipt is for another transaction"));
    }
    if included.receipt_proof.index != included.tx_proof.index
        || included.receipt_proof.total != included.tx_proof.total
    {
        return Err(fail("the receipt is not at the transaction's position"));
    }
    if !included.receipt_proof.verify(&header.receipts_root, &included.receipt.hash()) {
        return Err(fail("the receipt is not under the header's receipts_root"));
    }
    Ok(())
}

/// Builds the proof of a committed transaction from a store; `None` if it is not committed.
///
/// Finds validator changes by scanning headers up to the block for changes of the set digest
/// (one header read per height).
pub fn build_tx_proof<S: BlockReader + StateHistory>(store: &S, hash: &Digest) -> Result<Option<TxProof>, StoreError> {
    let Some(location) = store.tx_location(hash)? else { return Ok(None) };
    let delay = crate::state::read_params(store)?.validator_change_delay;
    let mut change_heights = Vec::new();
    // Where the set changed (RocksStore: from its index, not one header read per height).
    for height in store.validator_set_changes(location.height)? {
        let changed_at = height
            .checked_sub(delay)
            .filter(|changed_at| *changed_at >= 1)
            .ok_or(StoreError::UnexplainedValidatorChange { height, delay })?;
        if change_heights.last() != Some(&changed_at) {
            change_heights.push(changed_at);
        }
    }
    let mut validator_changes = Vec::new();
    for height in change_heights {
        let (block, receipts) = certified_with_receipts(store, height)?;
        let mut changes = Vec::new();
        for (index, transaction) in block.1.iter().enumerate() {
            let is_change = matches!(
                transaction.transaction.payload,
                Payload::AddValidator { .. } | Payload::RemoveValidator { .. }
            );
            if is_change && receipts[index].failure.is_none() {
                changes.push(included(height, &block.1, &receipts, index)?);
            }
        }
        validator_changes.push(ValidatorChange { block: block.0, changes });
    }
    let (block, receipts) = certified_with_receipts(store, location.height)?;
    let included = included(location.height, &block.1, &receipts, location.index as usize)?;
    Ok(Some(TxProof { validator_changes, block: block.0, included }))
}

type BlockParts = (CertifiedHeader, Vec<SignedTransaction>);

fn certified_with_receipts<S: BlockReader>(
    store: &S,
    height: Height,
) -> Result<(BlockParts, Vec<Receipt>), StoreError> {
    let certified = store.block(height)?.ok_or(StoreError::MissingBlock { height })?;
    let receipts = store.receipts(height)?.ok_or(StoreError::MissingBlockPart { height, part: BlockPart::Receipts })?;
    let header = CertifiedHeader { header: certified.block.header, certificate: certified.certificate };
    Ok(((header, certified.block.transactions), receipts))
}

/// The transaction at `index` of the block at `height`, with its receipt and their proofs.
fn included(
    height: Height,
    transactions: &[SignedTransaction],
    receipts: &[Receipt],
    index: usize,
) -> Result<IncludedTx, StoreError> {
    let missing = || StoreError::MissingBlockPart { height, part: BlockPart::Transaction { index } };
    let tx_hashes: Vec<Digest> = transactions.iter().map(SignedTransaction::hash).collect();
    let receipt_hashes: Vec<Digest> = receipts.iter().map(Receipt::hash).collect();
    Ok(IncludedTx {
        transaction: transactions.get(index).ok_or_else(missing)?.clone(),
        tx_proof: merkle::prove(&tx_hashes, index).ok_or_else(missing)?,
        receipt: receipts.get(index).ok_or_else(missing)?.clone(),
        receipt_proof: merkle::prove(&receipt_hashes, index).ok_or_else(missing)?,
    })
}
