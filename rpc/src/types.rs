//! The JSON the API speaks. Hashes, keys and addresses are 0x-hex strings; byte strings
//! (transactions, record keys and values, proofs) are 0x-hex of their bytes.

use consensus::{
    ChainId, CommitCertificate, Digest, Height, PublicKey, Signature, SignedVote, ValidatorIndex, View, VoteKind,
};
use ledger::{Address, BlockHeader, Payload, Role, SignedTransaction, ValidatorInfo};
use serde::{Deserialize, Serialize};

/// `0x` followed by lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Bytes from hex with or without `0x`.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits).map_err(|error| format!("not hex: {error}"))
}

/// A block by height or by hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    /// Its height.
    Height(Height),
    /// Its header hash.
    Hash(Digest),
}

/// `chain_status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// The chain.
    pub chain_id: ChainId,
    /// Hash of the genesis document.
    pub genesis_hash: Digest,
    /// Height of the last committed block.
    pub height: Height,
    /// Its hash.
    pub head_hash: Digest,
    /// The state root after it.
    pub state_root: Digest,
    /// Its timestamp.
    pub timestamp_ms: u64,
    /// The consensus view of the next height.
    pub view: View,
    /// `validator` or `observer`.
    pub role: String,
    /// Connected peers.
    pub peers: usize,
    /// Whether the node is fetching blocks from peers ahead of it.
    pub syncing: bool,
    /// Pending transactions.
    pub mempool_txs: usize,
    /// The background scrub of the stored chain (`[checks]`); absent from nodes that do not
    /// run one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrub: Option<ScrubStatus>,
    /// The comparisons of this node's chain with its peers' (`[checks]`); absent from nodes
    /// that do not compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<AgreementStatus>,
}

/// `chain_status.agreement`: the comparisons of this node's certified blocks with its peers'.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementStatus {
    /// Whether the node compares (`checks.enabled` and `checks.compare_with_peers`).
    pub enabled: bool,
    /// Peer answers compared (since the node's first start: the record is saved).
    pub comparisons: u64,
    /// Answers whose headers their certificates do not commit (or of another kind).
    pub invalid_answers: u64,
    /// Pieces of divergence evidence kept (`chain_getDivergences`); anything but 0 means two
    /// quorums signed two blocks at one height.
    pub divergences: usize,
    /// The last comparison.
    pub last: Option<PeerComparison>,
}

/// One comparison with one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerComparison {
    /// The peer's id.
    pub peer: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// The heights compared (the peer's head and the checkpoint, where this node has them).
    pub heights: Vec<Height>,
    /// Whether the peer's blocks at those heights were this node's.
    pub agreed: bool,
}

/// A header with the certificate that commits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedHeader {
    /// The header (`tx_count` is 0: the body is not part of the evidence).
    pub header: Header,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

/// `chain_getDivergences`: two blocks certified at one height, one held by this node and one
/// by a peer. Both certificates verify under the validator set in force at that height, so
/// the pair proves by itself that more than f validators signed two blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The height.
    pub height: Height,
    /// The peer that served the other block.
    pub peer: String,
    /// When it was found, ms since the Unix epoch.
    pub seen_at_ms: u64,
    /// This node's block.
    pub ours: CertifiedHeader,
    /// The peer's.
    pub theirs: CertifiedHeader,
    /// The validators whose signatures are in both certificates.
    pub signed_both: Vec<PublicKey>,
}

/// `chain_status.scrub`: how far the background re-verification of the stored chain got and
/// what it found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubStatus {
    /// Whether the scrub runs (`checks.enabled`).
    pub enabled: bool,
    /// Highest height checked in the current pass (0: the pass has not checked a block yet).
    pub height: Height,
    /// Full passes over the chain completed (since the node's first start: progress is saved).
    pub passes: u64,
    /// When the current (or last) pass started, ms since the Unix epoch.
    #[serde(default)]
    pub pass_started_ms: Option<u64>,
    /// When the last full pass completed, ms since the Unix epoch; `null`: none yet.
    pub last_pass_ms: Option<u64>,
    /// While waiting between passes: when the next starts (a pass starts at most every
    /// `checks.pass_interval`); `null` during a pass.
    #[serde(default)]
    pub next_pass_ms: Option<u64>,
    /// Damaged values found (each counted once, when first found).
    pub errors: u64,
    /// Damaged values found that a later check found intact again.
    pub repaired: u64,
    /// The damage found and not since found intact, lowest height first.
    pub damaged: Vec<ScrubDamage>,
}

/// One damaged stored value the scrub found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubDamage {
    /// Height of the block (or state version) it belongs to.
    pub height: Height,
    /// The store's column family (`bodies`, `certificates`, `receipts`, `tx_index`,
    /// `tree_values`...).
    pub column: String,
    /// What does not verify.
    pub reason: String,
}

/// A block header, with its hash and transaction count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Height.
    pub height: Height,
    /// Header hash (what the certificate signs).
    pub hash: Digest,
    /// Previous header's hash.
    pub previous_hash: Digest,
    /// Proposer's clock, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Proposer's consensus key.
    pub proposer: PublicKey,
    /// Merkle root of the transaction hashes.
    pub tx_root: Digest,
    /// Merkle root of the receipts.
    pub receipts_root: Digest,
    /// State root after the block.
    pub state_root: Digest,
    /// Digest of the validator set that certifies it.
    pub validator_set_digest: Digest,
    /// Transactions in the block.
    pub tx_count: usize,
}

impl Header {
    /// The JSON form of a header.
    pub fn new(header: &BlockHeader, tx_count: usize) -> Self {
        Header {
            height: header.height,
            hash: header.hash(),
            previous_hash: header.previous_hash,
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
            tx_root: header.tx_root,
            receipts_root: header.receipts_root,
            state_root: header.state_root,
            validator_set_digest: header.validator_set_digest,
            tx_count,
        }
    }
}

/// A committed block with its certificate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// 2f+1 COMMIT signatures over the header hash.
    pub certificate: CommitCertificate,
    /// The transactions, in order.
    pub transactions: Vec<Tx>,
}

/// A transaction, decoded, with its raw encoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tx {
    /// sha3-256 of the encoding.
    pub hash: Digest,
    /// The signer's account.
    pub sender: Address,
    /// The signer's key.
    pub signer: PublicKey,
    /// Its nonce.
    pub nonce: u64,
    /// What it does (`{"type": "transfer", ...}`).
    pub payload: serde_json::Value,
    /// 0x-hex of the signed transaction's borsh encoding.
    pub raw: String,
}

impl Tx {
    /// The JSON form of a signed transaction.
    pub fn new(transaction: &SignedTransaction) -> Self {
        let inner = &transaction.transaction;
        Tx {
            hash: transaction.hash(),
            sender: inner.sender(),
            signer: inner.signer,
            nonce: inner.nonce,
            payload: payload_json(&inner.payload),
            raw: to_hex(&transaction.encode()),
        }
    }
}

/// A payload as JSON, tagged by `type`.
pub fn payload_json(payload: &Payload) -> serde_json::Value {
    use serde_json::json;
    match payload {
        Payload::Transfer { to, amount } => json!({"type": "transfer", "to": to, "amount": amount}),
        Payload::Mint { to, amount } => json!({"type": "mint", "to": to, "amount": amount}),
        Payload::PutRecord { key, value } => json!({"type": "put_record", "key": to_hex(key), "value": to_hex(value)}),
        Payload::DeleteRecord { key } => json!({"type": "delete_record", "key": to_hex(key)}),
        Payload::GrantRole { account, role } => json!({"type": "grant_role", "account": account, "role": role}),
        Payload::RevokeRole { account, role } => json!({"type": "revoke_role", "account": account, "role": role}),
        Payload::AddValidator { validator } => json!({"type": "add_validator", "validator": validator}),
        Payload::RemoveValidator { public_key } => json!({"type": "remove_validator", "public_key": public_key}),
    }
}

/// The outcome of a committed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction.
    pub tx_hash: Digest,
    /// Whether it took effect (a failed one is still in the block and used its nonce).
    pub success: bool,
    /// Why it failed.
    pub failure: Option<String>,
}

impl From<&ledger::Receipt> for Receipt {
    fn from(receipt: &ledger::Receipt) -> Self {
        Receipt {
            tx_hash: receipt.tx_hash,
            success: receipt.failure.is_none(),
            failure: receipt.failure.as_ref().map(ToString::to_string),
        }
    }
}

/// Where a transaction stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxState {
    /// In this node's mempool.
    Pending,
    /// In a committed block.
    Committed,
    /// Neither.
    Unknown,
}

/// `tx_get`, and `tx_submitAndWait`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxStatus {
    /// The transaction.
    pub hash: Digest,
    /// Pending, committed or unknown.
    pub status: TxState,
    /// Height of its block, once committed.
    pub height: Option<Height>,
    /// Position in the block, once committed.
    pub index: Option<u32>,
    /// Its receipt, once committed.
    pub receipt: Option<Receipt>,
}

/// An account at a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The address.
    pub address: Address,
    /// Balance.
    pub balance: u64,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
    /// Roles held.
    pub roles: Vec<Role>,
    /// The height read.
    pub height: Height,
}

/// A record at a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// 0x-hex key.
    pub key: String,
    /// 0x-hex value; null if absent.
    pub value: Option<String>,
    /// The height read.
    pub height: Height,
}

/// A state proof with the certified header whose state root it proves against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateProof {
    /// 0x-hex of the raw state key (`a` + address for accounts, `r` + key for records).
    pub state_key: String,
    /// 0x-hex of the value (borsh of an account; a record's bytes); null proves absence.
    pub value: Option<String>,
    /// The height proven.
    pub height: Height,
    /// The header at that height (its `state_root` is what the proof verifies against).
    pub header: Header,
    /// The header's commit certificate (absent for the genesis header).
    pub certificate: Option<CommitCertificate>,
    /// 0x-hex of the borsh-encoded `ledger::StateProof` (Jellyfish Merkle proof).
    pub proof: String,
}

/// The validator set certifying a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The height.
    pub height: Height,
    /// Signatures a certificate needs.
    pub quorum: usize,
    /// Faulty validators tolerated.
    pub max_faulty: usize,
    /// Digest of the set.
    pub digest: Digest,
    /// The validators, in index order.
    pub validators: Vec<ValidatorInfo>,
}

/// `tx_getProof`: a self-contained proof that a transaction was committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxProofBundle {
    /// The chain.
    pub chain_id: ChainId,
    /// The transaction.
    pub tx_hash: Digest,
    /// Height of its block.
    pub height: Height,
    /// Its position in the block.
    pub index: u32,
    /// Validator-set changes the bundle proves on the way from the genesis.
    pub validator_changes: usize,
    /// 0x-hex of the borsh-encoded `ledger::proof::TxProof`; `stele verify-proof` checks it
    /// against a genesis file.
    pub proof: String,
}

/// A connected peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// libp2p peer id.
    pub peer_id: String,
    /// Remote address.
    pub address: String,
    /// gossipsub score.
    pub score: Option<f64>,
}

/// What a piece of evidence proves a validator did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// Two PRE-PREPAREs (proposals) for one height and view.
    ConflictingProposal,
    /// Two PREPAREs for one height and view.
    DoublePrepare,
    /// Two COMMITs for one height and view.
    DoubleCommit,
}

impl EvidenceKind {
    /// The kind of evidence two conflicting votes of this kind make (none for the kinds that are
    /// not plain votes).
    pub fn of(kind: VoteKind) -> Option<Self> {
        match kind {
            VoteKind::PrePrepare => Some(EvidenceKind::ConflictingProposal),
            VoteKind::Prepare => Some(EvidenceKind::DoublePrepare),
            VoteKind::Commit => Some(EvidenceKind::DoubleCommit),
            VoteKind::ViewChange | VoteKind::NewView => None,
        }
    }
}

/// One of the two signed votes of a piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceVote {
    /// The digest (block hash) it votes for.
    pub digest: Digest,
    /// The validator's ed25519 signature over `signing_bytes`.
    pub signature: Signature,
    /// 0x-hex of the exact bytes signed: borsh of (`"stele/vote/v1"`, chain id, vote).
    pub signing_bytes: String,
    /// 0x-hex of the borsh `consensus::SignedVote`.
    pub raw: String,
}

impl EvidenceVote {
    /// The JSON form of a signed vote of `chain_id`.
    pub fn new(chain_id: &ChainId, vote: &SignedVote) -> Self {
        EvidenceVote {
            digest: vote.vote.digest,
            signature: vote.signature,
            signing_bytes: to_hex(&vote.vote.signing_bytes(chain_id)),
            raw: to_hex(&borsh::to_vec(vote).unwrap_or_default()),
        }
    }
}

/// `chain_getEvidence`: two conflicting votes signed by one validator. Self-verifying: both
/// signatures check against `public_key`, and `signing_bytes` decode to the same kind, height
/// and view with different digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// What it proves.
    pub kind: EvidenceKind,
    /// The validator's index in the set of `height`.
    pub validator: ValidatorIndex,
    /// The validator's consensus key.
    pub public_key: PublicKey,
    /// The height of both votes.
    pub height: Height,
    /// The view of both votes.
    pub view: View,
    /// The vote this node saw first.
    pub first: EvidenceVote,
    /// The conflicting vote.
    pub second: EvidenceVote,
    /// When this node saw the conflict, ms since the Unix epoch by its clock.
    pub seen_at_ms: u64,
    /// The peer id that delivered the second vote, if known.
    pub reported_by: Option<String>,
}
