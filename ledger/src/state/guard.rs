//! `jmt` unwraps some of its own reads (the sibling nodes it reads to build a proof, the nodes
//! it walks to update the tree): a node that is missing or does not decode, which is what a
//! damaged disk gives, would panic the thread reading the state. Every tree walk therefore
//! goes through [`Guarded`], which answers such a read with a stand-in leaf that no proof or
//! root can verify against and keeps the failure, which [`Guarded::finish`] returns as the
//! walk's error: damage is an error, never a panic and never a value.

use std::cell::RefCell;

use jmt::{
    KeyHash, OwnedValue, ValueHash, Version,
    storage::{LeafNode, Node, NodeKey, TreeReader},
};

use crate::store::{StoreError, TreeWalk};

/// A node read that failed during a walk.
enum Failure {
    /// The node is not stored.
    Missing(NodeKey),
    /// The reader returned an error.
    Read(anyhow::Error),
}

/// A tree reader that never fails a node read: see the module's doc.
pub(crate) struct Guarded<'a, R> {
    tree: &'a R,
    failure: RefCell<Option<Failure>>,
}

impl<'a, R: TreeReader> Guarded<'a, R> {
    /// Guards the reads of `tree`.
    pub(crate) fn new(tree: &'a R) -> Self {
        Guarded { tree, failure: RefCell::new(None) }
    }

    /// The walk's result, or the first failed read met during it.
    pub(crate) fn finish<T>(self, walk: TreeWalk, result: anyhow::Result<T>) -> Result<T, StoreError> {
        match self.failure.into_inner() {
            Some(Failure::Missing(node_key)) => Err(StoreError::TreeNodeMissing { walk, node_key }),
            Some(Failure::Read(error)) => Err(StoreError::tree(walk, error)),
            None => result.map_err(|error| StoreError::tree(walk, error)),
        }
    }

    fn stand_in(&self, failure: Failure) -> Node {
        self.failure.borrow_mut().get_or_insert(failure);
        Node::Leaf(LeafNode::new(KeyHash([0; 32]), ValueHash([0; 32])))
    }
}

impl<R: TreeReader> TreeReader for Guarded<'_, R> {
    fn get_node(&self, node_key: &NodeKey) -> anyhow::Result<Node> {
        match self.tree.get_node_option(node_key) {
            Ok(Some(node)) => Ok(node),
            Ok(None) => Ok(self.stand_in(Failure::Missing(node_key.clone()))),
            Err(error) => Ok(self.stand_in(Failure::Read(error))),
        }
    }

    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.tree.get_node_option(node_key) {
            Ok(node) => Ok(node),
            Err(error) => Ok(Some(self.stand_in(Failure::Read(error)))),
        }
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        // jmt returns these errors; it does not unwrap them.
        self.tree.get_value_option(max_version, key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.tree.get_rightmost_leaf()
    }
}
