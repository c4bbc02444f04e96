//! Hashes of transactions whose signatures this node has verified, so each signature is checked
//! once per node: a proposal does not re-verify what the mempool admitted, and a transaction
//! gossiped after the block that carried it was validated is not verified again. A hash names
//! the exact signed bytes, so a hit vouches for the signature. Bounded: the oldest hashes go
//! first.

use std::{
    collections::{HashSet, VecDeque},
    sync::{PoisonError, RwLock, RwLockReadGuard},
};

use consensus::Digest;

/// Hashes kept by default: more than a full mempool and a few full blocks.
pub const DEFAULT_CAPACITY: usize = 262_144;

/// The set, shared by the admission tasks and the driver.
pub struct VerifiedCache {
    inner: RwLock<Inner>,
}

/// A read view of the set (held while a block is validated).
pub struct Inner {
    hashes: HashSet<Digest>,
    order: VecDeque<Digest>,
    capacity: usize,
}

impl Inner {
    /// Whether `hash`'s signature was verified.
    pub fn contains(&self, hash: &Digest) -> bool {
        self.hashes.contains(hash)
    }
}

impl VerifiedCache {
    /// An empty set keeping at most `capacity` hashes (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        VerifiedCache { inner: RwLock::new(Inner { hashes: HashSet::new(), order: VecDeque::new(), capacity }) }
    }

    /// A read view; writers wait until it is dropped.
    pub fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records hashes whose signatures were just verified.
    pub fn insert_all(&self, hashes: impl IntoIterator<Item = Digest>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.capacity == 0 {
            return;
        }
        for hash in hashes {
            if inner.hashes.insert(hash) {
                inner.order.push_back(hash);
            }
        }
        while inner.order.len() > inner.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.hashes.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_hashes_up_to_its_capacity() {
        let cache = VerifiedCache::new(3);
        let hash = |byte: u8| Digest([byte; 32]);
        cache.insert_all([hash(1), hash(2), hash(2), hash(3)]);
        assert!((1..=3).all(|byte| cache.read().contains(&hash(byte))));
        cache.insert_all([hash(4)]);
        assert!(!cache.read().contains(&hash(1)));
        assert!((2..=4).all(|byte| cache.read().contains(&hash(byte))));
        let none = VerifiedCache::new(0);
        none.insert_all([hash(1)]);
        assert!(!none.read().contains(&hash(1)));
    }
}
