use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{ChainId, Digest};

/// A block height: 0 is the genesis, 1 the first decided block.
pub type Height = u64;

/// A view (PBFT's view number) within one height; view 0 is the first attempt.
pub type View = u64;

/// The kind of a signed consensus message. Part of every signature, so a PREPARE can never be
/// passed off as a COMMIT.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum VoteKind {
    /// The leader's proposal (PBFT §4.2).
    PrePrepare = 0,
    /// A replica accepts the proposal (PBFT §4.2).
    Prepare = 1,
    /// A replica saw 2f+1 PREPAREs and commits (PBFT §4.2).
    Commit = 2,
    /// A replica asks to move to a new view (PBFT §4.4).
    ViewChange = 3,
    /// The new leader starts its view (PBFT §4.4).
    NewView = 4,
}

/// What a validator signs: one kind of vote for one digest at one (height, view).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Vote {
    /// The message kind.
    pub kind: VoteKind,
    /// The height voted on.
    pub height: Height,
    /// The view within that height.
    pub view: View,
    /// The digest voted for (a block hash).
    pub digest: Digest,
}

/// Domain tag that starts every vote's signing bytes.
const VOTE_DOMAIN: &[u8] = b"stele/vote/v1";

impl Vote {
    /// The exact bytes a validator signs: a domain tag, the chain id, then the vote, all borsh.
    pub fn signing_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        borsh::to_vec(&(VOTE_DOMAIN, chain_id, self)).expect("encoding to a Vec cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_bytes_golden() {
        let vote = Vote { kind: VoteKind::Commit, height: 258, view: 1, digest: Digest([0xab; 32]) };
        let chain = ChainId::new("test").expect("chain id");
        let bytes = vote.signing_bytes(&chain);
        let expected = format!(
            "{}{}{}{}{}{}{}",
            "0d000000", // length of the domain tag
            hex::encode(b"stele/vote/v1"),
            "0400000074657374", // chain id "test": length, then bytes
            "02",               // kind = Commit
            "0201000000000000", // height 258, little-endian
            "0100000000000000", // view 1
            "ab".repeat(32)
        );
        assert_eq!(hex::encode(bytes), expected);
    }

    #[test]
    fn every_field_changes_the_signing_bytes() {
        let chain = ChainId::new("a").expect("chain id");
        let base = Vote { kind: VoteKind::Prepare, height: 1, view: 0, digest: Digest::ZERO };
        let variants = [
            Vote { kind: VoteKind::Commit, ..base },
            Vote { height: 2, ..base },
            Vote { view: 1, ..base },
            Vote { digest: Digest([1; 32]), ..base },
        ];
        for variant in variants {
            assert_ne!(variant.signing_bytes(&chain), base.signing_bytes(&chain));
        }
        let other_chain = ChainId::new("b").expect("chain id");
        assert_ne!(base.signing_bytes(&other_chain), base.signing_bytes(&chain));
    }
}
