//! No honest validator signs two different votes for one (height, view, kind), even across
//! crashes and restarts.

use std::collections::HashMap;

use consensus::{Digest, Height, Message, ValidatorIndex, View, VoteKind};

use super::Violation;

#[derive(Default)]
pub struct NoHonestDoubleSign {
    signed: HashMap<(ValidatorIndex, Height, View, VoteKind), Digest>,
}

impl NoHonestDoubleSign {
    /// Records the votes `sender` signed in a message it sent (it may also forward others').
    pub fn check(&mut self, sender: ValidatorIndex, message: &Message) -> Result<(), Violation> {
        let vote = match message {
            Message::PrePrepare(vote) | Message::Prepare(vote) | Message::Commit(vote) => vote,
            Message::NewView { proposal, .. } => proposal,
            Message::ViewChange(_) | Message::Decided(_) => return Ok(()),
        };
        if vote.validator != sender {
            return Ok(());
        }
        let key = (vote.validator, vote.vote.height, vote.vote.view, vote.vote.kind);
        match self.signed.insert(key, vote.vote.digest) {
            Some(previous) if previous != vote.vote.digest => Err(Violation {
                invariant: "no honest double-sign",
                detail: format!(
                    "validator {} signed {:?} for {} and {} at height {} view {}",
                    vote.validator, vote.vote.kind, previous, vote.vote.digest, vote.vote.height, vote.vote.view
                ),
            }),
            _ => Ok(()),
        }
    }
}
