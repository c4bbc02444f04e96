//! Building this leader's block, checking other leaders' blocks by executing them, keeping the
//! bodies that arrive (each checked against its header first), and committing decided blocks.

use std::time::{Duration, Instant};

use consensus::{CommitCertificate, Digest, Height, PublicKey, ValidatorIndex, Verdict, View};
use ledger::{
    Block, BlockError, ExecutionError, SignatureCheck, build_block,
    state::read_params,
    validate::{self, ProposalVerdict},
};
use tracing::{debug, error, info, warn};

use super::{
    ChainStore, Driver, Error, Input, Network,
    body_cache::{BodyMismatch, body_matches_header},
};

/// A proposal that is only too early is checked again once this node's clock reaches it, or
/// after this long, whichever is first (no timer that far out for a timestamp years ahead).
const EARLY_RECHECK_MAX: Duration = Duration::from_secs(60);
/// A decided block this node's checks refuse is fetched and checked again this often.
pub(super) const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// A body that came unasked, with the proposal it came with.
pub(super) struct Unasked {
    /// The signer of the PRE-PREPARE or NEW-VIEW: the leader of `view`.
    pub proposer: ValidatorIndex,
    /// The proposal's view.
    pub view: View,
    /// The key the header must name as proposer (`None` for a prepared value re-proposed).
    pub leader_key: Option<PublicKey>,
}

impl<S: ChainStore, N: Network> Driver<S, N> {
    /// Builds the block this leader proposes: mempool transactions in nonce order within the
    /// genesis limits, timestamp from this node's clock (raised past the parent's).
    pub(super) fn build_proposal(&mut self, height: Height, view: View) -> Result<Option<Digest>, Error> {
        if height != self.head.height + 1 {
            return Ok(None);
        }
        let params = read_params(self.store.as_ref())?;
        let transactions = self
            .mempool
            .reap(params.max_block_txs as usize, usize::try_from(params.max_block_bytes).unwrap_or(usize::MAX))?;
        let proposer = self.settings.key.public_key();
        // Every reaped transaction passed the mempool's signature check: not checked again.
        let built = build_block(
            self.store.as_ref(),
            &self.head,
            proposer,
            self.now.unix_ms,
            transactions,
            SignatureCheck::Unverified(&|_| true),
        )
        .or_else(|error| {
            // The mempool only holds transactions that passed the same checks, so this is a
            // bug or a race with a parameter change; an empty block keeps the chain live.
            warn!(height, %error, "cannot build a block from the mempool; proposing an empty one");
            build_block(self.store.as_ref(), &self.head, proposer, self.now.unix_ms, Vec::new(), SignatureCheck::All)
        });
        let (block, execution) = match built {
            Ok(built) => built,
            Err(error) => {
                warn!(height, %error, "cannot build even an empty block");
                return Ok(None);
            }
        };
        info!(height, view, txs = block.transactions.len(), digest = %block.hash(), "proposing");
        Ok(Some(self.bodies.insert_own(block, execution)))
    }

    /// The verdict on a proposed block, executing it the first time; `None` while its body has
    /// not arrived. Only ever computed from a body its header commits to (the table holds no
    /// other). A block that is only too early is [`Verdict::NotYet`], not cached, and checked
    /// again once this node's clock gets there.
    pub(super) fn validate_proposal(&mut self, height: Height, digest: &Digest) -> Option<Verdict> {
        let head = self.head.clone();
        let verified = self.mempool.verified().clone();
        let proposal = self.bodies.get_mut(digest)?;
        if let Some(valid) = proposal.verdict {
            return Some(if valid { Verdict::Valid } else { Verdict::Invalid });
        }
        let block = &proposal.block;
        // Signatures this node already checked (same bytes, same hash) are not checked again:
        // those its mempool admitted and any other it verified, all in the cache. (Not the
        // mempool itself: its lock, taken per transaction while admission holds it, stalled the
        // validation of large blocks for seconds; a hash the cache evicted is only verified again.)
        let known = verified.read();
        let now_ms = self.now.unix_ms;
        let checked = validate::check_proposal(
            self.store.as_ref(),
            &head,
            &self.validators,
            height,
            block,
            now_ms,
            SignatureCheck::Unverified(&|tx| known.contains(&tx.hash())),
        );
        drop(known);
        let verdict = match checked {
            ProposalVerdict::Valid(execution) => {
                // Every signature of a valid block verified: copies gossiped later are not
                // checked again.
                verified.insert_all(execution.tx_hashes.iter().copied());
                proposal.execution = Some(*execution);
                proposal.verdict = Some(true);
                Verdict::Valid
            }
            ProposalVerdict::Rejected(rejected) => {
                warn!(height, %digest, reason = %rejected.reason, "proposal rejected");
                self.metrics.proposals_rejected.inc();
                proposal.verdict = Some(false);
                Verdict::Invalid
            }
            ProposalVerdict::Early { until_ms } => {
                let wait = Duration::from_millis(until_ms - now_ms).min(EARLY_RECHECK_MAX);
                debug!(height, %digest, wait_ms = wait.as_millis() as u64, "proposal too early by this clock; checking it again later");
                self.early.insert(*digest, (height, self.now.instant + wait));
                Verdict::NotYet
            }
        };
        Some(verdict)
    }

    /// Checks again the proposals that were too early and whose time has come; a final verdict
    /// goes to the core unasked (it asks again itself only when the value is proposed again).
    pub(super) fn recheck_early(&mut self, now: Instant) -> Result<(), Error> {
        let due: Vec<(Digest, Height)> = self
            .early
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(digest, (height, _))| (*digest, *height))
            .collect();
        for (digest, height) in due {
            self.early.remove(&digest);
            match self.validate_proposal(height, &digest) {
                Some(Verdict::NotYet) | None => {}
                Some(verdict) => self.feed(Input::ValueValidated { height, digest, verdict })?,
            }
        }
        Ok(())
    }

    /// A block body arrived, with a proposal (`unasked`) or fetched by hash (`None`). It is
    /// checked against its header before anything else: a body its header does not commit to
    /// is the messenger's lie, never a verdict on the proposal, and is returned for the caller
    /// to blame the peer. Otherwise it is kept if something waits for it, or if it came with a
    /// proposal within the cache's bounds; then what waited for it is finished.
    pub(super) fn on_block_body(
        &mut self,
        block: Block,
        unasked: Option<Unasked>,
    ) -> Result<Result<(), BodyMismatch>, Error> {
        if let Err(mismatch) = body_matches_header(&block) {
            return Ok(Err(mismatch));
        }
        let digest = block.hash();
        if block.header.height != self.head.height + 1 || self.bodies.contains(&digest) {
            return Ok(Ok(()));
        }
        if self.refused.is_some_and(|(refused, until)| refused == digest && self.now() < until) {
            // The decided block this node refused: checked again only when its retry is due.
            return Ok(Ok(()));
        }
        let awaited = self.awaiting_validation.contains_key(&digest)
            || self.awaiting_block.as_ref().is_some_and(|certificate| certificate.digest == digest);
        if awaited {
            self.bodies.insert_awaited(block);
        } else if let Some(unasked) = unasked {
            let height = block.header.height;
            // The core's view is that of an earlier height until this one starts.
            let current = if self.replica.height() == height { self.replica.view() } else { 0 };
            if let Err(refused) =
                self.bodies.insert_unasked(block, unasked.proposer, unasked.view, current, unasked.leader_key.as_ref())
            {
                debug!(height, view = unasked.view, proposer = unasked.proposer, %refused, "proposal body not kept");
            }
            return Ok(Ok(()));
        } else {
            // Fetched, and nothing waits for it any more.
            return Ok(Ok(()));
        }
        if let Some(height) = self.awaiting_validation.remove(&digest)
            && let Some(verdict) = self.validate_proposal(height, &digest)
        {
            self.feed(Input::ValueValidated { height, digest, verdict })?;
        }
        if let Some(certificate) = self.awaiting_block.take() {
            if certificate.digest == digest {
                self.on_decide(certificate)?;
            } else {
                self.awaiting_block = Some(certificate);
            }
        }
        Ok(Ok(()))
    }

    /// The decision for a height: commit its block (fetching it first if this node never saw
    /// it), then move on.
    pub(super) fn on_decide(&mut self, certificate: CommitCertificate) -> Result<(), Error> {
        if certificate.height != self.head.height + 1 {
            return Ok(());
        }
        let Some(proposal) = self.bodies.remove(&certificate.digest) else {
            info!(height = certificate.height, digest = %certificate.digest, "decided block missing; fetching it");
            self.network.request_body(certificate.digest);
            self.awaiting_block = Some(certificate);
            return Ok(());
        };
        let block = proposal.block;
        // The body matches its header (the cache holds no other), so this is the block the
        // certificate names. Its timestamp is not judged: the validators agreed on it.
        let checked = match proposal.execution {
            Some(execution) => Ok(execution),
            None => validate::check_link(&self.head, &block.header)
                .and_then(|()| validate::check_execution(self.store.as_ref(), &block, SignatureCheck::All)),
        };
        match checked {
            Ok(execution) => {
                self.refused = None;
                self.store.commit(&block, &certificate, execution)?;
                self.after_commit(ledger::CertifiedBlock { block, certificate })
            }
            Err(error) => self.refuse_decided(certificate, error),
        }
    }

    /// A quorum certified a block whose body matches its header but that this node's checks
    /// refuse. Fetching cannot give another body, so either this node's state is corrupt or
    /// more than f validators are faulty (or run other rules); from here it cannot tell which
    /// without an audit. It never commits the block. A storage failure, or a state that does
    /// not follow this node's own head, is local and fatal; otherwise the node stays up
    /// (serving its verified chain and its evidence, and not voting past this height, since it
    /// cannot get there), says so loudly, and fetches and checks the block again every
    /// [`REFUSED_RETRY`]. Exiting would only crash-loop on the same block.
    fn refuse_decided(&mut self, certificate: CommitCertificate, error: BlockError) -> Result<(), Error> {
        let height = certificate.height;
        if let BlockError::Execution { error: execution, .. } = &error {
            match execution.as_ref() {
                ExecutionError::Store(store) => return Err(store.clone().into()),
                ExecutionError::WrongHeight { .. } => {
                    return Err(Error::StateCorrupt { height, error: execution.clone() });
                }
                _ => {}
            }
        }
        error!(
            height,
            digest = %certificate.digest,
            %error,
            retry_s = REFUSED_RETRY.as_secs(),
            "a quorum certified a block this node refuses: this node's state is corrupt, or more than f validators \
             are faulty; not committing it (`stele audit --home` tells which)"
        );
        self.refused = Some((certificate.digest, self.now() + REFUSED_RETRY));
        self.awaiting_block = Some(certificate);
        Ok(())
    }
}
