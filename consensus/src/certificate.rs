use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    ChainId, Digest, Height, PublicKey, Signature, SigningKey, ValidatorIndex, ValidatorSet, View, Vote, VoteKind,
    verify_batch,
};

/// One validator's signature in a certificate, naming the signer by its index in the set.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct VoteSignature {
    /// Index of the signer in the validator set in force at the certificate's height.
    pub validator: ValidatorIndex,
    /// Its signature over the COMMIT vote's signing bytes.
    pub signature: Signature,
}

/// Proof that a block was decided: 2f+1 distinct validators' COMMIT signatures over
/// (chain id, height, view, block digest). Stored beside every block.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// The chain the block belongs to.
    pub chain_id: ChainId,
    /// The decided height.
    pub height: Height,
    /// The view in which it was decided.
    pub view: View,
    /// The decided block's hash.
    pub digest: Digest,
    /// The COMMIT signatures.
    pub signatures: Vec<VoteSignature>,
}

/// Why a certificate does not prove what it claims.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CertificateError {
    /// Signed for another chain.
    #[error("certificate is for chain {found}, expected {expected}")]
    WrongChain {
        /// Chain expected.
        expected: ChainId,
        /// Chain in the certificate.
        found: ChainId,
    },
    /// Certifies another height.
    #[error("certificate is for height {found}, expected {expected}")]
    WrongHeight {
        /// Height expected.
        expected: Height,
        /// Height in the certificate.
        found: Height,
    },
    /// Certifies another block.
    #[error("certificate is for block {found}, expected {expected}")]
    WrongDigest {
        /// Digest expected.
        expected: Digest,
        /// Digest in the certificate.
        found: Digest,
    },
    /// A signer index outside the validator set.
    #[error("signer index {validator} is not a member of the {members}-validator set")]
    NotMember {
        /// The offending index.
        validator: ValidatorIndex,
        /// Size of the set.
        members: usize,
    },
    /// The same validator twice.
    #[error("validator {validator} signed twice")]
    Duplicate {
        /// The repeated index.
        validator: ValidatorIndex,
    },
    /// Fewer than a quorum of signatures.
    #[error("{found} signatures, a quorum needs {needed}")]
    InsufficientSignatures {
        /// Distinct valid-looking signatures present.
        found: usize,
        /// Quorum of the set.
        needed: usize,
    },
    /// A signature that does not verify.
    #[error("signature of validator {validator} does not verify")]
    BadSignature {
        /// Index of the signer whose signature failed.
        validator: ValidatorIndex,
    },
}

impl CommitCertificate {
    /// The COMMIT vote every signature in this certificate signs.
    pub fn vote(&self) -> Vote {
        Vote { kind: VoteKind::Commit, height: self.height, view: self.view, digest: self.digest }
    }

    /// Builds a certificate from the given signers' keys: for tests, tools and benchmarks that
    /// play every validator. In a network, certificates are assembled from received votes.
    pub fn sign(
        chain_id: &ChainId,
        height: Height,
        view: View,
        digest: Digest,
        signers: &[(ValidatorIndex, &SigningKey)],
    ) -> Self {
        let vote = Vote { kind: VoteKind::Commit, height, view, digest };
        let bytes = vote.signing_bytes(chain_id);
        let signatures = signers
            .iter()
            .map(|(validator, key)| VoteSignature { validator: *validator, signature: key.sign(&bytes) })
            .collect();
        CommitCertificate { chain_id: chain_id.clone(), height, view, digest, signatures }
    }

    /// Checks that this certificate proves `digest` was decided at `height` on `chain_id` by
    /// `validators` (the set in force at that height).
    ///
    /// Rejects other chains, heights and digests, indices outside the set, repeated signers,
    /// fewer than a quorum, and any signature that does not verify (checked as one batch).
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
        height: Height,
        digest: &Digest,
    ) -> Result<(), CertificateError> {
        if &self.chain_id != chain_id {
            return Err(CertificateError::WrongChain { expected: chain_id.clone(), found: self.chain_id.clone() });
        }
        if self.height != height {
            return Err(CertificateError::WrongHeight { expected: height, found: self.height });
        }
        if &self.digest != digest {
            return Err(CertificateError::WrongDigest { expected: *digest, found: self.digest });
        }
        verify_quorum(chain_id, validators, self.vote(), &self.signatures)
    }
}

/// Proof that a digest was prepared in a view: 2f+1 distinct validators' PREPARE signatures.
/// Carried in VIEW-CHANGE messages so a new view can only re-propose what may have been
/// committed (PBFT §4.4).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PreparedCertificate {
    /// The height.
    pub height: Height,
    /// The view in which the digest was prepared.
    pub view: View,
    /// The prepared digest.
    pub digest: Digest,
    /// The PREPARE signatures.
    pub signatures: Vec<VoteSignature>,
}

impl PreparedCertificate {
    /// The PREPARE vote every signature signs.
    pub fn vote(&self) -> Vote {
        Vote { kind: VoteKind::Prepare, height: self.height, view: self.view, digest: self.digest }
    }

    /// Checks the certificate is for `height` and holds a quorum of valid PREPAREs.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
        height: Height,
    ) -> Result<(), CertificateError> {
        if self.height != height {
            return Err(CertificateError::WrongHeight { expected: height, found: self.height });
        }
        verify_quorum(chain_id, validators, self.vote(), &self.signatures)
    }
}

/// Checks that `signatures` are a quorum of distinct members' valid signatures over `vote`.
fn verify_quorum(
    chain_id: &ChainId,
    validators: &ValidatorSet,
    vote: Vote,
    signatures: &[VoteSignature],
) -> Result<(), CertificateError> {
    let mut seen = vec![false; validators.len()];
    let mut keys: Vec<PublicKey> = Vec::with_capacity(signatures.len());
    for VoteSignature { validator, .. } in signatures {
        let key = validators
            .get(*validator)
            .ok_or(CertificateError::NotMember { validator: *validator, members: validators.len() })?;
        let slot = &mut seen[*validator as usize];
        if *slot {
            return Err(CertificateError::Duplicate { validator: *validator });
        }
        *slot = true;
        keys.push(*key);
    }
    // PBFT §4.2: prepared and committed both need matching votes from a quorum (2f+1), so any
    // two such sets share an honest validator.
    if signatures.len() < validators.quorum() {
        return Err(CertificateError::InsufficientSignatures { found: signatures.len(), needed: validators.quorum() });
    }
    let bytes = vote.signing_bytes(chain_id);
    let messages: Vec<&[u8]> = vec![bytes.as_slice(); keys.len()];
    let signature_list: Vec<Signature> = signatures.iter().map(|vote| vote.signature).collect();
    verify_batch(&messages, &signature_list, &keys)
        .map_err(|error| CertificateError::BadSignature { validator: signatures[error.index].validator })
}

#[cfg(test)]
#[path = "certificate_test.rs"]
mod tests;
