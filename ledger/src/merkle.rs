//! Binary Merkle trees over sha3-256 for transaction and receipt roots, with inclusion proofs.
//!
//! Built on `rs_merkle` with domain separation: a leaf is sha3(0x00 ‖ item digest) and an inner
//! node sha3(0x01 ‖ left ‖ right), so an inner node can never pass for a leaf. An odd node is
//! promoted unchanged to the next level (no duplication, so no CVE-2012-2459 style collisions).
//! The empty tree's root is [`Digest::ZERO`].

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::Digest;
use rs_merkle::{Hasher, MerkleProof, MerkleTree};
use serde::{Deserialize, Serialize};

/// The rs_merkle hasher: sha3-256 with inner-node domain separation.
#[derive(Clone)]
struct Sha3Merkle;

impl Hasher for Sha3Merkle {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        Digest::of(data).0
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => Digest::of_parts(&[&[0x01], left, right]).0,
            None => *left,
        }
    }
}

fn leaf(item: &Digest) -> [u8; 32] {
    Digest::of_parts(&[&[0x00], item.as_bytes()]).0
}

/// The root of a tree whose leaves are these item digests (transaction or receipt hashes).
pub fn root(items: &[Digest]) -> Digest {
    if items.is_empty() {
        return Digest::ZERO;
    }
    let leaves: Vec<[u8; 32]> = items.iter().map(leaf).collect();
    Digest(MerkleTree::<Sha3Merkle>::from_leaves(&leaves).root().unwrap_or_default())
}

/// Proof that an item is the `index`-th of `total` leaves under some root.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Position of the item.
    pub index: u32,
    /// Number of leaves in the tree.
    pub total: u32,
    /// Sibling hashes from the leaf up, as rs_merkle orders them.
    pub siblings: Vec<Digest>,
}

/// Builds the proof for `items[index]`; `None` if the index is out of range.
pub fn prove(items: &[Digest], index: usize) -> Option<InclusionProof> {
    if index >= items.len() {
        return None;
    }
    let leaves: Vec<[u8; 32]> = items.iter().map(leaf).collect();
    let proof = MerkleTree::<Sha3Merkle>::from_leaves(&leaves).proof(&[index]);
    Some(InclusionProof {
        index: index as u32,
        total: items.len() as u32,
        siblings: proof.proof_hashes().iter().map(|hash| Digest(*hash)).collect(),
    })
}

impl InclusionProof {
    /// Whether `item` is the proven leaf under `root`.
    pub fn verify(&self, root: &Digest, item: &Digest) -> bool {
        if self.index >= self.total {
            return false;
        }
        let hashes: Vec<[u8; 32]> = self.siblings.iter().map(|digest| digest.0).collect();
        MerkleProof::<Sha3Merkle>::new(hashes).verify(
            root.0,
            &[self.index as usize],
            &[leaf(item)],
            self.total as usize,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(n: usize) -> Vec<Digest> {
        (0..n).map(|i| Digest::of(&(i as u64).to_le_bytes())).collect()
    }

    #[test]
    fn empty_and_single_roots() {
        assert_eq!(root(&[]), Digest::ZERO);
        let one = items(1);
        assert_eq!(root(&one), Digest(leaf(&one[0])));
    }

    #[test]
    fn golden_root_of_three() {
        let three = items(3);
        let left = Digest::of_parts(&[&[1], &leaf(&three[0]), &leaf(&three[1])]);
        let expected = Digest::of_parts(&[&[1], left.as_bytes(), &leaf(&three[2])]);
        assert_eq!(root(&three), expected);
    }

    proptest! {
        #[test]
        fn every_leaf_proves_and_forgeries_fail(n in 1usize..70, pick in any::<prop::sample::Index>(), flip in 0usize..32) {
            let items = items(n);
            let root = root(&items);
            let index = pick.index(n);
            let proof = prove(&items, index).expect("index in range");
            prop_assert!(proof.verify(&root, &items[index]));
            // Another item, another position, a changed sibling or a changed root all fail.
            prop_assert!(!proof.verify(&root, &Digest::of(b"not a member")));
            if n > 1 {
                let mut moved = proof.clone();
                moved.index = ((index + 1) % n) as u32;
                prop_assert!(!moved.verify(&root, &items[index]));
            }
            if !proof.siblings.is_empty() {
                let mut forged = proof.clone();
                forged.siblings[0].0[flip] ^= 1;
                prop_assert!(!forged.verify(&root, &items[index]));
            }
            let mut other_root = root;
            other_root.0[flip] ^= 1;
            prop_assert!(!proof.verify(&other_root, &items[index]));
        }
    }
}
