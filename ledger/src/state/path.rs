//! Which blocks a state proof depends on: the tree keeps every version, and a proof at one
//! height walks nodes that older blocks wrote (whatever they left unchanged since). A proof that
//! does not verify was broken by a node or value one of those blocks wrote, so repairing the
//! state means writing those versions again, not only the height's own.

use std::{cell::RefCell, collections::BTreeSet};

use jmt::{
    KeyHash, OwnedValue, Version,
    storage::{LeafNode, Node, NodeKey, TreeReader},
};

use super::{StateTree, key_hash};

/// A tree reader that notes the version of every node it is asked for.
struct Recorder<'a, R> {
    tree: &'a R,
    versions: RefCell<BTreeSet<Version>>,
}

impl<R: TreeReader> TreeReader for Recorder<'_, R> {
    fn get_node(&self, node_key: &NodeKey) -> anyhow::Result<Node> {
        self.versions.borrow_mut().insert(node_key.version());
        self.tree.get_node(node_key)
    }

    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        // Noted before the read, so a node that does not decode is on the path too.
        self.versions.borrow_mut().insert(node_key.version());
        self.tree.get_node_option(node_key)
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        // The leaf read before it names the version that wrote the value.
        self.tree.get_value_option(max_version, key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.tree.get_rightmost_leaf()
    }
}

/// The versions (heights; 0 is the genesis) of the tree nodes a proof of `key` at `version`
/// reads, oldest first. Each leaf's version is also the version of the value it holds.
pub fn versions_on_path<R: TreeReader>(tree: &R, key: &[u8], version: Version) -> Vec<Version> {
    let guarded = super::Guarded::new(tree);
    let recorder = Recorder { tree: &guarded, versions: RefCell::new(BTreeSet::new()) };
    // Damage ends the walk with an error or gives a proof that does not verify; either way
    // the nodes read up to it are noted, which is all this is for.
    let _ = StateTree::new(&recorder).get_with_proof(key_hash(key), version);
    recorder.versions.into_inner().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use consensus::{ChainId, CommitCertificate, SigningKey};

    use super::*;
    use crate::{BlockReader, BlockWriter, Genesis, MemStore, Params, ValidatorInfo, build_block, state::keys};

    #[test]
    fn a_key_left_unchanged_is_proven_through_the_version_that_wrote_it() {
        let key = SigningKey::from_seed([3; 32]);
        let genesis = Genesis {
            chain_id: ChainId::new("path").expect("chain id"),
            genesis_time_ms: 1,
            validators: vec![ValidatorInfo { name: "v0".into(), public_key: key.public_key(), peer_id: "p".into() }],
            accounts: Vec::new(),
            params: Params::default(),
        };
        let store = MemStore::new(&genesis).expect("store");
        for _ in 0..3 {
            let head = store.head().expect("head");
            let (block, execution) = build_block(
                &store,
                &head,
                key.public_key(),
                head.timestamp_ms + 10,
                Vec::new(),
                crate::SignatureCheck::All,
            )
            .expect("block");
            let certificate =
                CommitCertificate::sign(&genesis.chain_id, head.height + 1, 0, block.hash(), &[(0, &key)]);
            store.commit(&block, &certificate, execution).expect("commit");
        }
        // Every block writes the last-block record, so the root is the head's own; nothing has
        // written the validator schedule since the genesis. (A walk also reads some siblings.)
        for height in 1..=3 {
            let path = versions_on_path(&store, keys::VALIDATORS, height);
            assert_eq!((path.first(), path.last()), (Some(&0), Some(&height)), "{path:?}");
        }
        assert_eq!(versions_on_path(&store, keys::LAST_BLOCK, 2).last(), Some(&2));
    }
}
