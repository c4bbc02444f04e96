//! Binary Merkle trees over sha3-256 for transaction and receipt roots, with inclusion proofs.
//!
//! Built on `rs_merkle` with domain separation: a leaf is sha3(0x00 ‖ item digest) and an inner
//! node sha3(0x01 ‖ left ‖ right), so an inner node can never pass for a leaf. An odd node is
//! promoted unchanged to the next level (no duplication, so no CVE-2012-2459 style collisions).
//! The root commits to the number of leaves, sha3(0x02 ‖ count as u64 LE ‖ tree root), because
//! trees of different sizes can share a tree root (promotion), which let a proof for leaf 2 of 3
//! pass relabelled as leaf 1 of 2. A proof must carry exactly the siblings its position needs.
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
    let tree_root = MerkleTree::<Sha3Merkle>::from_leaves(&leaves).root().unwrap_or_default();
    committed_root(items.len() as u64, &tree_root)
}

/// The published root: the tree root bound to the leaf count.
fn committed_root(count: u64, tree_root: &[u8; 32]) -> Digest {
    Digest::of_parts(&[&[0x02], &count.to_le_bytes(), tree_root])
}

/// How many siblings the proof of leaf `index` among `total` has: one per level where the node
/// is not the promoted last one of an odd level.
fn path_length(mut index: u64, mut total: u64) -> usize {
    let mut length = 0;
    while total > 1 {
        if index % 2 == 1 || index + 1 < total {
            length += 1;
        }
        index /= 2;
        total = total.div_ceil(2);
    }
    length
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
        if self.index >= self.total || self.siblings.len() != path_length(self.index.into(), self.total.into()) {
            return false;
        }
        let hashes: Vec<[u8; 32]> = self.siblings.iter().map(|digest| digest.0).collect();
        let leaves = [leaf(item)];
        let proof = MerkleProof::<Sha3Merkle>::new(hashes);
        match proof.root(&[self.index as usize], &leaves, self.total as usize) {
            Ok(tree_root) => committed_root(self.total.into(), &tree_root) == *root,
            Err(_) => false,
        }
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
        assert_eq!(root(&one), committed_root(1, &leaf(&one[0])));
    }

    #[test]
    fn golden_root_of_three() {
        let three = items(3);
        let left = Digest::of_parts(&[&[1], &leaf(&three[0]), &leaf(&three[1])]);
        let tree_root = Digest::of_parts(&[&[1], left.as_bytes(), &leaf(&three[2])]);
        let expected = Digest::of_parts(&[&[2], &3u64.to_le_bytes(), tree_root.as_bytes()]);
        assert_eq!(root(&three), expected);
    }

    #[test]
    fn a_proof_binds_its_position_count_and_length() {
        // Leaf 2 of 3 is promoted, so its tree path equals that of leaf 1 of 2 over
        // [leaf 0 and 1 combined, leaf 2]: the old root accepted the relabelled proof.
        let three = items(3);
        let root = root(&three);
        let proof = prove(&three, 2).expect("in range");
        assert!(proof.verify(&root, &three[2]));
        let relabelled = InclusionProof { index: 1, total: 2, ..proof.clone() };
        assert!(!relabelled.verify(&root, &three[2]));
        let mut padded = proof.clone();
        padded.siblings.push(Digest::of(b"ignored before"));
        assert!(!padded.verify(&root, &three[2]));
        let mut short = prove(&three, 0).expect("in range");
        short.siblings.pop();
        assert!(!short.verify(&root, &three[0]));
    }

    #[test]
    fn path_length_matches_the_built_proofs() {
        for total in 1..70usize {
            let items = items(total);
            for index in 0..total {
                let proof = prove(&items, index).expect("in range");
                assert_eq!(proof.siblings.len(), path_length(index as u64, total as u64), "{index} of {total}");
            }
        }
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
