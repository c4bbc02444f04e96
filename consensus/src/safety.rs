use borsh::{BorshDeserialize, BorshSerialize};

use crate::{Height, PreparedCertificate, View, Vote};

/// What a validator must remember across a crash so it never signs two different votes for one
/// (height, view, kind), and never forgets a value that may have been committed.
///
/// The driver makes it durable (synced) before executing any output that follows an
/// `Output::Persist`; on restart it gives it back with `Input::Restore`.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SafetyState {
    /// The height these votes are for.
    pub height: Height,
    /// The highest view this validator entered or asked for at that height.
    pub view: View,
    /// Every PRE-PREPARE, PREPARE and COMMIT this validator signed at that height.
    pub votes: Vec<Vote>,
    /// The highest prepared certificate it holds at that height.
    pub prepared: Option<PreparedCertificate>,
}

impl SafetyState {
    /// The state of a validator that has not voted at `height`.
    pub fn new(height: Height) -> Self {
        SafetyState { height, view: 0, votes: Vec::new(), prepared: None }
    }

    /// The digest this validator already signed for (kind, view), if any.
    pub fn voted(&self, vote: &Vote) -> Option<&Vote> {
        self.votes.iter().find(|other| other.kind == vote.kind && other.view == vote.view)
    }

    /// Encodes for storage.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("encoding to a Vec cannot fail")
    }

    /// Decodes from storage.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        borsh::from_slice(bytes).map_err(|error| error.to_string())
    }
}
