//! Block sync: a node behind its peers fetches certified blocks by range and applies each
//! through the audit path (link, transaction root, certificate against the set in force,
//! re-execution), then rejoins consensus at the new head.

use std::{collections::HashMap, time::Duration};

use consensus::Height;
use ledger::{CertifiedBlock, StoreError, audit::ApplyError};
use libp2p::PeerId;
use tracing::{info, warn};

use super::{Driver, Error};
use crate::p2p::protocol::SYNC_BATCH_MAX;

/// How long this node may stay one block behind a peer before fetching the block.
const ONE_BEHIND_GRACE: Duration = Duration::from_secs(2);

/// What sync knows: peers' heads and the one request in flight.
#[derive(Default)]
pub(super) struct SyncState {
    heads: HashMap<PeerId, Height>,
    in_flight: Option<PeerId>,
}

impl SyncState {
    /// Whether blocks are being fetched.
    pub(super) fn is_syncing(&self) -> bool {
        self.in_flight.is_some()
    }
}

impl Driver {
    pub(super) fn on_peer_head(&mut self, peer: PeerId, head: Height) {
        self.sync.heads.insert(peer, head);
        self.request_next_blocks();
    }

    pub(super) fn on_request_failed(&mut self, peer: PeerId) {
        self.sync.heads.remove(&peer);
        if self.sync.in_flight == Some(peer) {
            self.sync.in_flight = None;
            self.request_next_blocks();
        }
    }

    /// Asks the peer with the highest head for the blocks after ours, one request at a time.
    fn request_next_blocks(&mut self) {
        if self.sync.in_flight.is_some() {
            return;
        }
        let best = self.sync.heads.iter().max_by_key(|(_, head)| **head).map(|(peer, head)| (*peer, *head));
        // One block behind is the normal state while peers commit first; fetch it only if
        // consensus has not delivered it for a while.
        let behind = |head: Height| {
            head > self.head.height + 1 || (head > self.head.height && self.last_commit_at.elapsed() > ONE_BEHIND_GRACE)
        };
        if let Some((peer, head)) = best
            && behind(head)
        {
            let count = u32::try_from(head - self.head.height).unwrap_or(u32::MAX).min(SYNC_BATCH_MAX);
            self.sync.in_flight = Some(peer);
            self.network.request_blocks(peer, self.head.height + 1, count);
        }
    }

    pub(super) fn on_blocks(&mut self, peer: PeerId, blocks: Vec<CertifiedBlock>) -> Result<(), Error> {
        if self.sync.in_flight == Some(peer) {
            self.sync.in_flight = None;
        }
        let first_height = self.head.height;
        for certified in blocks {
            let height = certified.block.header.height;
            if height <= self.head.height {
                continue;
            }
            match ledger::audit::apply_certified_block(self.store.as_ref(), &certified) {
                Ok(()) => self.after_commit(certified)?,
                Err(ApplyError::Block(error)) => {
                    warn!(%peer, height, %error, "peer sent an invalid block; ignoring its head");
                    self.sync.heads.remove(&peer);
                    break;
                }
                // Committed meanwhile by consensus: the next block decides what follows.
                Err(ApplyError::Store(StoreError::NotNextBlock { .. })) => break,
                Err(ApplyError::Store(error)) => return Err(error.into()),
            }
        }
        if self.head.height > first_height {
            // The main loop starts the next height if there is work.
            info!(from = first_height + 1, to = self.head.height, %peer, "synced blocks");
        }
        self.request_next_blocks();
        Ok(())
    }
}
