//! The signed messages validators exchange, and their verification.
//!
//! Only [`SignedMessage::verify`] builds a [`Verified`] message, so the state machine never sees
//! a signature nobody checked.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{
    CertificateError, ChainId, CommitCertificate, Digest, Height, PreparedCertificate, PublicKey, Signature,
    SigningKey, ValidatorIndex, ValidatorSet, View, Vote, VoteKind,
};

/// A VIEW-CHANGE: the sender gives up on its view and asks for `view`, carrying its highest
/// prepared certificate at this height (PBFT §4.4).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ViewChange {
    /// The height.
    pub height: Height,
    /// The view asked for.
    pub view: View,
    /// The highest prepared certificate the sender holds at this height, if any.
    pub prepared: Option<PreparedCertificate>,
}

/// Domain tag of VIEW-CHANGE signatures.
const VIEW_CHANGE_DOMAIN: &[u8] = b"stele/view-change/v1";

impl ViewChange {
    /// The bytes the sender signs.
    pub fn signing_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        borsh::to_vec(&(VIEW_CHANGE_DOMAIN, chain_id, self)).expect("encoding to a Vec cannot fail")
    }
}

/// A VIEW-CHANGE with its sender and signature.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SignedViewChange {
    /// The content.
    pub view_change: ViewChange,
    /// The sender.
    pub validator: ValidatorIndex,
    /// Its signature over [`ViewChange::signing_bytes`].
    pub signature: Signature,
}

/// A PRE-PREPARE, PREPARE or COMMIT vote with its sender and signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The sender.
    pub validator: ValidatorIndex,
    /// Its signature over [`Vote::signing_bytes`].
    pub signature: Signature,
}

impl SignedVote {
    /// Signs a vote.
    pub fn sign(chain_id: &ChainId, vote: Vote, validator: ValidatorIndex, key: &SigningKey) -> Self {
        SignedVote { vote, validator, signature: key.sign(&vote.signing_bytes(chain_id)) }
    }
}

/// Everything validators send each other.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Message {
    /// The leader of view 0 proposes a digest (PBFT §4.2).
    PrePrepare(SignedVote) = 0,
    /// A replica accepts the proposal of a view (PBFT §4.2).
    Prepare(SignedVote) = 1,
    /// A replica holds a prepared certificate and commits (PBFT §4.2).
    Commit(SignedVote) = 2,
    /// A replica asks for a new view (PBFT §4.4).
    ViewChange(SignedViewChange) = 3,
    /// The leader of a view > 0 proposes, justified by 2f+1 VIEW-CHANGEs (PBFT §4.4).
    NewView {
        /// The proposal (a PRE-PREPARE vote of the new view).
        proposal: SignedVote,
        /// The 2f+1 VIEW-CHANGEs for this view that justify it.
        view_changes: Vec<SignedViewChange>,
    } = 4,
    /// A decided height's certificate, sent to replicas still working on it.
    Decided(CommitCertificate) = 5,
}

/// Why a message was dropped before reaching the state machine.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum MessageError {
    /// The sender is not in the validator set.
    #[error("sender {0} is not a validator")]
    NotMember(ValidatorIndex),
    /// A vote of the wrong kind for its message.
    #[error("a {found:?} vote cannot travel as {expected:?}")]
    WrongKind {
        /// Kind the message needs.
        expected: VoteKind,
        /// Kind found.
        found: VoteKind,
    },
    /// A signature that does not verify.
    #[error("bad signature from validator {0}")]
    BadSignature(ValidatorIndex),
    /// A message whose parts do not belong together.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A certificate that does not verify.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// Bytes that are not a message.
    #[error("undecodable message: {0}")]
    Undecodable(String),
}

/// A message whose signatures were checked against `validator_set` (by its digest).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Verified<T> {
    message: T,
    validator_set: Digest,
}

impl<T> Verified<T> {
    /// The checked message.
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Digest of the validator set it was checked against.
    pub fn validator_set(&self) -> Digest {
        self.validator_set
    }
}

impl Message {
    /// Decodes a message received from the network.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        borsh::from_slice(bytes).map_err(|error| MessageError::Undecodable(error.to_string()))
    }

    /// Encodes a message for the network.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("encoding to a Vec cannot fail")
    }

    /// The height a message is about.
    pub fn height(&self) -> Height {
        match self {
            Message::PrePrepare(vote) | Message::Prepare(vote) | Message::Commit(vote) => vote.vote.height,
            Message::ViewChange(view_change) => view_change.view_change.height,
            Message::NewView { proposal, .. } => proposal.vote.height,
            Message::Decided(certificate) => certificate.height,
        }
    }

    /// The validator that signed the message (none for a certificate, which many signed).
    pub fn sender(&self) -> Option<ValidatorIndex> {
        match self {
            Message::PrePrepare(vote) | Message::Prepare(vote) | Message::Commit(vote) => Some(vote.validator),
            Message::ViewChange(view_change) => Some(view_change.validator),
            Message::NewView { proposal, .. } => Some(proposal.validator),
            Message::Decided(_) => None,
        }
    }

    /// Checks every signature in the message (nested ones included) against the validator set
    /// of its height. Quorum rules are the state machine's; this only proves who signed what.
    pub fn verify(self, chain_id: &ChainId, validators: &ValidatorSet) -> Result<Verified<Message>, MessageError> {
        match &self {
            Message::PrePrepare(vote) => verify_vote(chain_id, validators, vote, VoteKind::PrePrepare)?,
            Message::Prepare(vote) => verify_vote(chain_id, validators, vote, VoteKind::Prepare)?,
            Message::Commit(vote) => verify_vote(chain_id, validators, vote, VoteKind::Commit)?,
            Message::ViewChange(view_change) => verify_view_change(chain_id, validators, view_change)?,
            Message::NewView { proposal, view_changes } => {
                verify_vote(chain_id, validators, proposal, VoteKind::PrePrepare)?;
                for view_change in view_changes {
                    if view_change.view_change.height != proposal.vote.height
                        || view_change.view_change.view != proposal.vote.view
                    {
                        return Err(MessageError::Malformed("a VIEW-CHANGE is for another height or view"));
                    }
                    verify_view_change(chain_id, validators, view_change)?;
                }
            }
            Message::Decided(certificate) => {
                certificate.verify(chain_id, validators, certificate.height, &certificate.digest)?
            }
        }
        Ok(Verified { message: self, validator_set: validators.digest() })
    }
}

fn member(validators: &ValidatorSet, validator: ValidatorIndex) -> Result<&PublicKey, MessageError> {
    validators.get(validator).ok_or(MessageError::NotMember(validator))
}

fn verify_vote(
    chain_id: &ChainId,
    validators: &ValidatorSet,
    vote: &SignedVote,
    expected: VoteKind,
) -> Result<(), MessageError> {
    if vote.vote.kind != expected {
        return Err(MessageError::WrongKind { expected, found: vote.vote.kind });
    }
    member(validators, vote.validator)?
        .verify(&vote.vote.signing_bytes(chain_id), &vote.signature)
        .map_err(|_| MessageError::BadSignature(vote.validator))
}

fn verify_view_change(
    chain_id: &ChainId,
    validators: &ValidatorSet,
    signed: &SignedViewChange,
) -> Result<(), MessageError> {
    member(validators, signed.validator)?
        .verify(&signed.view_change.signing_bytes(chain_id), &signed.signature)
        .map_err(|_| MessageError::BadSignature(signed.validator))?;
    if let Some(prepared) = &signed.view_change.prepared {
        if prepared.view >= signed.view_change.view {
            return Err(MessageError::Malformed("a prepared certificate must be from an earlier view"));
        }
        prepared.verify(chain_id, validators, signed.view_change.height)?;
    }
    Ok(())
}
