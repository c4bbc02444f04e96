//! The background scrub (`[checks]`): a task that re-verifies the stored chain while the node
//! runs, so a value damaged on disk is found while replicas still hold it, not when a client or
//! `stele audit` happens to read it.
//!
//! Each second it checks at most `checks.blocks_per_second` heights, in order from 1 to the
//! head, on a thread of the blocking pool (never on the async workers the consensus driver
//! needs). At each height ([`check_height`]): the block against its header, the hash link to
//! the previous header, the transaction root and the certificate under the validator set in
//! force (the checks of [`ledger::validate`] that `stele audit` uses), the receipts against the
//! certified receipts root and the transactions, the block-hash and transaction indexes, and at
//! sampled heights the state against the certified state root (Jellyfish Merkle proofs of the
//! validator schedule, of the last-block record every block writes, and of every sender's
//! account). A full pass starts at most every
//! `checks.pass_interval`.
//!
//! What it finds is kept per (height, column) until a later check finds that value intact:
//! logged (`error!` with the height and column), counted (`stele_scrub_errors_total`), shown by
//! `chain_status.scrub` and `/ready` (503 while anything is damaged). Its progress (height
//! reached, passes, what is damaged) is saved to [`PROGRESS_FILE`] in the home after every
//! step, so a restart resumes where it stopped. Damaged values stay errors on every read (the
//! store checks what it returns), never data. With `checks.repair`, a block's receipts and
//! index entries are re-derived from the intact block ([`repair`]), and a block whose header,
//! body or certificate is damaged is asked of peers, and the copy that comes is written once the
//! store has checked it is the block the chain holds there (`BlockWriter::rewrite_block`). Damaged heights are checked again
//! every step, so a repair is seen within a second.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use consensus::Height;
use ledger::{
    BlockError, BlockWriter, CertifiedBlock, Genesis, StateHistory, StoreError, TxLocation, state::keys, store::schema,
    validate,
};
use libp2p::PeerId;
use rpc::types::{ScrubDamage, ScrubStatus};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::{
    config::ChecksConfig,
    metrics::Metrics,
    p2p::{
        NetworkHandle,
        protocol::{Request, Response},
    },
    state_file::{self, now_ms},
};

pub mod repair;

/// The file in the home folder that holds the scrub's progress (JSON of [`ScrubStatus`]).
pub const PROGRESS_FILE: &str = "scrub.json";

/// Most damaged blocks asked of peers per step.
pub const PEER_REQUESTS_MAX: usize = 8;

/// How long a peer has to send a copy of a damaged block.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the scrub takes one step of at most `checks.blocks_per_second` blocks.
pub const STEP_INTERVAL: Duration = Duration::from_secs(1);

/// One damaged value found at a height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Height of the block (or state version).
    pub height: Height,
    /// Column family of the damaged value.
    pub column: &'static str,
    /// What does not verify.
    pub reason: String,
}

/// The column a store error names, or `default` (the column being read) if it names none.
fn column_of(error: &StoreError, default: &'static str) -> &'static str {
    error.column().unwrap_or(default)
}

/// The column whose value a failed audit check points at.
fn column_of_block_error(error: &BlockError) -> &'static str {
    match error {
        BlockError::Certificate { .. } => schema::CERTIFICATES,
        BlockError::RootMismatch { field: "tx_root", .. } => schema::BODIES,
        BlockError::ReceiptMismatch { .. } => schema::RECEIPTS,
        _ => schema::HEADERS,
    }
}

/// What [`check_height`] found at one height, one finding per column.
struct Findings {
    height: Height,
    /// Whether the block read back whole: its certificate then proves its header, so a read at
    /// this height that blames the header blames the hash index it is checked against.
    block_intact: bool,
    found: Vec<Damage>,
}

impl Findings {
    fn report(&mut self, column: &'static str, reason: String) {
        if !self.found.iter().any(|damage| damage.column == column) {
            self.found.push(Damage { height: self.height, column, reason });
        }
    }

    /// A store error met while reading at this height (`default`: the column being read). One
    /// that names another block is damage there, reported when the scrub reaches it.
    fn store_error(&mut self, error: StoreError, default: &'static str) {
        if error.height().is_some_and(|at| at != self.height) {
            return;
        }
        let column = match column_of(&error, default) {
            schema::HEADERS if self.block_intact => schema::BLOCK_HASHES,
            column => column,
        };
        self.report(column, error.to_string());
    }
}

/// Re-verifies everything stored for `height` (≥ 1), reading only; returns what is damaged,
/// at most one finding per column. `sample_state`: also prove the state at this height.
pub fn check_height<S: StateHistory>(store: &S, height: Height, sample_state: bool) -> Vec<Damage> {
    let mut findings = Findings { height, block_intact: false, found: Vec::new() };

    // The block: the store checks the certificate and the body on read; the audit checks
    // then hold it to its parent and to the validator set in force at its height.
    let certified = match store.block(height) {
        Ok(Some(certified)) => Some(certified),
        Ok(None) => {
            findings.report(schema::HEADERS, "the block is missing below the head".to_string());
            None
        }
        Err(error) => {
            findings.store_error(error, schema::HEADERS);
            None
        }
    };
    if let Some(certified) = &certified {
        let block = &certified.block;
        let mut checks = Vec::new();
        // A damaged previous header is reported at its own height.
        if let Ok(Some(previous)) = store.header(height - 1) {
            checks.push(validate::check_link(&previous, &block.header));
        }
        checks.push(validate::check_tx_root(block));
        match store.validator_set_for(height) {
            Ok(validators) => checks.push(validate::check_certificate(block, &certified.certificate, &validators)),
            Err(error) => findings.store_error(error, schema::TREE_VALUES),
        }
        let failed: Vec<BlockError> = checks.into_iter().filter_map(Result::err).collect();
        findings.block_intact = failed.is_empty();
        for error in failed {
            findings.report(column_of_block_error(&error), error.to_string());
        }
        match store.height_of(&block.header.hash()) {
            Ok(Some(indexed)) if indexed == height => {}
            Ok(other) => findings.report(
                schema::BLOCK_HASHES,
                format!("the block's hash is indexed at {other:?}, not at height {height}"),
            ),
            Err(error) => findings.store_error(error, schema::BLOCK_HASHES),
        }
    }

    // The receipts (checked on read against the certified receipts root), then that they
    // name the block's transactions and that the index finds each transaction where it is.
    match store.receipts(height) {
        Ok(Some(receipts)) => {
            if let Some(certified) = &certified {
                let transactions = &certified.block.transactions;
                let mismatch = receipts.len() != transactions.len()
                    || receipts.iter().zip(transactions).any(|(receipt, tx)| receipt.tx_hash != tx.hash());
                if mismatch {
                    findings.report(schema::RECEIPTS, "the receipts do not name the block's transactions".to_string());
                }
            }
            for (index, receipt) in receipts.iter().enumerate() {
                let expected = TxLocation { height, index: index as u32 };
                match store.tx_location(&receipt.tx_hash) {
                    Ok(Some(location)) if location == expected => {}
                    Ok(other) => findings.report(
                        schema::TX_INDEX,
                        format!("transaction {} is indexed at {other:?}, not at {expected:?}", receipt.tx_hash),
                    ),
                    Err(error) => findings.store_error(error, schema::TX_INDEX),
                }
            }
        }
        Ok(None) => findings.report(schema::RECEIPTS, "the receipts are missing below the head".to_string()),
        Err(error) => findings.store_error(error, schema::RECEIPTS),
    }

    // The state at this height against the certified state root: each proof walks from the
    // root to a leaf, so damage to those tree nodes or values is found.
    if sample_state {
        for key in sampled_keys(certified.as_ref()) {
            if let Err(error) = store.state_proof(&key, height) {
                findings.store_error(error, schema::TREE_VALUES);
            }
        }
    }
    findings.found
}

/// The state keys proven at a sampled height: the validator schedule (left unchanged by most
/// blocks, so its proof walks older versions of the tree too), the last-block record (written
/// by every block, so its proof walks this height's own version) and the block's senders.
fn sampled_keys(certified: Option<&CertifiedBlock>) -> BTreeSet<Vec<u8>> {
    let mut state_keys = BTreeSet::from([keys::VALIDATORS.to_vec(), keys::LAST_BLOCK.to_vec()]);
    if let Some(certified) = certified {
        state_keys.extend(certified.block.transactions.iter().map(|tx| keys::account(&tx.transaction.sender())));
    }
    state_keys
}

/// What one [`Scrubber::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Heights checked.
    pub checked: u64,
    /// Whether this step reached the head and so completed a pass.
    pub pass_completed: bool,
}

/// The scrub's state, shared with the RPC backend (which only reads it).
#[derive(Clone, Debug)]
pub struct ScrubHandle {
    status: Arc<Mutex<ScrubStatus>>,
}

impl ScrubHandle {
    fn lock(&self) -> MutexGuard<'_, ScrubStatus> {
        // The status is plain data, whole after every assignment: a panic elsewhere leaves it
        // usable.
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the progress and findings (`chain_status.scrub`).
    pub fn status(&self) -> ScrubStatus {
        self.lock().clone()
    }

    /// One sentence per damaged value, for `/ready`.
    pub fn damaged(&self) -> Vec<String> {
        self.lock()
            .damaged
            .iter()
            .map(|damage| format!("height {}, column {}: {}", damage.height, damage.column, damage.reason))
            .collect()
    }
}

/// Walks the chain a step at a time, keeping [`ScrubStatus`] and saving it.
pub struct Scrubber<S> {
    store: Arc<S>,
    /// For repairing what the genesis wrote to the state tree.
    genesis: Genesis,
    settings: ChecksConfig,
    handle: ScrubHandle,
    metrics: Arc<Metrics>,
    progress_file: Option<PathBuf>,
}

impl<S: StateHistory + BlockWriter + Send + Sync + 'static> Scrubber<S> {
    /// A scrubber over `store`, resuming from `progress_file` if it holds saved progress
    /// (a file that does not parse is logged and ignored: the scrub starts again from height 1).
    pub fn new(
        store: Arc<S>,
        genesis: Genesis,
        settings: ChecksConfig,
        metrics: Arc<Metrics>,
        progress_file: Option<PathBuf>,
    ) -> Self {
        let mut status: ScrubStatus = progress_file
            .as_deref()
            .and_then(|path| state_file::load(path, "the scrub's progress"))
            .unwrap_or_default();
        status.enabled = settings.enabled;
        metrics.scrub_height.set(i64::try_from(status.height).unwrap_or(i64::MAX));
        let handle = ScrubHandle { status: Arc::new(Mutex::new(status)) };
        Scrubber { store, genesis, settings, handle, metrics, progress_file }
    }

    /// The handle the RPC backend reads.
    pub fn handle(&self) -> ScrubHandle {
        self.handle.clone()
    }

    /// Checks at most `checks.blocks_per_second` heights: first those found damaged before (so a
    /// repair is noticed within a second, between passes too), then onwards from where the pass
    /// stands; records what they hold, and saves the progress. Blocks the calling thread for
    /// the reads.
    pub fn step(&self) -> Result<Step, StoreError> {
        let head = self.store.head()?.height;
        let mut status = self.handle.lock().clone();
        let budget = u64::from(self.settings.blocks_per_second);
        let mut checked = 0;
        let mut damaged: Vec<Height> = status.damaged.iter().map(|damage| damage.height).collect();
        damaged.dedup();
        for height in damaged.into_iter().take(usize::try_from(budget).unwrap_or(usize::MAX)) {
            self.check_and_record(&mut status, height);
            checked += 1;
        }
        // Between passes; or no block yet, which is no chain to have passed over.
        if status.next_pass_ms.is_some() || head == 0 {
            if checked > 0 {
                self.metrics.scrub_blocks.inc_by(checked);
                *self.handle.lock() = status.clone();
                self.save(&status);
            }
            return Ok(Step { checked, pass_completed: false });
        }
        // A store restored from an older backup may be below the saved progress.
        if status.height > head {
            status.height = 0;
        }
        let last = head.min(status.height.saturating_add(budget - checked));
        for height in status.height + 1..=last {
            self.check_and_record(&mut status, height);
            status.height = height;
            checked += 1;
        }
        self.metrics.scrub_blocks.inc_by(checked);
        self.metrics.scrub_height.set(i64::try_from(status.height).unwrap_or(i64::MAX));
        let pass_completed = status.height >= head;
        if pass_completed {
            status.passes += 1;
            status.last_pass_ms = Some(now_ms());
            let started = status.pass_started_ms.unwrap_or_else(now_ms);
            let interval = u64::try_from(self.settings.pass_interval.as_millis()).unwrap_or(u64::MAX);
            status.next_pass_ms = Some(started.saturating_add(interval));
            self.metrics.scrub_passes.inc();
            info!(
                passes = status.passes,
                height = status.height,
                damaged = status.damaged.len(),
                "scrub pass completed"
            );
        }
        *self.handle.lock() = status.clone();
        self.save(&status);
        Ok(Step { checked, pass_completed })
    }

    /// Checks one height and records what it holds; with `checks.repair`, re-derives its
    /// receipts, indexes and state-tree version if those are damaged, then the older versions
    /// of the tree a still failing state proof reads, and checks again.
    fn check_and_record(&self, status: &mut ScrubStatus, height: Height) {
        let sample_state = height.is_multiple_of(self.settings.state_sample_interval);
        let store = self.store.as_ref();
        let found = check_height(store, height, sample_state);
        let derived = self.settings.repair && found.iter().any(|damage| repair::DERIVED.contains(&damage.column));
        self.record(status, height, found);
        if !derived {
            return;
        }
        // Receipts and indexes follow from the block: write them again from it, then check
        // the height again, which counts what is intact now as repaired.
        match repair::rederive(store, height) {
            Ok(()) => info!(height, "scrub: re-derived the block's receipts, index entries and state-tree version"),
            Err(error) => warn!(height, %error, "scrub: cannot re-derive the block's receipts and indexes"),
        }
        let mut found = check_height(store, height, sample_state);
        if found.iter().any(|damage| [schema::TREE_VALUES, schema::TREE_NODES].contains(&damage.column)) {
            // What an older block (or the genesis) wrote and no block has written since, read
            // by the validator schedule in force (the state before this height) or a sample.
            let mut proofs = vec![(keys::VALIDATORS.to_vec(), height - 1)];
            if sample_state {
                let certified = store.block(height).ok().flatten();
                proofs.extend(sampled_keys(certified.as_ref()).into_iter().map(|key| (key, height)));
            }
            let mut written = 0;
            for (key, at) in proofs {
                if store.state_proof(&key, at).is_err() {
                    written += repair::state_path(store, &self.genesis, &key, at).len();
                }
            }
            if written > 0 {
                info!(height, versions = written, "scrub: re-derived the state-tree versions a failing proof reads");
                found = check_height(store, height, sample_state);
            }
        }
        self.record(status, height, found);
    }

    /// With `checks.repair`, the heights (at most [`PEER_REQUESTS_MAX`]) whose header, body or
    /// certificate is damaged: those only a peer's certified copy can repair.
    pub fn wanted_from_peers(&self) -> Vec<Height> {
        if !self.settings.repair {
            return Vec::new();
        }
        let mut heights: Vec<Height> = self
            .handle
            .lock()
            .damaged
            .iter()
            .filter(|damage| repair::FROM_PEERS.contains(&damage.column.as_str()))
            .map(|damage| damage.height)
            .collect();
        heights.dedup();
        heights.truncate(PEER_REQUESTS_MAX);
        heights
    }

    /// Writes a peer's copy of the damaged block at `height` if this node's still does not
    /// read back; the store refuses a copy that is not the block the chain holds there
    /// ([`BlockWriter::rewrite_block`]). Whether it repaired.
    pub fn repair_with(&self, peer: PeerId, height: Height, blocks: Vec<CertifiedBlock>) -> bool {
        let Some(copy) = blocks.into_iter().find(|certified| certified.block.header.height == height) else {
            debug!(%peer, height, "scrub: the peer has no copy of the damaged block");
            return false;
        };
        if self.store.block(height).is_ok() {
            return false;
        }
        match self.store.rewrite_block(&copy) {
            Ok(()) => {
                info!(%peer, height, "scrub: repaired a damaged block with a peer's certified copy");
                true
            }
            Err(error) => {
                warn!(%peer, height, %error, "scrub: a peer's copy of a damaged block does not repair it");
                false
            }
        }
    }

    /// Starts the next pass from height 1 if its time has come; whether it did.
    pub fn begin_pass_if_due(&self, now_ms: u64) -> bool {
        let mut status = self.handle.lock();
        match status.next_pass_ms {
            Some(due) if now_ms >= due => {
                status.next_pass_ms = None;
                status.pass_started_ms = Some(now_ms);
                status.height = 0;
                let saved = status.clone();
                drop(status);
                self.metrics.scrub_height.set(0);
                self.save(&saved);
                true
            }
            Some(_) => false,
            None => {
                if status.pass_started_ms.is_none() {
                    status.pass_started_ms = Some(now_ms);
                }
                true
            }
        }
    }

    /// Replaces what is known of `height` with what was just found there.
    fn record(&self, status: &mut ScrubStatus, height: Height, found: Vec<Damage>) {
        let before = status.damaged.len();
        status
            .damaged
            .retain(|known| known.height != height || found.iter().any(|damage| damage.column == known.column));
        let repaired = (before - status.damaged.len()) as u64;
        if repaired > 0 {
            info!(height, repaired, "scrub: values found damaged before are intact again");
            status.repaired += repaired;
        }
        for damage in found {
            let known = status.damaged.iter().any(|known| known.height == height && known.column == damage.column);
            if known {
                continue;
            }
            error!(height, column = %damage.column, reason = %damage.reason, "scrub: damaged stored value");
            self.metrics.scrub_errors.inc();
            status.errors += 1;
            status.damaged.push(ScrubDamage { height, column: damage.column.to_string(), reason: damage.reason });
        }
        status.damaged.sort_by(|a, b| (a.height, &a.column).cmp(&(b.height, &b.column)));
    }

    /// Writes the progress (to a temporary file renamed over the old one, so a crash leaves
    /// one or the other). A failure is logged: the scrub then redoes some heights after a
    /// restart, nothing worse.
    fn save(&self, status: &ScrubStatus) {
        if let Some(path) = &self.progress_file {
            state_file::save(path, status, "the scrub's progress");
        }
    }

    /// Runs until `shutdown`: one step every [`STEP_INTERVAL`] on the blocking pool, a new pass
    /// when one is due; with `checks.repair`, damaged blocks are asked of `network`'s peers.
    pub async fn run(self, network: Option<NetworkHandle>, mut shutdown: watch::Receiver<bool>) {
        let scrubber = Arc::new(self);
        let mut round = 0usize;
        let mut interval = tokio::time::interval(STEP_INTERVAL);
        // A step that overran its second must not be followed by a burst of steps.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            scrubber.begin_pass_if_due(now_ms());
            let worker = scrubber.clone();
            let step = move || {
                let started = std::time::Instant::now();
                let result = worker.step();
                worker.metrics.scrub_seconds.inc_by(started.elapsed().as_secs_f64());
                result
            };
            match tokio::task::spawn_blocking(step).await {
                Ok(Ok(_)) => {}
                // The head itself could not be read: the driver will stop on it; say so and retry.
                Ok(Err(error)) => warn!(%error, "scrub: cannot read the head"),
                Err(error) => {
                    warn!(%error, "scrub: the step failed; the scrub stops");
                    return;
                }
            }
            // Ask peers for certified copies of damaged blocks; the store checks a copy is the
            // block the chain holds there before writing it, and the next step's check of
            // those heights sees the repair.
            let wanted = scrubber.wanted_from_peers();
            if let (Some(network), false) = (&network, wanted.is_empty()) {
                let peers = network.peers().await;
                for (index, height) in wanted.into_iter().enumerate() {
                    let Some(peer) = peers.get((index + round) % peers.len().max(1)).map(|peer| peer.peer_id) else {
                        break;
                    };
                    let request = Request::Blocks { from: height, count: 1 };
                    let answer = tokio::time::timeout(PEER_TIMEOUT, network.call(peer, request)).await.ok().flatten();
                    let Some(Response::Blocks(blocks)) = answer else { continue };
                    let worker = scrubber.clone();
                    let _ = tokio::task::spawn_blocking(move || worker.repair_with(peer, height, blocks)).await;
                }
                // Another peer next time, should this one not have served.
                round = round.wrapping_add(1);
            }
        }
    }
}

/// Starts the scrub of `store` for the node in `home` (if `settings.enabled`), returning the
/// handle the RPC backend reads; the task ends on `shutdown`.
pub fn start<S: StateHistory + BlockWriter + Send + Sync + 'static>(
    home: &Path,
    genesis: Genesis,
    settings: &ChecksConfig,
    store: Arc<S>,
    metrics: Arc<Metrics>,
    network: Option<NetworkHandle>,
    shutdown: watch::Receiver<bool>,
) -> ScrubHandle {
    let scrubber = Scrubber::new(store, genesis, settings.clone(), metrics, Some(home.join(PROGRESS_FILE)));
    let handle = scrubber.handle();
    if settings.enabled {
        tokio::spawn(scrubber.run(network, shutdown));
    } else {
        info!("the background scrub is off (checks.enabled = false)");
    }
    handle
}

#[cfg(test)]
mod tests;
