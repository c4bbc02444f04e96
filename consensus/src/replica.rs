//! The PBFT state machine: one height at a time, in views, with view change.

use std::collections::{BTreeMap, HashSet};

use crate::{
    ChainId, CommitCertificate, Digest, Height, Message, PreparedCertificate, SafetyState, SignedViewChange,
    SignedVote, SigningKey, ValidatorIndex, ValidatorSet, Verified, View, ViewChange, Vote, VoteKind,
    vote_keeper::{Recorded, Threshold, VoteKeeper},
};

/// Heights above the current one whose messages are kept for later (bounded memory).
pub const FUTURE_HEIGHTS: Height = 4;
/// Most messages kept for future heights, in all.
pub const FUTURE_MESSAGES_MAX: usize = 4096;
/// Views above the current one whose votes are recorded; later ones are dropped.
pub const VIEW_WINDOW: View = 64;
/// Certificates of past heights kept to answer replicas still working on them.
pub const PAST_CERTIFICATES: usize = 16;

/// Static configuration of one replica.
#[derive(Clone, Debug)]
pub struct Config {
    /// The chain; every signature commits to it.
    pub chain_id: ChainId,
    /// This validator's consensus key (an observer's key is simply not in the set).
    pub key: SigningKey,
    /// The first view's timeout in milliseconds; each later view doubles it.
    pub view_timeout_ms: u64,
    /// The ceiling of the timeout backoff in milliseconds.
    pub view_timeout_max_ms: u64,
}

/// A timer the driver runs: the timeout of one view of one height.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Timer {
    /// The height.
    pub height: Height,
    /// The view.
    pub view: View,
}

/// What the driver feeds the state machine.
#[derive(Clone, Debug)]
pub enum Input {
    /// Restores the safety state saved before a crash; give it before the first `StartHeight`.
    Restore(SafetyState),
    /// Starts `height`, whose certificates `validators` sign; the driver gives it at boot and
    /// after committing the previous height.
    StartHeight {
        /// The height to work on.
        height: Height,
        /// Its validator set.
        validators: ValidatorSet,
        /// The certificate of the block before it, from the store: after a restart it is what
        /// lets this replica answer validators still working on that height.
        previous: Option<CommitCertificate>,
    },
    /// A message whose signatures the driver verified.
    Message(Verified<Message>),
    /// A timer started by `Output::StartTimer` fired.
    TimerFired(Timer),
    /// The block this leader asked for with `Output::RequestProposal` is ready.
    ProposalReady {
        /// Its height.
        height: Height,
        /// The view it was asked for.
        view: View,
        /// Its digest.
        digest: Digest,
    },
    /// The verdict on a value asked for with `Output::ValidateValue` (or, for a value once
    /// judged [`Verdict::NotYet`], given unasked once it became valid).
    ValueValidated {
        /// Its height.
        height: Height,
        /// Its digest.
        digest: Digest,
        /// What the driver found.
        verdict: Verdict,
    },
}

/// The driver's answer on a proposed value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// It executes and matches its header: this validator may vote for it.
    Valid,
    /// It can never be valid at this height (its link, body or execution is wrong): it is never
    /// asked about again at this height.
    Invalid,
    /// Not valid yet, but it may become so with time alone (its timestamp is ahead of this
    /// node's clock). Nothing is cached: a later proposal of the same value asks again, and the
    /// driver may answer [`Verdict::Valid`] unasked once its clock has caught up. Caching it as
    /// invalid would make this validator refuse a value that a NEW-VIEW must re-propose.
    NotYet,
}

/// Two signed votes by one validator for one (height, view, kind) with different digests.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Evidence {
    /// The vote seen first.
    pub first: SignedVote,
    /// The conflicting vote.
    pub second: SignedVote,
}

/// What the state machine asks the driver to do, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
#[must_use]
pub enum Output {
    /// Make this safety state durable (synced) before executing any later output.
    Persist(SafetyState),
    /// Send to every validator.
    Broadcast(Message),
    /// Send to one validator.
    Send {
        /// The recipient.
        to: ValidatorIndex,
        /// The message.
        message: Message,
    },
    /// Start a timer; a later timer for the same (height, view) replaces it.
    StartTimer {
        /// Which.
        timer: Timer,
        /// After how many milliseconds it fires.
        after_ms: u64,
    },
    /// This validator leads (height, view): build a block and answer `Input::ProposalReady`.
    RequestProposal {
        /// The height.
        height: Height,
        /// The view.
        view: View,
    },
    /// Execute the proposed value and answer `Input::ValueValidated`.
    ValidateValue {
        /// The height.
        height: Height,
        /// The view it was proposed in.
        view: View,
        /// The value.
        digest: Digest,
    },
    /// The height is decided: commit the block with this certificate (fetching it if needed),
    /// then give `Input::StartHeight` for the next height.
    Decide(CommitCertificate),
    /// A quorum certified a later height than the one this replica works on: it is behind and
    /// must catch up by block sync. Reported once per higher height seen.
    CertifiedAhead(CommitCertificate),
    /// A validator signed conflicting votes.
    Evidence(Evidence),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Phase {
    /// Working in `view` (its proposal accepted or awaited).
    #[default]
    Normal,
    /// Asked for `view`, waiting for its NEW-VIEW.
    ViewChange,
}

/// One validator's (or observer's) consensus state machine. Pure: no IO, clock or randomness.
pub struct Replica {
    config: Config,
    height: Height,
    validators: Option<ValidatorSet>,
    me: Option<ValidatorIndex>,
    safety: SafetyState,
    /// What is known of the height being decided: replaced whole when the next one starts.
    current: HeightState,
    highest_certificate_seen: Height,
    past_certificates: BTreeMap<Height, CommitCertificate>,
    future: BTreeMap<Height, Vec<Verified<Message>>>,
    future_count: usize,
}

/// What a replica knows of one height. A new height starts from [`HeightState::new`], so
/// nothing of the last one can leak into it.
struct HeightState {
    view: View,
    phase: Phase,
    proposal: Option<Digest>,
    proposal_requested: Option<View>,
    new_view_sent: Option<View>,
    accepted_new_view: Option<Message>,
    valid: HashSet<Digest>,
    invalid: HashSet<Digest>,
    validating: HashSet<Digest>,
    votes: VoteKeeper,
    view_changes: BTreeMap<View, BTreeMap<ValidatorIndex, SignedViewChange>>,
    highest_view_asked: BTreeMap<ValidatorIndex, View>,
    helped: HashSet<(ValidatorIndex, Height, View)>,
    decided: Option<CommitCertificate>,
}

impl HeightState {
    /// Nothing known yet of a height whose validator set has this quorum.
    fn new(quorum: usize) -> Self {
        HeightState {
            view: 0,
            phase: Phase::Normal,
            proposal: None,
            proposal_requested: None,
            new_view_sent: None,
            accepted_new_view: None,
            valid: HashSet::new(),
            invalid: HashSet::new(),
            validating: HashSet::new(),
            votes: VoteKeeper::new(quorum),
            view_changes: BTreeMap::new(),
            highest_view_asked: BTreeMap::new(),
            helped: HashSet::new(),
            decided: None,
        }
    }
}

impl Replica {
    /// A replica that will start when given `Input::StartHeight`.
    pub fn new(config: Config) -> Self {
        Replica {
            config,
            height: 0,
            validators: None,
            me: None,
            safety: SafetyState::new(0),
            // No height yet, so no validator set: no vote can reach a quorum. Nothing is
            // handled before `StartHeight`, which replaces it.
            current: HeightState::new(usize::MAX),
            highest_certificate_seen: 0,
            past_certificates: BTreeMap::new(),
            future: BTreeMap::new(),
            future_count: 0,
        }
    }

    /// The height being worked on.
    pub fn height(&self) -> Height {
        self.height
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.current.view
    }

    /// The leader of (height, view): rotation over the set, so every view has a new leader.
    pub fn leader(validators: &ValidatorSet, height: Height, view: View) -> ValidatorIndex {
        ((height.wrapping_add(view)) % validators.len() as u64) as ValidatorIndex
    }

    /// Applies one input. Pure apart from `&mut self`.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Restore(state) => {
                if state.height >= self.safety.height {
                    self.safety = state;
                }
            }
            Input::StartHeight { height, validators, previous } => {
                if let Some(certificate) = previous
                    && certificate.height < height
                {
                    self.remember_certificate(certificate);
                }
                self.start_height(height, validators, &mut out)
            }
            Input::Message(message) => self.on_message(message, &mut out),
            Input::TimerFired(timer) => self.on_timer(timer, &mut out),
            Input::ProposalReady { height, view, digest } => self.on_proposal_ready(height, view, digest, &mut out),
            Input::ValueValidated { height, digest, verdict } => {
                if height == self.height && self.validators.is_some() {
                    self.current.validating.remove(&digest);
                    match verdict {
                        Verdict::Valid => {
                            self.current.valid.insert(digest);
                            self.try_prepare(&mut out);
                        }
                        Verdict::Invalid => {
                            self.current.invalid.insert(digest);
                        }
                        Verdict::NotYet => {}
                    }
                }
            }
        }
        out
    }

    fn set(&self) -> &ValidatorSet {
        self.validators.as_ref().expect("only called once a height started")
    }

    fn timeout_ms(&self, view: View) -> u64 {
        let doubled = self.config.view_timeout_ms.saturating_mul(1u64 << view.min(32));
        doubled.min(self.config.view_timeout_max_ms)
    }

    fn start_height(&mut self, height: Height, validators: ValidatorSet, out: &mut Vec<Output>) {
        if self.validators.is_some() && height <= self.height {
            return;
        }
        if let Some(certificate) = std::mem::replace(&mut self.current, HeightState::new(validators.quorum())).decided {
            self.remember_certificate(certificate);
        }
        self.height = height;
        self.me = validators.index_of(&self.config.key.public_key());
        if self.safety.height > height {
            // This validator voted at a later height, so `height` was decided and committed
            // here once; the store lost that commit (unsynced block writes, then a power cut)
            // while the synced safety state survived, and what it voted at `height` is
            // forgotten. It must not vote again at a height it cannot remember voting at: it
            // follows as an observer (the height has a certificate already, so this costs no
            // liveness) and keeps the restored state for the height it belongs to.
            self.me = None;
        } else if self.safety.height != height {
            self.safety = SafetyState::new(height);
        }
        self.validators = Some(validators);
        // A restarted validator never goes back to a view it worked in (it lost what it had
        // received there): it asks for the next one, as if its timer had fired.
        let restored = self.safety.height == height;
        self.current.view = if restored { self.safety.view } else { 0 };
        let restarted = restored && (!self.safety.votes.is_empty() || self.safety.view > 0);
        if restarted {
            self.enter_view_change(self.safety.view + 1, out);
        } else {
            out.push(Output::StartTimer { timer: Timer { height, view: 0 }, after_ms: self.timeout_ms(0) });
            self.maybe_request_proposal(out);
        }
        let buffered = self.future.remove(&height).unwrap_or_default();
        self.future_count -= buffered.len();
        self.future.retain(|future_height, _| *future_height > height);
        self.future_count = self.future.values().map(Vec::len).sum();
        for message in buffered {
            self.on_message(message, out);
        }
    }

    fn remember_certificate(&mut self, certificate: CommitCertificate) {
        self.past_certificates.insert(certificate.height, certificate);
        while self.past_certificates.len() > PAST_CERTIFICATES {
            self.past_certificates.pop_first();
        }
    }

    fn is_leader(&self, view: View) -> bool {
        self.me == Some(Self::leader(self.set(), self.height, view))
    }

    fn maybe_request_proposal(&mut self, out: &mut Vec<Output>) {
        if self.current.view == 0
            && self.current.phase == Phase::Normal
            && self.is_leader(0)
            && self.current.proposal_requested.is_none()
        {
            self.current.proposal_requested = Some(0);
            out.push(Output::RequestProposal { height: self.height, view: 0 });
        }
    }

    fn on_timer(&mut self, timer: Timer, out: &mut Vec<Output>) {
        if self.validators.is_none()
            || timer.height != self.height
            || timer.view != self.current.view
            || self.current.decided.is_some()
        {
            return;
        }
        // Help for laggards is rate-limited to once per sender and timeout, not once forever:
        // the first answer may have been lost.
        self.current.helped.clear();
        match self.current.phase {
            // PBFT §4.4: a backup whose timer expires in view v starts a view change to v + 1.
            Phase::Normal => self.enter_view_change(self.current.view + 1, out),
            Phase::ViewChange => {
                // PBFT §4.5.2: only move past v once 2f+1 asked for v (its leader had its chance);
                // otherwise ask again, so laggards and lost messages catch up.
                let asked = self.current.view_changes.get(&self.current.view).map_or(0, BTreeMap::len);
                if asked >= self.set().quorum() {
                    self.enter_view_change(self.current.view + 1, out);
                } else {
                    if let Some(mine) = self.my_view_change(self.current.view) {
                        out.push(Output::Broadcast(Message::ViewChange(mine)));
                    }
                    out.push(Output::StartTimer { timer, after_ms: self.timeout_ms(self.current.view) });
                }
            }
        }
    }

    fn my_view_change(&self, view: View) -> Option<SignedViewChange> {
        let me = self.me?;
        self.current.view_changes.get(&view).and_then(|senders| senders.get(&me)).cloned()
    }

    /// Moves to `view` in the view-change phase and asks for it.
    fn enter_view_change(&mut self, view: View, out: &mut Vec<Output>) {
        self.current.view = view;
        self.current.phase = Phase::ViewChange;
        self.current.proposal = None;
        self.current.accepted_new_view = None;
        out.push(Output::StartTimer { timer: Timer { height: self.height, view }, after_ms: self.timeout_ms(view) });
        let Some(me) = self.me else { return };
        self.safety.view = self.safety.view.max(view);
        let view_change = ViewChange { height: self.height, view, prepared: self.safety.prepared.clone() };
        let signature = self.config.key.sign(&view_change.signing_bytes(&self.config.chain_id));
        let signed = SignedViewChange { view_change, validator: me, signature };
        out.push(Output::Persist(self.safety.clone()));
        out.push(Output::Broadcast(Message::ViewChange(signed.clone())));
        self.record_view_change(signed, out);
    }

    fn on_message(&mut self, verified: Verified<Message>, out: &mut Vec<Output>) {
        let Some(validators) = &self.validators else { return };
        let height = verified.message().height();
        if height > self.height {
            if let Message::Decided(certificate) = verified.message() {
                // A certificate for a later height: the node must catch up by sync. Keep it to
                // help others that lag as well.
                if certificate.height > self.highest_certificate_seen {
                    self.highest_certificate_seen = certificate.height;
                    self.remember_certificate(certificate.clone());
                    out.push(Output::CertifiedAhead(certificate.clone()));
                }
                return;
            }
            if height <= self.height + FUTURE_HEIGHTS && self.future_count < FUTURE_MESSAGES_MAX {
                self.future.entry(height).or_default().push(verified);
                self.future_count += 1;
            }
            return;
        }
        if height < self.height {
            self.help_past_height(verified.message(), out);
            return;
        }
        if verified.validator_set() != validators.digest() {
            return;
        }
        match verified.message().clone() {
            Message::PrePrepare(vote) => self.on_pre_prepare(vote, out),
            // What a PREPARE or COMMIT leads to, the keeper reports as a quorum.
            Message::Prepare(vote) | Message::Commit(vote) => {
                self.record_vote(vote, out);
            }
            Message::ViewChange(view_change) => self.on_view_change(view_change, out),
            Message::NewView { proposal, view_changes } => self.on_new_view(proposal, view_changes, out),
            Message::Decided(certificate) => self.decide(certificate, out),
        }
    }

    /// A replica still working on a height this one decided gets a certificate, once per
    /// (sender, height): that height's if still kept, else the newest, from which its node
    /// syncs the blocks in between.
    fn help_past_height(&mut self, message: &Message, out: &mut Vec<Output>) {
        let (Some(sender), height) = (message.sender(), message.height()) else { return };
        let certificate = match &self.current.decided {
            Some(certificate) if certificate.height == height => Some(certificate),
            _ => self.past_certificates.get(&height).or_else(|| self.past_certificates.values().next_back()),
        };
        if let Some(certificate) = certificate
            && certificate.height >= height
            && self.current.helped.insert((sender, height, 0))
        {
            out.push(Output::Send { to: sender, message: Message::Decided(certificate.clone()) });
        }
    }

    /// Records a signed vote and acts on the quorum it completes, if any; returns false for a
    /// duplicate, a conflicting vote (reported as evidence) or one too far ahead.
    fn record_vote(&mut self, vote: SignedVote, out: &mut Vec<Output>) -> bool {
        if vote.vote.view > self.current.view + VIEW_WINDOW {
            return false;
        }
        match self.current.votes.record(vote) {
            Recorded::New { reached } => {
                if let Some(threshold) = reached {
                    self.on_threshold(threshold, out);
                }
                true
            }
            Recorded::Repeat => false,
            Recorded::Conflict(evidence) => {
                out.push(Output::Evidence(*evidence));
                false
            }
        }
    }

    fn on_pre_prepare(&mut self, proposal: SignedVote, out: &mut Vec<Output>) {
        let view = proposal.vote.view;
        // PBFT §4.2: accept a PRE-PREPARE only from the view's leader; views after 0 start
        // with a justified NEW-VIEW instead.
        if view != 0 || proposal.validator != Self::leader(self.set(), self.height, 0) {
            return;
        }
        if !self.record_vote(proposal, out) {
            return;
        }
        if self.current.view == 0 && self.current.phase == Phase::Normal {
            self.accept_proposal(proposal.vote.digest, out);
        }
    }

    fn accept_proposal(&mut self, digest: Digest, out: &mut Vec<Output>) {
        if self.current.proposal.is_some() {
            return;
        }
        self.current.proposal = Some(digest);
        if self.current.valid.contains(&digest) {
            self.try_prepare(out);
        } else if !self.current.invalid.contains(&digest) && self.current.validating.insert(digest) {
            out.push(Output::ValidateValue { height: self.height, view: self.current.view, digest });
        }
    }

    /// Signs a vote after persisting it; refuses anything that would contradict an earlier vote.
    fn sign_vote(&mut self, kind: VoteKind, digest: Digest, out: &mut Vec<Output>) -> Option<SignedVote> {
        let me = self.me?;
        let vote = Vote { kind, height: self.height, view: self.current.view, digest };
        if self.safety.voted(&vote).is_some() {
            // Already signed this (kind, view): never a second, different one.
            return None;
        }
        self.safety.votes.push(vote);
        out.push(Output::Persist(self.safety.clone()));
        Some(SignedVote::sign(&self.config.chain_id, vote, me, &self.config.key))
    }

    fn try_prepare(&mut self, out: &mut Vec<Output>) {
        if self.current.phase != Phase::Normal || self.current.decided.is_some() {
            return;
        }
        let Some(digest) = self.current.proposal else { return };
        if !self.current.valid.contains(&digest) {
            return;
        }
        if let Some(vote) = self.sign_vote(VoteKind::Prepare, digest, out) {
            out.push(Output::Broadcast(Message::Prepare(vote)));
            self.record_vote(vote, out);
        }
        // The PREPAREs may have reached their quorum before the proposal was accepted and found
        // valid: that quorum was reported then, and counts now.
        self.try_commit(out);
    }

    /// Acts on a quorum the vote keeper reported (once, with the vote that reached it).
    fn on_threshold(&mut self, threshold: Threshold, out: &mut Vec<Output>) {
        let Threshold::Quorum { kind, view, digest } = threshold;
        match kind {
            // PBFT §4.2: 2f+1 PREPAREs prepare the current view's proposal. A quorum of a view
            // this replica is not in yet, or reached before its proposal was accepted and found
            // valid, is acted on when that happens (`start_new_view`, `try_prepare`).
            VoteKind::Prepare if view == self.current.view => self.try_commit(out),
            // PBFT §4.2: 2f+1 COMMITs decide, in any view of the height.
            VoteKind::Commit => self.try_decide(view, digest, out),
            _ => {}
        }
    }

    fn try_commit(&mut self, out: &mut Vec<Output>) {
        if self.current.phase != Phase::Normal || self.current.decided.is_some() {
            return;
        }
        let Some(digest) = self.current.proposal else { return };
        // PBFT §4.2: prepared once the proposal is accepted and 2f+1 matching PREPAREs arrived
        // (the keeper reported that quorum, maybe before the proposal came).
        if !self.current.valid.contains(&digest)
            || !self.current.votes.has_quorum(VoteKind::Prepare, self.current.view, digest)
        {
            return;
        }
        let certificate = PreparedCertificate {
            height: self.height,
            view: self.current.view,
            digest,
            signatures: self.current.votes.signatures(VoteKind::Prepare, self.current.view, digest),
        };
        // Only a voting validator keeps it: an abstaining one's safety state is that of a later
        // height, which a certificate of this one must not replace.
        if self.me.is_some() && self.safety.prepared.as_ref().is_none_or(|held| held.view < certificate.view) {
            self.safety.prepared = Some(certificate);
        }
        if let Some(vote) = self.sign_vote(VoteKind::Commit, digest, out) {
            out.push(Output::Broadcast(Message::Commit(vote)));
            // If this COMMIT completes the quorum, the keeper reports it and the replica decides.
            // No earlier quorum of COMMITs can be pending: reaching one decides at once.
            self.record_vote(vote, out);
        }
    }

    /// Decides on a reported quorum of COMMITs (PBFT §4.2: committed once 2f+1 matching COMMITs
    /// arrived, in any view of the height), unless the height is decided already.
    fn try_decide(&mut self, view: View, digest: Digest, out: &mut Vec<Output>) {
        if self.current.decided.is_some() {
            return;
        }
        let certificate = CommitCertificate {
            chain_id: self.config.chain_id.clone(),
            height: self.height,
            view,
            digest,
            signatures: self.current.votes.signatures(VoteKind::Commit, view, digest),
        };
        self.decide(certificate, out);
    }

    fn decide(&mut self, certificate: CommitCertificate, out: &mut Vec<Output>) {
        if self.current.decided.is_some() || certificate.height != self.height {
            return;
        }
        self.highest_certificate_seen = self.highest_certificate_seen.max(certificate.height);
        self.current.decided = Some(certificate.clone());
        out.push(Output::Decide(certificate));
    }

    fn record_view_change(&mut self, signed: SignedViewChange, out: &mut Vec<Output>) {
        let view = signed.view_change.view;
        let sender = signed.validator;
        if view > self.current.view + VIEW_WINDOW {
            return;
        }
        let senders = self.current.view_changes.entry(view).or_default();
        if senders.contains_key(&sender) {
            return;
        }
        senders.insert(sender, signed);
        let highest = self.current.highest_view_asked.entry(sender).or_insert(view);
        *highest = (*highest).max(view);
        self.try_join_view_change(out);
        self.try_new_view(out);
    }

    fn on_view_change(&mut self, signed: SignedViewChange, out: &mut Vec<Output>) {
        let (sender, view) = (signed.validator, signed.view_change.view);
        if view < self.current.view || (view == self.current.view && self.current.phase == Phase::Normal) {
            // The sender lags: give it what moved this replica on, once per view it asks for.
            if self.current.helped.insert((sender, self.height, view)) {
                if let Some(mine) = self.my_view_change(view) {
                    out.push(Output::Send { to: sender, message: Message::ViewChange(mine) });
                }
                match (&self.current.accepted_new_view, self.my_view_change(self.current.view)) {
                    (Some(new_view), _) => out.push(Output::Send { to: sender, message: new_view.clone() }),
                    (None, Some(mine)) => out.push(Output::Send { to: sender, message: Message::ViewChange(mine) }),
                    (None, None) => {}
                }
            }
        }
        self.record_view_change(signed, out);
    }

    /// PBFT §4.5.2: once f+1 validators ask for views above ours, at least one honest one timed
    /// out, so join the smallest view that f+1 of them ask for (no view-change storms).
    fn try_join_view_change(&mut self, out: &mut Vec<Output>) {
        let mut above: Vec<View> =
            self.current.highest_view_asked.values().copied().filter(|view| *view > self.current.view).collect();
        let needed = self.set().max_faulty() + 1;
        if above.len() < needed || self.current.decided.is_some() {
            return;
        }
        above.sort_unstable_by(|a, b| b.cmp(a));
        let target = above[needed - 1];
        self.enter_view_change(target, out);
    }

    fn highest_prepared<'a>(
        view_changes: impl Iterator<Item = &'a SignedViewChange>,
    ) -> Option<&'a PreparedCertificate> {
        view_changes.filter_map(|signed| signed.view_change.prepared.as_ref()).max_by_key(|prepared| prepared.view)
    }

    /// The new leader, holding 2f+1 VIEW-CHANGEs for its view, starts it (PBFT §4.4): it must
    /// re-propose the highest prepared value among them; with none it proposes a fresh block.
    fn try_new_view(&mut self, out: &mut Vec<Output>) {
        let view = self.current.view;
        if self.current.phase != Phase::ViewChange || !self.is_leader(view) || self.current.new_view_sent == Some(view)
        {
            return;
        }
        let Some(senders) = self.current.view_changes.get(&view) else { return };
        if senders.len() < self.set().quorum() {
            return;
        }
        match Self::highest_prepared(senders.values()) {
            Some(prepared) => {
                let digest = prepared.digest;
                self.send_new_view(digest, out);
            }
            None => {
                if self.current.proposal_requested != Some(view) {
                    self.current.proposal_requested = Some(view);
                    out.push(Output::RequestProposal { height: self.height, view });
                }
            }
        }
    }

    fn on_proposal_ready(&mut self, height: Height, view: View, digest: Digest, out: &mut Vec<Output>) {
        if self.validators.is_none()
            || height != self.height
            || view != self.current.view
            || self.current.decided.is_some()
        {
            return;
        }
        // The leader built this block itself: it is valid by construction.
        self.current.valid.insert(digest);
        match self.current.phase {
            Phase::Normal if view == 0 && self.is_leader(0) => {
                if let Some(vote) = self.sign_vote(VoteKind::PrePrepare, digest, out) {
                    out.push(Output::Broadcast(Message::PrePrepare(vote)));
                    self.record_vote(vote, out);
                    self.accept_proposal(digest, out);
                }
            }
            Phase::ViewChange => self.send_new_view(digest, out),
            Phase::Normal => {}
        }
    }

    fn send_new_view(&mut self, digest: Digest, out: &mut Vec<Output>) {
        let view = self.current.view;
        let Some(vote) = self.sign_vote(VoteKind::PrePrepare, digest, out) else { return };
        self.current.new_view_sent = Some(view);
        let view_changes: Vec<SignedViewChange> =
            self.current.view_changes.get(&view).map(|senders| senders.values().cloned().collect()).unwrap_or_default();
        let message = Message::NewView { proposal: vote, view_changes };
        out.push(Output::Broadcast(message.clone()));
        self.record_vote(vote, out);
        self.start_new_view(digest, message, out);
    }

    fn on_new_view(&mut self, proposal: SignedVote, view_changes: Vec<SignedViewChange>, out: &mut Vec<Output>) {
        let view = proposal.vote.view;
        if view < self.current.view || (view == self.current.view && self.current.phase == Phase::Normal) || view == 0 {
            return;
        }
        if proposal.validator != Self::leader(self.set(), self.height, view) {
            return;
        }
        // PBFT §4.4: a NEW-VIEW is justified by 2f+1 distinct VIEW-CHANGEs for its view, and
        // must propose the value of the highest prepared certificate among them, if any.
        let senders: HashSet<ValidatorIndex> = view_changes.iter().map(|signed| signed.validator).collect();
        if senders.len() < self.set().quorum() {
            return;
        }
        if let Some(prepared) = Self::highest_prepared(view_changes.iter())
            && prepared.digest != proposal.vote.digest
        {
            return;
        }
        if !self.record_vote(proposal, out) {
            return;
        }
        let message = Message::NewView { proposal, view_changes: view_changes.clone() };
        for signed in view_changes {
            let view_change_view = signed.view_change.view;
            if !self
                .current
                .view_changes
                .get(&view_change_view)
                .is_some_and(|senders| senders.contains_key(&signed.validator))
            {
                self.current.view_changes.entry(view_change_view).or_default().insert(signed.validator, signed);
            }
        }
        self.current.view = view;
        self.start_new_view(proposal.vote.digest, message, out);
    }

    fn start_new_view(&mut self, digest: Digest, message: Message, out: &mut Vec<Output>) {
        self.current.phase = Phase::Normal;
        self.current.proposal = None;
        self.current.accepted_new_view = Some(message);
        if self.me.is_some() && self.safety.view < self.current.view {
            self.safety.view = self.current.view;
        }
        out.push(Output::StartTimer {
            timer: Timer { height: self.height, view: self.current.view },
            after_ms: self.timeout_ms(self.current.view),
        });
        self.accept_proposal(digest, out);
        self.try_commit(out);
    }
}

#[cfg(test)]
#[path = "replica_test.rs"]
mod tests;
