//! Deterministic simulation of the real consensus state machine: N replicas in one seeded loop
//! with a virtual clock and a virtual network (delays, drops, duplicates, reordering,
//! partitions that heal, crashes with restart from the persisted safety state only) and
//! Byzantine validators (equivocating leaders, double voters, Twins, silent ones, garbage and
//! wrongly-signed messages), and skewed clocks (a value proposed by a leader whose clock runs
//! ahead is too early for a while on the others). The same scenario and seed replay the same
//! run exactly.

pub mod invariants;

use std::collections::BTreeMap;

use consensus::{
    ChainId, CommitCertificate, Config, Digest, Height, Input, Message, Output, Replica, SafetyState, SignedVote,
    SigningKey, Timer, ValidatorIndex, ValidatorSet, Verdict, Vote, VoteKind,
};
use invariants::{Agreement, Certificates, NoHonestDoubleSign, Validity, Violation};

/// How a validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends nothing at all.
    Silent,
    /// As leader, proposes one value to half the validators and another to the rest.
    EquivocatingLeader,
    /// Sends each PREPARE and COMMIT for one digest to half the validators and for another to
    /// the rest.
    DoubleVoter,
    /// Behaves, but also sends random bytes, truncated and wrongly-signed messages, votes under
    /// other validators' names and replays of old messages.
    Garbage,
}

/// One simulated run: the network, the faults, and what liveness must achieve.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub n: usize,
    pub seed: u64,
    /// Byzantine validators by index.
    pub byzantine: Vec<(usize, Behaviour)>,
    /// Validators run twice with the same key (each copy honest code, together Byzantine).
    pub twins: Vec<usize>,
    /// Before stabilisation: share of messages lost, and of messages delivered twice.
    pub drop_rate: f64,
    pub duplicate_rate: f64,
    /// Delays are uniform in 1..=max_delay_ms, before and after stabilisation.
    pub max_delay_ms: u64,
    /// Random partitions that heal, before stabilisation.
    pub partitions: bool,
    /// Negative control: twins on opposite sides of a partition until stabilisation.
    pub twin_partition: bool,
    /// Random crashes of honest validators, restarted from their persisted state before
    /// stabilisation.
    pub crashes: bool,
    /// Virtual time at which the network stabilises (GST).
    pub gst_ms: u64,
    /// Heights every honest replica must decide after GST...
    pub heights_after_gst: u64,
    /// ...within this much virtual time.
    pub liveness_deadline_ms: u64,
    /// Each process's clock runs ahead by a random amount up to this: a value is too early
    /// (`Verdict::NotYet`) for a process whose clock is behind its proposer's, until it catches
    /// up, when its driver checks it again. 0: clocks agree.
    pub clock_skew_ms: u64,
}

impl Scenario {
    pub fn max_faulty(&self) -> usize {
        (self.n - 1) / 3
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    pub trace_hash: Digest,
    pub violation: Option<Violation>,
    pub lowest_honest_height: Height,
    pub evidence: usize,
    pub deliveries: u64,
    pub rejected: u64,
    pub virtual_ms: u64,
}

struct Process {
    index: ValidatorIndex,
    key: SigningKey,
    behaviour: Option<Behaviour>,
    twin: bool,
    replica: Option<Replica>,
    incarnation: u64,
    persisted: Option<SafetyState>,
    ledger: BTreeMap<Height, Digest>,
    /// The certificate of the last block in the ledger, as a store keeps it.
    last_certificate: Option<CommitCertificate>,
    next_height: Height,
    side: bool,
    /// How far this process's clock runs ahead of virtual time.
    clock_ahead_ms: u64,
}

impl Process {
    fn honest(&self) -> bool {
        self.behaviour.is_none() && !self.twin
    }
}

enum Event {
    Deliver { to: usize, bytes: Vec<u8> },
    Timer { process: usize, incarnation: u64, timer: Timer },
    Drive { process: usize, incarnation: u64, input: Input },
    Crash { process: usize },
    Restart { process: usize },
    Partition { sides: Vec<bool> },
    Heal,
}

const VIEW_TIMEOUT_MS: u64 = 400;
const VIEW_TIMEOUT_MAX_MS: u64 = 8_000;

pub fn chain_id() -> ChainId {
    ChainId::new("sim").expect("chain id")
}

pub fn validator_key(index: usize) -> SigningKey {
    SigningKey::from_seed(Digest::of_parts(&[b"sim validator", &(index as u64).to_le_bytes()]).0)
}

pub struct Simulation {
    scenario: Scenario,
    rng: fastrand::Rng,
    now: u64,
    sequence: u64,
    queue: BTreeMap<(u64, u64), Event>,
    processes: Vec<Process>,
    chain_id: ChainId,
    validators: ValidatorSet,
    partitioned: bool,
    agreement: Agreement,
    validity: Validity,
    certificates: Certificates,
    double_sign: NoHonestDoubleSign,
    violation: Option<Violation>,
    trace: Digest,
    proposals: u64,
    evidence: usize,
    deliveries: u64,
    rejected: u64,
    recent: Vec<Vec<u8>>,
    liveness_target: Option<Height>,
    verified: std::collections::HashMap<Digest, Result<consensus::Verified<Message>, consensus::MessageError>>,
    /// When each value was proposed and by which process (for its timestamp).
    proposed_at: std::collections::HashMap<Digest, (u64, usize)>,
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Self {
        let chain_id = chain_id();
        let keys: Vec<SigningKey> = (0..scenario.n).map(validator_key).collect();
        let validators = ValidatorSet::new(keys.iter().map(SigningKey::public_key).collect()).expect("set");
        let mut processes = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            let behaviour = scenario.byzantine.iter().find(|(i, _)| *i == index).map(|(_, b)| *b);
            let twin = scenario.twins.contains(&index);
            let copies = if twin { 2 } else { 1 };
            for copy in 0..copies {
                processes.push(Process {
                    index: index as ValidatorIndex,
                    key: key.clone(),
                    behaviour,
                    twin,
                    replica: None,
                    incarnation: 0,
                    persisted: None,
                    ledger: BTreeMap::new(),
                    last_certificate: None,
                    next_height: 1,
                    side: copy == 1,
                    clock_ahead_ms: 0,
                });
            }
        }
        let certificates = Certificates { chain_id: chain_id.clone(), validators: validators.clone() };
        Simulation {
            rng: fastrand::Rng::with_seed(scenario.seed),
            scenario,
            now: 0,
            sequence: 0,
            queue: BTreeMap::new(),
            processes,
            chain_id,
            validators,
            partitioned: false,
            agreement: Agreement::default(),
            validity: Validity::default(),
            certificates,
            double_sign: NoHonestDoubleSign::default(),
            violation: None,
            trace: Digest::ZERO,
            proposals: 0,
            evidence: 0,
            deliveries: 0,
            rejected: 0,
            recent: Vec::new(),
            liveness_target: None,
            verified: std::collections::HashMap::new(),
            proposed_at: std::collections::HashMap::new(),
        }
    }

    fn schedule(&mut self, after_ms: u64, event: Event) {
        self.sequence += 1;
        self.queue.insert((self.now + after_ms, self.sequence), event);
    }

    fn config(&self, process: usize) -> Config {
        Config {
            chain_id: self.chain_id.clone(),
            key: self.processes[process].key.clone(),
            view_timeout_ms: VIEW_TIMEOUT_MS,
            view_timeout_max_ms: VIEW_TIMEOUT_MAX_MS,
        }
    }

    fn boot(&mut self) {
        if self.scenario.clock_skew_ms > 0 {
            for process in 0..self.processes.len() {
                self.processes[process].clock_ahead_ms = self.rng.u64(0..=self.scenario.clock_skew_ms);
            }
        }
        for process in 0..self.processes.len() {
            if self.processes[process].behaviour != Some(Behaviour::Silent) {
                self.start(process);
            }
        }
        let gst = self.scenario.gst_ms;
        if self.scenario.twin_partition {
            // Each twin's copies on opposite sides, the honest validators split between them,
            // so each side may hold a quorum of signers.
            let sides = self
                .processes
                .iter()
                .map(|process| if process.twin { process.side } else { process.index % 2 == 1 })
                .collect();
            self.schedule(0, Event::Partition { sides });
            self.schedule(gst, Event::Heal);
        }
        if self.scenario.partitions {
            let mut time = self.rng.u64(0..gst / 2 + 1);
            while time + 200 < gst {
                let sides = (0..self.processes.len()).map(|_| self.rng.bool()).collect();
                let length = self.rng.u64(200..=2_000).min(gst - time - 1);
                self.schedule_at(time, Event::Partition { sides });
                self.schedule_at(time + length, Event::Heal);
                time += length + self.rng.u64(100..2_000);
            }
        }
        if self.scenario.crashes {
            let honest: Vec<usize> = (0..self.processes.len()).filter(|p| self.processes[*p].honest()).collect();
            for _ in 0..self.rng.usize(1..=self.scenario.max_faulty().max(1) + 1) {
                let process = honest[self.rng.usize(0..honest.len())];
                let at = self.rng.u64(0..gst.saturating_sub(100).max(1));
                let back = (at + self.rng.u64(50..3_000)).min(gst.saturating_sub(1));
                self.schedule_at(at, Event::Crash { process });
                self.schedule_at(back.max(at + 1), Event::Restart { process });
            }
        }
    }

    fn schedule_at(&mut self, time: u64, event: Event) {
        self.sequence += 1;
        self.queue.insert((time, self.sequence), event);
    }

    /// Starts (or restarts) a process from what it persisted: its safety state and its ledger.
    fn start(&mut self, process: usize) {
        let mut replica = Replica::new(self.config(process));
        let mut outputs = Vec::new();
        if let Some(state) = self.processes[process].persisted.clone() {
            outputs.extend(replica.handle(Input::Restore(state)));
        }
        let height = self.processes[process].next_height;
        let previous = self.processes[process].last_certificate.clone();
        outputs.extend(replica.handle(Input::StartHeight { height, validators: self.validators.clone(), previous }));
        self.processes[process].replica = Some(replica);
        if std::env::var("SIM_TRACE").is_ok() {
            println!("{} start p{process} at {height}: {outputs:?}", self.now);
        }
        self.execute(process, outputs);
    }

    pub fn run(mut self) -> Outcome {
        self.boot();
        let deadline = self.scenario.gst_ms + self.scenario.liveness_deadline_ms;
        while self.violation.is_none() {
            let Some(((time, _), event)) = self.queue.pop_first() else { break };
            self.now = time;
            if self.now >= self.scenario.gst_ms && self.liveness_target.is_none() {
                let tip = self.honest_heights().into_iter().max().unwrap_or(0);
                self.liveness_target = Some(tip + self.scenario.heights_after_gst);
            }
            if let Some(target) = self.liveness_target
                && self.honest_heights().into_iter().all(|height| height >= target)
            {
                break;
            }
            if self.now > deadline {
                self.violation = Some(Violation {
                    invariant: "liveness",
                    detail: format!(
                        "honest replicas at heights {:?}, target {:?}, {} ms after stabilisation",
                        self.honest_heights(),
                        self.liveness_target,
                        self.scenario.liveness_deadline_ms
                    ),
                });
                break;
            }
            self.step(event);
        }
        Outcome {
            trace_hash: self.trace,
            violation: self.violation,
            lowest_honest_height: self
                .processes
                .iter()
                .filter(|p| p.honest())
                .map(|p| p.next_height - 1)
                .min()
                .unwrap_or(0),
            evidence: self.evidence,
            deliveries: self.deliveries,
            rejected: self.rejected,
            virtual_ms: self.now,
        }
    }

    fn honest_heights(&self) -> Vec<Height> {
        self.processes.iter().filter(|p| p.honest()).map(|p| p.next_height - 1).collect()
    }

    fn record(&mut self, parts: &[&[u8]]) {
        let mut all: Vec<&[u8]> = vec![self.trace.as_bytes()];
        let now = self.now.to_le_bytes();
        all.push(&now);
        all.extend_from_slice(parts);
        self.trace = Digest::of_parts(&all);
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Deliver { to, bytes } => {
                self.record(&[b"deliver", &(to as u64).to_le_bytes(), &bytes]);
                if std::env::var("SIM_TRACE").is_ok() {
                    let text = Message::decode(&bytes).map(|m| format!("{m:?}")).unwrap_or_else(|e| e.to_string());
                    println!("{} -> p{to}: {}", self.now, &text[..text.len().min(160)]);
                }
                if self.processes[to].replica.is_none() {
                    return;
                }
                self.deliveries += 1;
                // Every node's driver verifies what it receives; identical bytes get the same
                // verdict, so it is computed once per run (a broadcast reaches n - 1 nodes).
                let key = Digest::of(&bytes);
                let verified = match self.verified.get(&key) {
                    Some(verdict) => verdict.clone(),
                    None => {
                        let verdict = Message::decode(&bytes).and_then(|m| m.verify(&self.chain_id, &self.validators));
                        self.verified.insert(key, verdict.clone());
                        verdict
                    }
                };
                match verified {
                    Ok(verified) => self.drive(to, Input::Message(verified)),
                    Err(_) => self.rejected += 1,
                }
            }
            Event::Timer { process, incarnation, timer } => {
                self.record(&[b"timer", &(process as u64).to_le_bytes(), &timer.view.to_le_bytes()]);
                if self.processes[process].incarnation == incarnation {
                    self.drive(process, Input::TimerFired(timer));
                }
            }
            Event::Drive { process, incarnation, input } => {
                self.record(&[b"drive", &(process as u64).to_le_bytes(), format!("{input:?}").as_bytes()]);
                if self.processes[process].incarnation == incarnation {
                    self.drive(process, input);
                }
            }
            Event::Crash { process } => {
                self.record(&[b"crash", &(process as u64).to_le_bytes()]);
                if std::env::var("SIM_TRACE").is_ok() {
                    println!("{} crash p{process}", self.now);
                }
                let target = &mut self.processes[process];
                target.replica = None;
                target.incarnation += 1;
            }
            Event::Restart { process } => {
                self.record(&[b"restart", &(process as u64).to_le_bytes()]);
                if std::env::var("SIM_TRACE").is_ok() {
                    println!("{} restart p{process}", self.now);
                }
                if self.processes[process].replica.is_none() {
                    self.start(process);
                }
            }
            Event::Partition { sides } => {
                self.record(&[b"partition"]);
                for (process, side) in sides.into_iter().enumerate() {
                    self.processes[process].side = side;
                }
                self.partitioned = true;
            }
            Event::Heal => {
                self.record(&[b"heal"]);
                self.partitioned = false;
            }
        }
    }

    fn drive(&mut self, process: usize, input: Input) {
        let Some(replica) = self.processes[process].replica.as_mut() else { return };
        let outputs = replica.handle(input);
        self.execute(process, outputs);
    }

    fn execute(&mut self, process: usize, outputs: Vec<Output>) {
        let incarnation = self.processes[process].incarnation;
        for output in outputs {
            match output {
                Output::Persist(state) => self.processes[process].persisted = Some(state),
                Output::Broadcast(message) => self.send(process, None, message),
                Output::Send { to, message } => {
                    if std::env::var("SIM_TRACE").is_ok() {
                        let text = format!("{message:?}");
                        println!("{} p{process} sends to v{to}: {}", self.now, &text[..text.len().min(100)]);
                    }
                    self.send(process, Some(to), message)
                }
                Output::StartTimer { timer, after_ms } => {
                    self.schedule(after_ms, Event::Timer { process, incarnation, timer })
                }
                Output::RequestProposal { height, view } => {
                    self.proposals += 1;
                    let digest = Digest::of_parts(&[
                        b"proposal",
                        &self.scenario.seed.to_le_bytes(),
                        &(process as u64).to_le_bytes(),
                        &height.to_le_bytes(),
                        &view.to_le_bytes(),
                        &self.proposals.to_le_bytes(),
                    ]);
                    self.validity.proposed(digest);
                    self.proposed_at.insert(digest, (self.now, process));
                    let input = Input::ProposalReady { height, view, digest };
                    self.schedule(1, Event::Drive { process, incarnation, input });
                }
                Output::ValidateValue { height, digest, .. } => {
                    let after = self.rng.u64(1..=5);
                    // The value's timestamp is its proposer's clock; this process accepts it
                    // once its own clock reads as much.
                    let acceptable_at = self.proposed_at.get(&digest).map(|(at, proposer)| {
                        let ahead = self.processes[*proposer].clock_ahead_ms;
                        (at + ahead).saturating_sub(self.processes[process].clock_ahead_ms)
                    });
                    let verdict = match acceptable_at {
                        _ if !self.validity.is_proposed(&digest) => Verdict::Invalid,
                        Some(at) if self.now + after < at => {
                            // The driver checks it again when its clock gets there, unasked.
                            let input = Input::ValueValidated { height, digest, verdict: Verdict::Valid };
                            self.schedule_at(at, Event::Drive { process, incarnation, input });
                            Verdict::NotYet
                        }
                        _ => Verdict::Valid,
                    };
                    let input = Input::ValueValidated { height, digest, verdict };
                    self.schedule(after, Event::Drive { process, incarnation, input });
                }
                // Behind: block sync brings the heights up to the certificate's.
                Output::Decide(certificate) | Output::CertifiedAhead(certificate) => self.decide(process, certificate),
                Output::Evidence(_) => self.evidence += 1,
            }
            if self.violation.is_some() {
                return;
            }
        }
    }

    fn fail(&mut self, result: Result<(), Violation>) {
        if let Err(violation) = result
            && self.violation.is_none()
        {
            self.violation = Some(violation);
        }
    }

    /// The driver's commit path: check the certificate, sync any heights skipped, record the
    /// decision in the process's ledger, and start the next height.
    fn decide(&mut self, process: usize, certificate: CommitCertificate) {
        let honest = self.processes[process].honest();
        if honest {
            let result = self.certificates.check(process, &certificate);
            self.fail(result);
        }
        let next = self.processes[process].next_height;
        if certificate.height < next {
            return;
        }
        // Block sync: heights below the certificate come from what honest replicas decided.
        let mut synced = Vec::new();
        for height in next..certificate.height {
            match self.agreement.decided(height) {
                Some(digest) => synced.push((height, digest)),
                None => return,
            }
        }
        synced.push((certificate.height, certificate.digest));
        for (height, digest) in synced {
            if honest {
                let result = self.agreement.check(process, height, digest);
                self.fail(result);
                let result = self.validity.check(process, height, digest);
                self.fail(result);
            }
            self.processes[process].ledger.insert(height, digest);
        }
        let height = certificate.height + 1;
        self.processes[process].next_height = height;
        let incarnation = self.processes[process].incarnation;
        self.processes[process].last_certificate = Some(certificate.clone());
        let input = Input::StartHeight { height, validators: self.validators.clone(), previous: Some(certificate) };
        self.schedule(1, Event::Drive { process, incarnation, input });
    }

    /// Sends a process's message, as its behaviour dictates, to one validator or all others.
    fn send(&mut self, process: usize, to: Option<ValidatorIndex>, message: Message) {
        let (own, honest, behaviour) = {
            let sender = &self.processes[process];
            (sender.index, sender.honest(), sender.behaviour)
        };
        let recipients: Vec<ValidatorIndex> = match to {
            Some(to) => vec![to],
            None => (0..self.scenario.n as ValidatorIndex).filter(|index| *index != own).collect(),
        };
        if honest {
            let result = self.double_sign.check(own, &message);
            self.fail(result);
        }
        match behaviour {
            Some(Behaviour::EquivocatingLeader)
                if matches!(message, Message::PrePrepare(_) | Message::NewView { .. }) =>
            {
                let other = self.conflicting(process, &message, true);
                self.split(process, &recipients, message, other);
            }
            Some(Behaviour::DoubleVoter) if matches!(message, Message::Prepare(_) | Message::Commit(_)) => {
                // Everyone gets the vote; half also get a conflicting one (as gossip would
                // spread both).
                let other = self.conflicting(process, &message, false);
                let half: Vec<ValidatorIndex> = recipients.iter().copied().filter(|index| index % 2 == 1).collect();
                self.transmit(process, &recipients, &message.encode());
                self.transmit(process, &half, &other.encode());
            }
            Some(Behaviour::Garbage) => {
                self.transmit(process, &recipients, &message.encode());
                self.garbage(process, &recipients, &message);
            }
            _ => self.transmit(process, &recipients, &message.encode()),
        }
    }

    fn split(&mut self, process: usize, recipients: &[ValidatorIndex], first: Message, second: Message) {
        let (left, right): (Vec<ValidatorIndex>, Vec<ValidatorIndex>) =
            recipients.iter().partition(|index| *index % 2 == 0);
        self.transmit(process, &left, &first.encode());
        self.transmit(process, &right, &second.encode());
    }

    /// The same message re-signed for another digest (a proposed one for a leader, so honest
    /// replicas would accept it).
    fn conflicting(&mut self, process: usize, message: &Message, proposed: bool) -> Message {
        let key = self.processes[process].key.clone();
        let resign = |vote: &SignedVote, digest: Digest, chain_id: &ChainId| {
            SignedVote::sign(chain_id, Vote { digest, ..vote.vote }, vote.validator, &key)
        };
        let original = match message {
            Message::PrePrepare(vote) | Message::Prepare(vote) | Message::Commit(vote) => vote,
            Message::NewView { proposal, .. } => proposal,
            _ => return message.clone(),
        };
        let digest = Digest::of_parts(&[b"conflict", original.vote.digest.as_bytes()]);
        if proposed {
            self.validity.proposed(digest);
        }
        let vote = resign(original, digest, &self.chain_id);
        match message {
            Message::PrePrepare(_) => Message::PrePrepare(vote),
            Message::Prepare(_) => Message::Prepare(vote),
            Message::Commit(_) => Message::Commit(vote),
            Message::NewView { view_changes, .. } => {
                Message::NewView { proposal: vote, view_changes: view_changes.clone() }
            }
            _ => message.clone(),
        }
    }

    /// Random bytes, a truncated message, a bad signature, a vote in another's name, a replay.
    fn garbage(&mut self, process: usize, recipients: &[ValidatorIndex], message: &Message) {
        let encoded = message.encode();
        let mut junk = match self.rng.u8(0..5) {
            0 => (0..self.rng.usize(0..200)).map(|_| self.rng.u8(..)).collect(),
            1 => encoded[..self.rng.usize(0..encoded.len())].to_vec(),
            2 => {
                let mut flipped = encoded.clone();
                let at = self.rng.usize(0..flipped.len());
                flipped[at] ^= 1 << self.rng.u8(0..8);
                flipped
            }
            3 => {
                let victim = self.rng.u32(0..self.scenario.n as u32);
                let vote = Vote { kind: VoteKind::Commit, height: message.height(), view: 0, digest: Digest([7; 32]) };
                let key = self.processes[process].key.clone();
                Message::Commit(SignedVote::sign(&self.chain_id, vote, victim, &key)).encode()
            }
            _ => self.recent.get(self.rng.usize(0..self.recent.len().max(1))).cloned().unwrap_or_default(),
        };
        if junk.is_empty() {
            junk.push(0xff);
        }
        self.recent.push(encoded);
        if self.recent.len() > 32 {
            self.recent.remove(0);
        }
        self.transmit(process, recipients, &junk);
    }

    fn transmit(&mut self, from: usize, recipients: &[ValidatorIndex], bytes: &[u8]) {
        let before_gst = self.now < self.scenario.gst_ms;
        for to in 0..self.processes.len() {
            if to == from || !recipients.contains(&self.processes[to].index) {
                continue;
            }
            if before_gst {
                if self.partitioned && self.processes[to].side != self.processes[from].side {
                    continue;
                }
                if self.rng.f64() < self.scenario.drop_rate {
                    continue;
                }
                if self.rng.f64() < self.scenario.duplicate_rate {
                    let delay = self.rng.u64(1..=self.scenario.max_delay_ms);
                    self.schedule(delay, Event::Deliver { to, bytes: bytes.to_vec() });
                }
            }
            let delay = self.rng.u64(1..=self.scenario.max_delay_ms);
            self.schedule(delay, Event::Deliver { to, bytes: bytes.to_vec() });
        }
    }
}
