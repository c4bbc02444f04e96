//! Building this leader's block, and checking other leaders' blocks by executing them.

use consensus::{Digest, Height, View};
use ledger::{Block, Execution, audit, build_block, build_block_trusting, state::read_params};
use tracing::{info, warn};

use super::{Driver, Error, Input, now_ms};

/// Most proposals kept for the height being decided (a Byzantine leader cannot fill memory).
pub(super) const PROPOSALS_MAX: usize = 16;
/// How far ahead of this node's clock a proposal's timestamp may be.
const CLOCK_DRIFT_MAX_MS: u64 = 10_000;

/// A block proposed for `head + 1`, with what executing it produced once this node did.
pub(super) struct Proposal {
    pub block: Block,
    pub execution: Option<Execution>,
    pub verdict: Option<bool>,
}

impl Driver {
    /// Builds the block this leader proposes: mempool transactions in nonce order within the
    /// genesis limits, timestamp from this node's clock (raised past the parent's).
    pub(super) fn build_proposal(&mut self, height: Height, view: View) -> Result<Option<Digest>, Error> {
        if height != self.head.height + 1 {
            return Ok(None);
        }
        let params = read_params(self.store.as_ref())?;
        let transactions = self.mempool.reap(
            self.store.as_ref(),
            params.max_block_txs as usize,
            usize::try_from(params.max_block_bytes).unwrap_or(usize::MAX),
        )?;
        let proposer = self.settings.key.public_key();
        // Every reaped transaction passed the mempool's signature check: not checked again.
        let built = build_block_trusting(self.store.as_ref(), &self.head, proposer, now_ms(), transactions, |_| true)
            .or_else(|error| {
                // The mempool only holds transactions that passed the same checks, so this is a
                // bug or a race with a parameter change; an empty block keeps the chain live.
                warn!(height, %error, "cannot build a block from the mempool; proposing an empty one");
                build_block(self.store.as_ref(), &self.head, proposer, now_ms(), Vec::new())
            });
        let (block, execution) = match built {
            Ok(built) => built,
            Err(error) => {
                warn!(height, %error, "cannot build even an empty block");
                return Ok(None);
            }
        };
        let digest = block.hash();
        info!(height, view, txs = block.transactions.len(), %digest, "proposing");
        self.proposals.insert(digest, Proposal { block, execution: Some(execution), verdict: Some(true) });
        Ok(Some(digest))
    }

    /// The verdict on a proposed block, executing it the first time; `None` while its body has
    /// not arrived.
    pub(super) fn validate_proposal(&mut self, height: Height, digest: &Digest) -> Option<bool> {
        let head = self.head.clone();
        let mempool = &self.mempool;
        let verified = self.verified.clone();
        let proposal = self.proposals.get_mut(digest)?;
        if let Some(verdict) = proposal.verdict {
            return Some(verdict);
        }
        let block = &proposal.block;
        let checked = (|| {
            if block.header.height != height {
                return Err(format!("block is for height {}, proposed at {height}", block.header.height));
            }
            audit::check_link(&head, &block.header).map_err(|error| error.to_string())?;
            if block.header.timestamp_ms > now_ms() + CLOCK_DRIFT_MAX_MS {
                return Err(format!("timestamp {} is too far in the future", block.header.timestamp_ms));
            }
            if self.validators.index_of(&block.header.proposer).is_none() {
                return Err("proposer is not a validator".to_string());
            }
            // The transaction root is compared with what execution computes (once, not twice).
            // Signatures this node already checked (same bytes, same hash) are not checked
            // again: those its mempool admitted, and any other it verified.
            let known = verified.read();
            audit::check_execution_trusting(self.store.as_ref(), block, |tx| {
                let hash = tx.hash();
                known.contains(&hash) || mempool.contains(&hash)
            })
            .map_err(|error| error.to_string())
        })();
        let verdict = match checked {
            Ok(execution) => {
                // Every signature of a valid block verified: copies gossiped later are not
                // checked again.
                verified.insert_all(execution.tx_hashes.iter().copied());
                proposal.execution = Some(execution);
                true
            }
            Err(reason) => {
                warn!(height, %digest, %reason, "proposal rejected");
                false
            }
        };
        proposal.verdict = Some(verdict);
        Some(verdict)
    }

    /// A block body arrived (with a proposal, or fetched by hash): keep it, and finish what
    /// waited for it.
    pub(super) fn on_block_body(&mut self, block: Block) -> Result<(), Error> {
        let digest = block.hash();
        if block.header.height != self.head.height + 1 || self.proposals.contains_key(&digest) {
            return Ok(());
        }
        if self.proposals.len() >= PROPOSALS_MAX {
            warn!(height = block.header.height, "too many proposals for one height; dropping one");
            return Ok(());
        }
        self.proposals.insert(digest, Proposal { block, execution: None, verdict: None });
        if let Some(height) = self.awaiting_validation.remove(&digest)
            && let Some(valid) = self.validate_proposal(height, &digest)
        {
            self.feed(Input::ValueValidated { height, digest, valid })?;
        }
        if let Some(certificate) = self.awaiting_block.take() {
            if certificate.digest == digest {
                self.on_decide(certificate)?;
            } else {
                self.awaiting_block = Some(certificate);
            }
        }
        Ok(())
    }
}
