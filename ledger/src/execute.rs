//! Deterministic execution of a block's transactions against the state.
//!
//! A block is invalid (the whole proposal is rejected) if any transaction fails a stateless
//! check, its signature, or its nonce, or if the block exceeds its limits. A valid transaction
//! whose effect cannot happen (no permission, not enough balance, ...) is still included: it
//! consumes its nonce and its receipt records the failure.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use consensus::{ChainId, Digest, Height, PublicKey, Signature, verify_batch};
use jmt::storage::TreeUpdateBatch;
use rayon::prelude::*;

use crate::{
    Account, Address, Failure, Params, Payload, Receipt, SignedTransaction, StoreError, TxError, ValidatorSchedule,
    encode, merkle,
    state::{LastBlock, StateReader, StateTree, decode_value, key_hash, keys},
    store::TreeWalk,
};

/// Signatures per batch: large enough to amortise, small enough to split over cores.
const SIGNATURE_CHUNK: usize = 256;

/// Why a block cannot be executed: the proposal is invalid (or the store failed).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ExecutionError {
    /// More transactions than `Params::max_block_txs`.
    #[error("block has {count} transactions, the limit is {max}")]
    TooManyTransactions {
        /// Transactions in the block.
        count: usize,
        /// Limit.
        max: u32,
    },
    /// More bytes than `Params::max_block_bytes`.
    #[error("block transactions take {size} bytes, the limit is {max}")]
    TooManyBytes {
        /// Encoded size of the transactions.
        size: u64,
        /// Limit.
        max: u64,
    },
    /// A transaction fails a stateless check or its signature.
    #[error("transaction {index}: {error}")]
    InvalidTransaction {
        /// Position in the block.
        index: usize,
        /// What is wrong.
        error: TxError,
    },
    /// A transaction's nonce is not its account's next nonce.
    #[error("transaction {index}: nonce {found}, the account expects {expected}")]
    BadNonce {
        /// Position in the block.
        index: usize,
        /// The account's nonce.
        expected: u64,
        /// The transaction's nonce.
        found: u64,
    },
    /// The block does not extend the state it is executed on.
    #[error("block {height} does not follow the state's last block {last}")]
    WrongHeight {
        /// Height of the block.
        height: Height,
        /// Height of the last executed block.
        last: Height,
    },
    /// Reading the state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything executing a block produces: what the header must commit to and what the store
/// must write.
pub struct Execution {
    /// Hashes of the transactions, in order.
    pub tx_hashes: Vec<Digest>,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// Merkle root of the transaction hashes.
    pub tx_root: Digest,
    /// Merkle root of the receipt hashes.
    pub receipts_root: Digest,
    /// State root after the block.
    pub state_root: Digest,
    /// Digest of the validator set that certifies this block.
    pub validator_set_digest: Digest,
    /// State writes (key to new value, `None` to delete).
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// New tree nodes and versioned values for the store.
    pub tree_update: TreeUpdateBatch,
}

/// What a block asks of execution: its place in the chain and its body.
#[derive(Clone, Copy)]
pub struct BlockInput<'a> {
    /// The chain.
    pub chain_id: &'a ChainId,
    /// The block's height (the state must be at `height - 1`).
    pub height: Height,
    /// The block's timestamp.
    pub timestamp_ms: u64,
    /// The body.
    pub transactions: &'a [SignedTransaction],
}

/// Which of a block's transaction signatures execution checks.
#[derive(Clone, Copy)]
pub enum SignatureCheck<'a> {
    /// Every one: a block from anywhere (a peer, sync, an audit).
    All,
    /// Every one the function does not vouch for: it says this node already checked exactly
    /// these bytes (its mempool admitted them), so each signature is checked once per node,
    /// not at admission and again in every block.
    Unverified(&'a (dyn Fn(&SignedTransaction) -> bool + Sync)),
}

impl SignatureCheck<'_> {
    /// Whether `transaction`'s signature is to be checked.
    fn wanted(&self, transaction: &SignedTransaction) -> bool {
        match self {
            SignatureCheck::All => true,
            SignatureCheck::Unverified(verified) => !verified(transaction),
        }
    }
}

/// Executes a block on the state after its parent, checking the signatures `signatures` asks
/// for. Pure apart from reading `state`.
pub fn execute<S: StateReader + Sync>(
    state: &S,
    block: BlockInput<'_>,
    signatures: SignatureCheck<'_>,
) -> Result<Execution, ExecutionError> {
    let params: Params = read(state, keys::PARAMS)?.ok_or_else(|| missing(keys::PARAMS))?;
    let last: LastBlock = read(state, keys::LAST_BLOCK)?.ok_or_else(|| missing(keys::LAST_BLOCK))?;
    if block.height != last.height + 1 {
        return Err(ExecutionError::WrongHeight { height: block.height, last: last.height });
    }
    check_stateless(block, &params)?;
    // Signature checks (batched, over all cores) run while the block executes: execution only
    // reads the state and its result is dropped if any signature fails, so the outcome is the
    // one of checking first, and a signature error always wins over an execution error.
    let (signatures, execution) =
        rayon::join(|| check_signatures(block.transactions, signatures), || apply_block(state, block, &params));
    signatures?;
    execution
}

/// Executes a block whose signatures are being checked elsewhere.
fn apply_block<S: StateReader + Sync>(
    state: &S,
    block: BlockInput<'_>,
    params: &Params,
) -> Result<Execution, ExecutionError> {
    let tx_hashes: Vec<Digest> = block.transactions.par_iter().map(SignedTransaction::hash).collect();
    let schedule: ValidatorSchedule = read(state, keys::VALIDATORS)?.ok_or_else(|| missing(keys::VALIDATORS))?;
    let validator_set_digest = schedule
        .set_at(block.height)
        .map_err(|error| StoreError::InvalidValidatorSet { height: block.height, error: Arc::new(error) })?
        .digest();

    let mut overlay = Overlay::new(state, schedule, params, block.height)?;
    let mut receipts = Vec::with_capacity(block.transactions.len());
    for (index, (transaction, tx_hash)) in block.transactions.iter().zip(&tx_hashes).enumerate() {
        let failure = overlay.apply(index, transaction)?;
        receipts.push(Receipt { tx_hash: *tx_hash, failure });
    }
    let mut writes = overlay.into_writes(block.height)?;
    let last = LastBlock { height: block.height, timestamp_ms: block.timestamp_ms };
    writes.insert(keys::LAST_BLOCK.to_vec(), Some(encode(&last)));

    let tree = crate::state::Guarded::new(state);
    let (state_root, tree_update) = {
        let walk = StateTree::new(&tree)
            .put_value_set(writes.iter().map(|(key, value)| (key_hash(key), value.clone())), block.height);
        tree.finish(TreeWalk::Update { height: block.height }, walk)?
    };
    let receipt_hashes: Vec<Digest> = receipts.iter().map(Receipt::hash).collect();
    Ok(Execution {
        tx_root: merkle::root(&tx_hashes),
        receipts_root: merkle::root(&receipt_hashes),
        tx_hashes,
        receipts,
        state_root: Digest(state_root.0),
        validator_set_digest,
        writes,
        tree_update,
    })
}

fn check_stateless(block: BlockInput<'_>, params: &Params) -> Result<(), ExecutionError> {
    let count = block.transactions.len();
    if count > params.max_block_txs as usize {
        return Err(ExecutionError::TooManyTransactions { count, max: params.max_block_txs });
    }
    let mut size: u64 = 0;
    for (index, transaction) in block.transactions.iter().enumerate() {
        size += transaction
            .check_stateless(block.chain_id, params)
            .map_err(|error| ExecutionError::InvalidTransaction { index, error })? as u64;
    }
    if size > params.max_block_bytes {
        return Err(ExecutionError::TooManyBytes { size, max: params.max_block_bytes });
    }
    Ok(())
}

/// Verifies every signature in parallel batches of 256; names the first bad one.
pub fn verify_signatures(transactions: &[SignedTransaction]) -> Result<(), ExecutionError> {
    check_signatures(transactions, SignatureCheck::All)
}

/// Verifies the signatures `signatures` asks for; names the first bad one (by its index in the
/// block).
fn check_signatures(transactions: &[SignedTransaction], signatures: SignatureCheck<'_>) -> Result<(), ExecutionError> {
    let unchecked: Vec<usize> =
        (0..transactions.len()).into_par_iter().filter(|index| signatures.wanted(&transactions[*index])).collect();
    unchecked
        .par_chunks(SIGNATURE_CHUNK)
        .map(|chunk| {
            let messages: Vec<Vec<u8>> =
                chunk.iter().map(|index| transactions[*index].transaction.signing_bytes()).collect();
            let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let signatures: Vec<Signature> = chunk.iter().map(|index| transactions[*index].signature).collect();
            let signers: Vec<PublicKey> = chunk.iter().map(|index| transactions[*index].transaction.signer).collect();
            verify_batch(&message_refs, &signatures, &signers).map_err(|error| ExecutionError::InvalidTransaction {
                index: chunk[error.index],
                error: TxError::BadSignature,
            })
        })
        // Collected in order first, so the error reported is the lowest index on every node.
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

fn read<T: borsh::BorshDeserialize>(state: &impl StateReader, key: &[u8]) -> Result<Option<T>, StoreError> {
    state.latest(key)?.map(|bytes| decode_value(key, &bytes)).transpose()
}

fn missing(key: &[u8]) -> StoreError {
    StoreError::MissingState { key: key.to_vec(), height: None }
}

/// The state as the block changes it: reads fall through to the store, writes stay here.
struct Overlay<'a, S> {
    state: &'a S,
    params: &'a Params,
    height: Height,
    accounts: HashMap<Address, Account>,
    records: HashMap<Vec<u8>, Option<Vec<u8>>>,
    schedule: ValidatorSchedule,
    schedule_changed: bool,
    supply: u64,
    supply_changed: bool,
}

impl<'a, S: StateReader> Overlay<'a, S> {
    fn new(state: &'a S, schedule: ValidatorSchedule, params: &'a Params, height: Height) -> Result<Self, StoreError> {
        let supply = read(state, keys::SUPPLY)?.ok_or_else(|| missing(keys::SUPPLY))?;
        Ok(Overlay {
            state,
            params,
            height,
            accounts: HashMap::new(),
            records: HashMap::new(),
            schedule,
            schedule_changed: false,
            supply,
            supply_changed: false,
        })
    }

    fn account(&mut self, address: Address) -> Result<&mut Account, StoreError> {
        if !self.accounts.contains_key(&address) {
            let account = read(self.state, &keys::account(&address))?.unwrap_or_default();
            self.accounts.insert(address, account);
        }
        Ok(self.accounts.get_mut(&address).expect("inserted above"))
    }

    fn record_exists(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        if let Some(value) = self.records.get(key) {
            return Ok(value.is_some());
        }
        Ok(self.state.latest(&keys::record(key))?.is_some())
    }

    /// Applies one transaction; `Ok(Some(failure))` is an included but failed transaction.
    fn apply(&mut self, index: usize, signed: &SignedTransaction) -> Result<Option<Failure>, ExecutionError> {
        let transaction = &signed.transaction;
        let sender = transaction.sender();
        let account = self.account(sender)?;
        if transaction.nonce != account.nonce || account.nonce == u64::MAX {
            return Err(ExecutionError::BadNonce { index, expected: account.nonce, found: transaction.nonce });
        }
        account.nonce += 1;
        let required = transaction.payload.required_role();
        if !account.roles.contains(required) {
            return Ok(Some(Failure::PermissionDenied { required }));
        }
        Ok(self.apply_payload(sender, &transaction.payload)?.err())
    }

    fn apply_payload(&mut self, sender: Address, payload: &Payload) -> Result<Result<(), Failure>, StoreError> {
        match payload {
            Payload::Transfer { to, amount } => {
                let from = self.account(sender)?;
                if from.balance < *amount {
                    return Ok(Err(Failure::InsufficientBalance { balance: from.balance, needed: *amount }));
                }
                from.balance -= amount;
                // Cannot overflow: every balance is at most the supply, which fits in a u64.
                self.account(*to)?.balance += amount;
            }
            Payload::Mint { to, amount } => {
                let Some(supply) = self.supply.checked_add(*amount) else {
                    return Ok(Err(Failure::BalanceOverflow));
                };
                self.supply = supply;
                self.supply_changed = true;
                self.account(*to)?.balance += amount;
            }
            Payload::PutRecord { key, value } => {
                self.records.insert(key.clone(), Some(value.clone()));
            }
            Payload::DeleteRecord { key } => {
                if !self.record_exists(key)? {
                    return Ok(Err(Failure::RecordNotFound));
                }
                self.records.insert(key.clone(), None);
            }
            Payload::GrantRole { account, role } => {
                let target = self.account(*account)?;
                target.roles = target.roles.with(*role);
            }
            Payload::RevokeRole { account, role } => {
                let target = self.account(*account)?;
                target.roles = target.roles.without(*role);
            }
            Payload::AddValidator { validator } => {
                let mut next = self.schedule.latest().to_vec();
                if next.iter().any(|v| v.public_key == validator.public_key) {
                    return Ok(Err(Failure::ValidatorExists));
                }
                if next.iter().any(|v| v.name == validator.name || v.peer_id == validator.peer_id) {
                    return Ok(Err(Failure::InvalidValidatorSet(format!(
                        "name {:?} or peer id {} is already used",
                        validator.name, validator.peer_id
                    ))));
                }
                next.push(validator.clone());
                return Ok(self.schedule_validators(next));
            }
            Payload::RemoveValidator { public_key } => {
                let mut next = self.schedule.latest().to_vec();
                let before = next.len();
                next.retain(|v| &v.public_key != public_key);
                if next.len() == before {
                    return Ok(Err(Failure::ValidatorNotFound));
                }
                // An admin key must not be able to take away the fault tolerance the genesis
                // promised (3 validators tolerate no Byzantine one).
                if next.len() < self.params.min_validators as usize {
                    return Ok(Err(Failure::InvalidValidatorSet(format!(
                        "removing it would leave {} validators; the genesis requires at least {}",
                        next.len(),
                        self.params.min_validators
                    ))));
                }
                return Ok(self.schedule_validators(next));
            }
        }
        Ok(Ok(()))
    }

    fn schedule_validators(&mut self, next: Vec<crate::ValidatorInfo>) -> Result<(), Failure> {
        consensus::ValidatorSet::new(next.iter().map(|v| v.public_key).collect())
            .map_err(|error| Failure::InvalidValidatorSet(error.to_string()))?;
        self.schedule.schedule(self.height + self.params.validator_change_delay, next);
        self.schedule_changed = true;
        Ok(())
    }

    fn into_writes(mut self, height: Height) -> Result<BTreeMap<Vec<u8>, Option<Vec<u8>>>, StoreError> {
        let mut writes = BTreeMap::new();
        for (address, account) in &self.accounts {
            writes.insert(keys::account(address), Some(encode(account)));
        }
        for (key, value) in self.records {
            writes.insert(keys::record(&key), value);
        }
        // Entries that can no longer be in force after this block are dropped, so the
        // schedule stays small; the state root covers the result.
        let before = self.schedule.entries.len();
        self.schedule.prune_before(height + 1);
        if self.schedule_changed || self.schedule.entries.len() != before {
            writes.insert(keys::VALIDATORS.to_vec(), Some(encode(&self.schedule)));
        }
        if self.supply_changed {
            writes.insert(keys::SUPPLY.to_vec(), Some(encode(&self.supply)));
        }
        Ok(writes)
    }
}
