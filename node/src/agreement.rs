//! Peer agreement (`[checks]`): every `checks.compare_interval` the node asks each connected peer
//! for its certified head and its certified header at the checkpoint (the highest multiple of
//! `checks.checkpoint_interval` at or below this node's head), and compares each with its own
//! block at that height. The header carries the state root after the block, so agreeing on
//! the header is agreeing on the certified state; the scrub ([`crate::scrub`]) proves the
//! stored state against that root.
//!
//! A peer's header counts only if its certificate commits it under the validator set this
//! node holds in force at that height; anything else is a bad answer, counted and logged, never
//! a divergence (one Byzantine peer cannot raise the alarm). A different header with a valid
//! certificate at a height this node also certified means two quorums signed two blocks: more
//! than f validators are Byzantine. That is logged at error level with both headers, counted
//! (`stele_peer_divergence_total`), kept as evidence (both headers and certificates, which
//! prove themselves to anyone holding the validator set) in [`STATE_FILE`] in the home, served
//! by `chain_getDivergences`, and makes `/ready` answer 503.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use consensus::{Height, PublicKey};
use ledger::{StateHistory, StoreError};
use libp2p::PeerId;
use rpc::types::{AgreementStatus, CertifiedHeader as RpcCertifiedHeader, Divergence, Header, PeerComparison};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::{
    config::ChecksConfig,
    metrics::Metrics,
    p2p::{
        NetworkHandle,
        protocol::{CertifiedHeader, Request, Response},
    },
    state_file::{self, now_ms},
};

/// The file in the home folder that keeps the comparisons' record and the divergence evidence.
pub const STATE_FILE: &str = "agreement.json";

/// Most pieces of divergence evidence kept (the first found: a later one adds nothing to the
/// proof that more than f validators signed two blocks).
pub const DIVERGENCES_MAX: usize = 16;

/// How long a peer has to answer one comparison.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What comparing one of a peer's certified headers with this node's chain found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The same block at this height.
    Agreed {
        /// The height compared.
        height: Height,
    },
    /// Nothing to compare: above this node's head, the genesis, or this node's own block there
    /// does not read back (the scrub reports that).
    Skipped,
    /// The certificate does not commit the header under the validator set in force: a bad
    /// answer from the peer, not evidence.
    Invalid {
        /// The height the header claims.
        height: Height,
        /// What does not verify.
        reason: String,
    },
    /// Another certified block at a height this node certified.
    Diverged {
        /// This node's header and certificate.
        ours: Box<CertifiedHeader>,
        /// The peer's.
        theirs: Box<CertifiedHeader>,
        /// The validators whose signatures are in both certificates.
        signed_both: Vec<PublicKey>,
    },
}

/// Compares a peer's certified header with this node's block at its height.
pub fn compare<S: StateHistory>(store: &S, theirs: &CertifiedHeader) -> Result<Finding, StoreError> {
    let height = theirs.header.height;
    let head = store.head()?;
    if height == 0 || height > head.height {
        return Ok(Finding::Skipped);
    }
    let validators = store.validator_set_for(height)?;
    let hash = theirs.header.hash();
    let invalid = |reason: String| Ok(Finding::Invalid { height, reason });
    if theirs.header.chain_id != head.chain_id {
        return invalid(format!("a header of chain {}", theirs.header.chain_id));
    }
    if theirs.certificate.digest != hash || theirs.certificate.height != height {
        return invalid("the certificate names another block".to_string());
    }
    if let Err(error) = theirs.certificate.verify(&head.chain_id, &validators, height, &hash) {
        return invalid(format!("certificate: {error}"));
    }
    let (header, certificate) = match store.certified_header(height) {
        Ok(Some(ours)) => ours,
        Ok(None) => return Ok(Finding::Skipped),
        Err(error) => {
            debug!(height, %error, "agreement: this node's block does not read back; not compared");
            return Ok(Finding::Skipped);
        }
    };
    if header.hash() == hash {
        return Ok(Finding::Agreed { height });
    }
    let signed_both = certificate
        .signatures
        .iter()
        .filter(|ours| theirs.certificate.signatures.iter().any(|other| other.validator == ours.validator))
        .filter_map(|signature| validators.members().get(usize::try_from(signature.validator).ok()?).copied())
        .collect();
    Ok(Finding::Diverged {
        ours: Box::new(CertifiedHeader { header, certificate }),
        theirs: Box::new(theirs.clone()),
        signed_both,
    })
}

/// The checkpoint compared at a head: the highest multiple of `interval` at or below it.
pub fn checkpoint(head: Height, interval: u64) -> Height {
    head - head % interval.max(1)
}

/// What is saved in [`STATE_FILE`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Saved {
    status: AgreementStatus,
    divergences: Vec<Divergence>,
}

/// The comparisons' record, shared with the RPC backend (which only reads it).
#[derive(Clone, Debug, Default)]
pub struct AgreementHandle {
    state: Arc<Mutex<Saved>>,
}

impl AgreementHandle {
    fn lock(&self) -> MutexGuard<'_, Saved> {
        // Plain data, whole after every assignment: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The record of comparisons (`chain_status.agreement`).
    pub fn status(&self) -> AgreementStatus {
        self.lock().status.clone()
    }

    /// The divergence evidence kept, first found first (`chain_getDivergences`).
    pub fn divergences(&self) -> Vec<Divergence> {
        self.lock().divergences.clone()
    }

    /// One sentence per divergence, for `/ready`.
    pub fn diverged(&self) -> Vec<String> {
        self.lock()
            .divergences
            .iter()
            .map(|divergence| {
                format!(
                    "peer {} holds another certified block at height {}: {} (ours {})",
                    divergence.peer, divergence.height, divergence.theirs.header.hash, divergence.ours.header.hash
                )
            })
            .collect()
    }
}

fn rpc_header(certified: &CertifiedHeader) -> RpcCertifiedHeader {
    RpcCertifiedHeader { header: Header::new(&certified.header, 0), certificate: certified.certificate.clone() }
}

/// Compares this node's chain with its peers', keeping the record and the evidence.
pub struct Comparer<S> {
    store: Arc<S>,
    settings: ChecksConfig,
    handle: AgreementHandle,
    metrics: Arc<Metrics>,
    state_file: Option<PathBuf>,
}

impl<S: StateHistory + Send + Sync + 'static> Comparer<S> {
    /// A comparer over `store`, with the record and evidence saved in `state_file` (a file that
    /// does not parse is logged and set aside as `.bad`, so evidence is never overwritten).
    pub fn new(store: Arc<S>, settings: ChecksConfig, metrics: Arc<Metrics>, state_file: Option<PathBuf>) -> Self {
        let mut saved: Saved =
            state_file.as_deref().and_then(|path| state_file::load(path, "the peer comparisons")).unwrap_or_default();
        saved.status.enabled = settings.enabled && settings.compare_with_peers;
        saved.status.divergences = saved.divergences.len();
        Comparer {
            store,
            settings,
            handle: AgreementHandle { state: Arc::new(Mutex::new(saved)) },
            metrics,
            state_file,
        }
    }

    /// The handle the RPC backend reads.
    pub fn handle(&self) -> AgreementHandle {
        self.handle.clone()
    }

    /// The heights asked of peers: the checkpoint at this node's head.
    pub fn checkpoint(&self) -> Result<Height, StoreError> {
        Ok(checkpoint(self.store.head()?.height, self.settings.checkpoint_interval))
    }

    /// Compares a peer's answer (its head and its header at the checkpoint) and records what
    /// was found; returns the findings. Reads the store and checks signatures: call it off the
    /// async workers.
    pub fn record_answer(&self, peer: PeerId, answer: &[CertifiedHeader]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for theirs in answer {
            match compare(self.store.as_ref(), theirs) {
                Ok(finding) => findings.push(finding),
                Err(error) => warn!(%peer, %error, "agreement: cannot read this node's chain to compare"),
            }
        }
        let mut saved = self.handle.lock();
        let mut changed = false;
        let mut heights = Vec::new();
        let mut agreed = true;
        for finding in &findings {
            match finding {
                Finding::Agreed { height } => heights.push(*height),
                Finding::Skipped => {}
                Finding::Invalid { height, reason } => {
                    warn!(%peer, height, %reason, "agreement: a peer's certified header does not verify");
                    saved.status.invalid_answers += 1;
                    agreed = false;
                }
                Finding::Diverged { ours, theirs, signed_both } => {
                    let height = ours.header.height;
                    heights.push(height);
                    agreed = false;
                    error!(
                        %peer,
                        height,
                        ours = %ours.header.hash(),
                        our_state_root = %ours.header.state_root,
                        theirs = %theirs.header.hash(),
                        their_state_root = %theirs.header.state_root,
                        signed_both = signed_both.len(),
                        "SAFETY VIOLATION: a peer holds another certified block at a height this node committed; \
                         two quorums signed two blocks, so more than f validators are Byzantine"
                    );
                    let their_hash = theirs.header.hash();
                    let known = saved
                        .divergences
                        .iter()
                        .any(|known| known.height == height && known.theirs.header.hash == their_hash);
                    if !known {
                        self.metrics.peer_divergence.inc();
                        if saved.divergences.len() < DIVERGENCES_MAX {
                            saved.divergences.push(Divergence {
                                height,
                                peer: peer.to_string(),
                                seen_at_ms: now_ms(),
                                ours: rpc_header(ours),
                                theirs: rpc_header(theirs),
                                signed_both: signed_both.clone(),
                            });
                        }
                        saved.status.divergences = saved.divergences.len();
                    }
                }
            }
        }
        if !findings.iter().all(|finding| *finding == Finding::Skipped) {
            self.metrics.peer_comparisons.inc();
            saved.status.comparisons += 1;
            saved.status.last = Some(PeerComparison { peer: peer.to_string(), at_ms: now_ms(), heights, agreed });
            changed = true;
        }
        if changed {
            let copy = saved.clone();
            drop(saved);
            self.save(&copy);
        }
        findings
    }

    /// A peer that did not answer, or answered something else.
    fn record_failure(&self, peer: PeerId, answer: Option<Response>) {
        match answer {
            None => debug!(%peer, "agreement: the peer did not answer"),
            Some(other) => {
                warn!(%peer, ?other, "agreement: the peer answered another question");
                self.handle.lock().status.invalid_answers += 1;
            }
        }
    }

    fn save(&self, saved: &Saved) {
        if let Some(path) = &self.state_file {
            state_file::save(path, saved, "the peer comparisons");
        }
    }

    /// Runs until `shutdown`: every `checks.compare_interval`, every connected peer is asked at
    /// once and each answer compared on the blocking pool.
    pub async fn run(self, network: NetworkHandle, mut shutdown: watch::Receiver<bool>) {
        let comparer = Arc::new(self);
        let mut interval = tokio::time::interval(comparer.settings.compare_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let worker = comparer.clone();
            let at = match tokio::task::spawn_blocking(move || worker.checkpoint()).await {
                Ok(Ok(at)) => at,
                Ok(Err(error)) => {
                    warn!(%error, "agreement: cannot read the head");
                    continue;
                }
                Err(error) => {
                    warn!(%error, "agreement: the head read failed; comparisons stop");
                    return;
                }
            };
            let peers = network.peers().await;
            let asks = peers.iter().map(|peer| {
                let (network, peer) = (network.clone(), peer.peer_id);
                async move {
                    let answer = tokio::time::timeout(CALL_TIMEOUT, network.call(peer, Request::CertifiedHeads { at }))
                        .await
                        .ok()
                        .flatten();
                    (peer, answer)
                }
            });
            for (peer, answer) in futures::future::join_all(asks).await {
                let Some(Response::CertifiedHeads { head, at }) = answer else {
                    comparer.record_failure(peer, answer);
                    continue;
                };
                let headers: Vec<CertifiedHeader> = head.into_iter().chain(at).map(|header| *header).collect();
                let worker = comparer.clone();
                if let Err(error) = tokio::task::spawn_blocking(move || worker.record_answer(peer, &headers)).await {
                    warn!(%error, "agreement: a comparison failed");
                }
            }
        }
    }
}

/// Starts comparing `store`'s chain with `network`'s peers (if `settings` say so), returning
/// the handle the RPC backend reads; the task ends on `shutdown`.
pub fn start<S: StateHistory + Send + Sync + 'static>(
    home: &Path,
    settings: &ChecksConfig,
    store: Arc<S>,
    metrics: Arc<Metrics>,
    network: NetworkHandle,
    shutdown: watch::Receiver<bool>,
) -> AgreementHandle {
    let comparer = Comparer::new(store, settings.clone(), metrics, Some(home.join(STATE_FILE)));
    let handle = comparer.handle();
    if settings.enabled && settings.compare_with_peers {
        tokio::spawn(comparer.run(network, shutdown));
    } else {
        info!("peer comparisons are off (checks.enabled or checks.compare_with_peers is false)");
    }
    handle
}

#[cfg(test)]
#[path = "agreement_test.rs"]
mod tests;
