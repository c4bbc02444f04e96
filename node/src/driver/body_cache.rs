//! The blocks proposed for the height being decided, by header hash, under bounds a Byzantine
//! validator cannot push past; and the check every body passes before it is kept anywhere.
//!
//! A block's identity is its header hash, so a peer can pair the true header with another body.
//! Such a body says nothing about the proposal: it is refused at the door
//! ([`body_matches_header`]), and every body in the table, every body served to peers and every
//! verdict on a proposal comes from a body its header commits to.

use std::collections::HashMap;

use consensus::{Digest, Height, PublicKey, ValidatorIndex, View};
use ledger::{Block, Execution};

/// Most proposals kept for the height being decided (a Byzantine leader cannot fill memory).
pub(super) const BODIES_MAX: usize = 16;
/// Most unasked proposals kept per proposer: an honest leader sends one per view it leads (a
/// PRE-PREPARE in view 0, a NEW-VIEW in a later one), so two cover it leading view 0 and the
/// view this node moves to; more would let each Byzantine leader take a bigger share.
pub(super) const BODIES_PER_PROPOSER: usize = 2;
/// How many views past this node's current view an unasked proposal may be for. A proposal
/// further ahead is fetched if this node ever gets there and is asked to validate it.
pub(super) const VIEWS_AHEAD: View = 2;

/// A body its header does not commit to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum BodyMismatch {
    /// The Merkle root of the body's transactions is not the header's `tx_root`.
    #[error("block {height}: the header's transaction root is {header}, the body's is {body}")]
    TxRoot {
        /// Height in the header.
        height: Height,
        /// The header's `tx_root`.
        header: Digest,
        /// The root of the body.
        body: Digest,
    },
}

/// Checks that `block.transactions` is the body `block.header` commits to. The header commits
/// to its body through `tx_root` alone (over the full encoding of each transaction, signature
/// included, so count, order and bytes); `receipts_root` and `state_root` are what executing
/// that body yields, so a mismatch there is a verdict on the proposal, not on the messenger.
pub(super) fn body_matches_header(block: &Block) -> Result<(), BodyMismatch> {
    let body = block.compute_tx_root();
    if body != block.header.tx_root {
        return Err(BodyMismatch::TxRoot { height: block.header.height, header: block.header.tx_root, body });
    }
    Ok(())
}

/// Why a proposal is kept; decides what makes room for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// Built by this node as leader.
    Own,
    /// Something waits for it: the core asked to validate it, or decided it.
    Awaited,
    /// Arrived unasked, with a PRE-PREPARE or NEW-VIEW that `proposer` signed for `view`.
    Unasked {
        /// The signer (the leader of `view`).
        proposer: ValidatorIndex,
        /// The view it was proposed for.
        view: View,
    },
}

/// A proposed block, with what executing it produced once this node did.
pub(super) struct CachedBody {
    /// The block; its body matches its header.
    pub block: Block,
    /// What executing it produced, if it was executed and valid.
    pub execution: Option<Execution>,
    /// The final verdict on it, once known (`None` also while it is only too early).
    pub verdict: Option<bool>,
    origin: Origin,
    /// Insertion order: among equals, the oldest makes room first.
    sequence: u64,
}

/// Why an unasked proposal was not kept. None of these blames the sender: a leader may propose
/// in a view this node has not reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refused {
    /// Its view is too far past this node's.
    #[error("view {view} is more than {VIEWS_AHEAD} views past this node's view {current}")]
    TooFarAhead {
        /// The proposal's view.
        view: View,
        /// This node's view.
        current: View,
    },
    /// Its header names another proposer than the leader that signed it.
    #[error("the header's proposer is not the leader that signed the proposal")]
    NotTheProposer,
    /// The proposer has its share of the table already.
    #[error("validator {proposer} already has {BODIES_PER_PROPOSER} unasked proposals kept")]
    ProposerFull {
        /// The proposer.
        proposer: ValidatorIndex,
    },
    /// The table is full.
    #[error("{BODIES_MAX} proposals are kept already")]
    Full,
}

/// The bodies of the blocks proposed for one height. Bodies that something waits for are always kept (making room
/// by dropping unasked ones first); unasked bodies only within their bounds.
#[derive(Default)]
pub(super) struct BodyCache {
    entries: HashMap<Digest, CachedBody>,
    sequence: u64,
}

impl BodyCache {
    /// The proposal with this header hash.
    pub(super) fn get(&self, digest: &Digest) -> Option<&CachedBody> {
        self.entries.get(digest)
    }

    /// The proposal with this header hash, to record a verdict.
    pub(super) fn get_mut(&mut self, digest: &Digest) -> Option<&mut CachedBody> {
        self.entries.get_mut(digest)
    }

    /// Whether a proposal with this header hash is kept.
    pub(super) fn contains(&self, digest: &Digest) -> bool {
        self.entries.contains_key(digest)
    }

    /// Proposals kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Takes a proposal out.
    pub(super) fn remove(&mut self, digest: &Digest) -> Option<CachedBody> {
        self.entries.remove(digest)
    }

    /// Keeps only the proposals for heights above `height` (after committing it).
    pub(super) fn retain_above(&mut self, height: Height) {
        self.entries.retain(|_, proposal| proposal.block.header.height > height);
    }

    /// Keeps a block this node built, valid by construction. Returns its hash.
    pub(super) fn insert_own(&mut self, block: Block, execution: Execution) -> Digest {
        let digest = block.hash();
        self.insert(digest, block, Some(execution), Some(true), Origin::Own);
        digest
    }

    /// Keeps a body something waits for; the caller checked it against its header.
    pub(super) fn insert_awaited(&mut self, block: Block) {
        let digest = block.hash();
        match self.entries.get_mut(&digest) {
            Some(kept) => kept.origin = promote(kept.origin, Origin::Awaited),
            None => self.insert(digest, block, None, None, Origin::Awaited),
        }
    }

    /// Marks a kept proposal as waited for (the core asked to validate it), so unasked bodies
    /// never push it out.
    pub(super) fn mark_awaited(&mut self, digest: &Digest) {
        if let Some(kept) = self.entries.get_mut(digest) {
            kept.origin = promote(kept.origin, Origin::Awaited);
        }
    }

    /// Keeps a body that came unasked with a proposal `proposer` signed for `view`, while this
    /// node is in view `current`; the caller checked it against its header. `leader_key` is the
    /// proposer's key when the header must name it (a fresh proposal), `None` for a NEW-VIEW
    /// re-proposing a prepared value (built by the leader of an earlier view).
    pub(super) fn insert_unasked(
        &mut self,
        block: Block,
        proposer: ValidatorIndex,
        view: View,
        current: View,
        leader_key: Option<&PublicKey>,
    ) -> Result<(), Refused> {
        let digest = block.hash();
        if self.entries.contains_key(&digest) {
            return Ok(());
        }
        if view > current.saturating_add(VIEWS_AHEAD) {
            return Err(Refused::TooFarAhead { view, current });
        }
        if leader_key.is_some_and(|key| *key != block.header.proposer) {
            return Err(Refused::NotTheProposer);
        }
        let share = self
            .entries
            .values()
            .filter(|kept| matches!(kept.origin, Origin::Unasked { proposer: other, .. } if other == proposer))
            .count();
        if share >= BODIES_PER_PROPOSER {
            return Err(Refused::ProposerFull { proposer });
        }
        if self.entries.len() >= BODIES_MAX {
            return Err(Refused::Full);
        }
        self.insert(digest, block, None, None, Origin::Unasked { proposer, view });
        Ok(())
    }

    fn insert(
        &mut self,
        digest: Digest,
        block: Block,
        execution: Option<Execution>,
        verdict: Option<bool>,
        origin: Origin,
    ) {
        if !self.entries.contains_key(&digest) && self.entries.len() >= BODIES_MAX {
            self.make_room();
        }
        self.sequence += 1;
        self.entries.insert(digest, CachedBody { block, execution, verdict, origin, sequence: self.sequence });
    }

    /// Drops one proposal: unasked before awaited before own; within each, refused before
    /// unchecked before valid; then the oldest. A dropped block the height needs is fetched again.
    fn make_room(&mut self) {
        let rank = |proposal: &CachedBody| {
            let origin = match proposal.origin {
                Origin::Unasked { .. } => 0,
                Origin::Awaited => 1,
                Origin::Own => 2,
            };
            let verdict = match proposal.verdict {
                Some(false) => 0,
                None => 1,
                Some(true) => 2,
            };
            (origin, verdict, proposal.sequence)
        };
        let victim = self.entries.iter().min_by_key(|(_, proposal)| rank(proposal)).map(|(digest, _)| *digest);
        if let Some(victim) = victim {
            tracing::debug!(%victim, "proposals full: dropping one for a block that is waited for");
            self.entries.remove(&victim);
        }
    }
}

/// The stronger of two reasons to keep a proposal.
fn promote(kept: Origin, new: Origin) -> Origin {
    match (kept, new) {
        (Origin::Own, _) | (_, Origin::Own) => Origin::Own,
        (Origin::Awaited, _) | (_, Origin::Awaited) => Origin::Awaited,
        (unasked, _) => unasked,
    }
}

#[cfg(test)]
#[path = "body_cache_test.rs"]
mod tests;
