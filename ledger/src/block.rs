use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{ChainId, CommitCertificate, Digest, Height, PublicKey};

use crate::{SignedTransaction, merkle};

/// What validators agree on: the header's hash is the digest in every vote and certificate.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: ChainId,
    /// Height: 0 for the genesis header, then +1 per block.
    pub height: Height,
    /// Hash of the previous header (the genesis header's is the genesis document hash).
    pub previous_hash: Digest,
    /// Proposer's clock in milliseconds since the Unix epoch; strictly increasing.
    pub timestamp_ms: u64,
    /// Consensus key of the validator that proposed the block.
    pub proposer: PublicKey,
    /// Merkle root of the transaction hashes.
    pub tx_root: Digest,
    /// Merkle root of the receipt hashes.
    pub receipts_root: Digest,
    /// Root of the state after executing this block.
    pub state_root: Digest,
    /// Digest of the validator set that certifies this block.
    pub validator_set_digest: Digest,
}

impl BlockHeader {
    /// sha3-256 of the encoded header: the block's identity.
    pub fn hash(&self) -> Digest {
        Digest::of(&borsh::to_vec(self).expect("encoding to a Vec cannot fail"))
    }
}

/// A header and the transactions it commits to.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The body, in execution order.
    pub transactions: Vec<SignedTransaction>,
}

impl Block {
    /// The block's identity (its header hash).
    pub fn hash(&self) -> Digest {
        self.header.hash()
    }

    /// Merkle root of this body's transaction hashes, to compare with `header.tx_root`.
    pub fn compute_tx_root(&self) -> Digest {
        merkle::root(&self.tx_hashes())
    }

    /// The hashes of the transactions, in order.
    pub fn tx_hashes(&self) -> Vec<Digest> {
        self.transactions.iter().map(SignedTransaction::hash).collect()
    }
}

/// A block with the certificate that proves it was decided: what the store keeps and what
/// block sync sends. The genesis header (height 0) has no certificate.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct CertifiedBlock {
    /// The block.
    pub block: Block,
    /// 2f+1 COMMIT signatures over its hash.
    pub certificate: CommitCertificate,
}
