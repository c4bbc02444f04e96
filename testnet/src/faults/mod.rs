//! `stele testnet faults`: the multi-process fault suite. Each scenario generates a fresh
//! 4-validator network, starts one `stele start` process per validator (each on a host of its
//! own, a network namespace, where the machine allows it), drives a steady load of transfers
//! through JSON-RPC while recording every one a node acknowledged as committed, injects its
//! faults, heals everything, and checks ([`check`]): the nodes agree block by block and on the
//! state root, every acknowledged transfer is in every chain exactly once, every node stops
//! cleanly, `stele audit` passes on every store, and progress resumed after each fault within
//! [`RECOVERY_LIMIT`]. `--soak` runs random faults from a seed for as long as asked.

mod check;
mod cluster;
mod load;
pub mod netns;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use consensus::{ChainId, Height};
use genesis::load_key;
use rpc::api::SteleApiClient;
use serde::Serialize;

pub use check::Checked;
use cluster::{Cluster, Hosts};
use load::Load;
use netns::Namespaces;

use crate::{Error, TestnetSpec};

/// Longest a network may take to commit again after a fault is healed (or, for a fault that
/// leaves 2f+1 validators working, after it is injected) before the run counts a liveness
/// violation. View timeouts double while no quorum exists (3 s, 6 s, 12 s, ...), so a long
/// partition may need tens of seconds after it heals.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(60);

/// The configuration every node runs with: a block at least every 200 ms even without load,
/// so that progress (and its absence) is visible at once.
const EMPTY_BLOCK_INTERVAL: &str = "200ms";

/// Heights the others must commit while one validator is down: more than one round of
/// leaders, so at least one of them was the faulty one's turn (a view change).
const PAST_ITS_TURN: Height = VALIDATORS as Height + 1;

/// Transfers in flight at once (one per sender).
const SENDERS: usize = 4;

/// Validators per scenario network (f = 1).
const VALIDATORS: usize = 4;

/// One scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `kill -9` a random validator, three times, restarting it after a while.
    KillRestart,
    /// `kill -9` the leader of the next height, three times.
    KillLeader,
    /// SIGSTOP a random validator, then the leader; SIGCONT.
    Pause,
    /// Cut one validator off from every peer (a random one, then the leader); heal.
    CutOne,
    /// Split 4 validators 2/2: no quorum, so no block may commit; heal.
    Split,
    /// The network commits `late_blocks` blocks; then a validator loses its whole store and
    /// syncs them all from its peers.
    LateJoiner,
    /// Random faults of every kind from the seed until `soak` has passed.
    Soak,
}

impl Scenario {
    /// Every scenario but the soak, in the order `--scenario all` runs them.
    pub const BOUNDED: [Scenario; 6] = [
        Scenario::KillRestart,
        Scenario::KillLeader,
        Scenario::Pause,
        Scenario::CutOne,
        Scenario::Split,
        Scenario::LateJoiner,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::KillRestart => "kill-restart",
            Scenario::KillLeader => "kill-leader",
            Scenario::Pause => "pause",
            Scenario::CutOne => "cut-one",
            Scenario::Split => "split",
            Scenario::LateJoiner => "late-joiner",
            Scenario::Soak => "soak",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::BOUNDED.into_iter().chain([Scenario::Soak]).find(|scenario| scenario.name() == name)
    }

    /// Whether it cuts the network (so needs hosts of their own).
    pub fn partitions(self) -> bool {
        matches!(self, Scenario::CutOne | Scenario::Split)
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct FaultSpec {
    /// The `stele` binary the nodes run (and that audits them).
    pub stele: PathBuf,
    /// Where the scenario networks are written (one folder each, replaced on every run).
    pub dir: PathBuf,
    /// First port; scenario `k` uses `base_port + 12k ..` on 127.0.0.1 and the subnet derived
    /// from that port in namespaces.
    pub base_port: u16,
    /// Seeds every random choice (victims, durations, which node a transfer goes to).
    pub seed: u64,
    /// Scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// How long the soak runs.
    pub soak: Duration,
    /// Blocks the late joiner must sync.
    pub late_blocks: Height,
    /// Run the nodes on 127.0.0.1 even where namespaces are available (partition scenarios are
    /// then skipped).
    pub loopback: bool,
}

/// What one scenario did and found.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario.
    pub scenario: Scenario,
    /// `namespaces` or `loopback`.
    pub hosts: &'static str,
    /// Why it did not run, if it did not.
    pub skipped: Option<String>,
    /// Each fault injected, with when (seconds since the load started).
    pub faults: Vec<String>,
    /// Transfers acknowledged as committed (and then checked).
    pub acknowledged: usize,
    /// Submissions that failed or timed out while faults were on.
    pub failed_submissions: u64,
    /// Slowest recovery after a fault, in seconds.
    pub slowest_recovery_s: f64,
    /// For the late joiner: blocks synced and how fast.
    pub synced_blocks: Option<Height>,
    /// Blocks per second the late joiner synced at.
    pub sync_blocks_per_s: Option<f64>,
    /// What the checks found.
    pub checked: Checked,
    /// Wall time of the scenario, in seconds.
    pub seconds: f64,
}

impl ScenarioReport {
    fn skipped(scenario: Scenario, why: String) -> Self {
        ScenarioReport {
            scenario,
            hosts: "none",
            skipped: Some(why),
            faults: Vec::new(),
            acknowledged: 0,
            failed_submissions: 0,
            slowest_recovery_s: 0.0,
            synced_blocks: None,
            sync_blocks_per_s: None,
            checked: Checked::default(),
            seconds: 0.0,
        }
    }

    /// Whether it ran and found nothing wrong.
    pub fn passed(&self) -> bool {
        self.skipped.is_none() && self.checked.violations.is_empty()
    }
}

/// Every scenario's report.
#[derive(Clone, Debug, Serialize)]
pub struct FaultReport {
    /// The seed (rerun with `--seed` to repeat the same choices).
    pub seed: u64,
    /// One per scenario, in order.
    pub scenarios: Vec<ScenarioReport>,
}

impl FaultReport {
    /// Every violation, prefixed with its scenario.
    pub fn violations(&self) -> Vec<String> {
        self.scenarios
            .iter()
            .flat_map(|report| {
                report
                    .checked
                    .violations
                    .iter()
                    .map(move |violation| format!("{}: {violation}", report.scenario.name()))
            })
            .collect()
    }
}

/// Runs every scenario of `spec` in turn; `say` gets a line per event as it happens.
pub async fn run(spec: &FaultSpec, say: &mut (dyn FnMut(&str) + Send)) -> Result<FaultReport, Error> {
    let namespaces_unavailable = if spec.loopback { Some("--loopback".to_string()) } else { netns::unavailable() };
    let mut scenarios = Vec::new();
    for (offset, scenario) in spec.scenarios.iter().copied().enumerate() {
        let base_port = u16::try_from(usize::from(spec.base_port) + 12 * offset)
            .map_err(|_| Error::Ports { base_port: spec.base_port, validators: 12 * spec.scenarios.len() })?;
        if scenario.partitions()
            && let Some(why) = &namespaces_unavailable
        {
            say(&format!("{}: skipped (partitions need network namespaces: {why})", scenario.name()));
            scenarios.push(ScenarioReport::skipped(scenario, format!("partitions need network namespaces: {why}")));
            continue;
        }
        let report = run_scenario(spec, scenario, base_port, namespaces_unavailable.is_none(), say).await?;
        say(&format!(
            "{}: {} ({} faults, {} transfers acknowledged and checked, {} blocks compared, slowest recovery {:.1} s, {:.0} s)",
            scenario.name(),
            if report.passed() {
                "passed".to_string()
            } else {
                format!("{} VIOLATIONS", report.checked.violations.len())
            },
            report.faults.len(),
            report.checked.transactions_checked,
            report.checked.blocks_compared,
            report.slowest_recovery_s,
            report.seconds
        ));
        for violation in &report.checked.violations {
            say(&format!("  violation: {violation}"));
        }
        scenarios.push(report);
    }
    Ok(FaultReport { seed: spec.seed, scenarios })
}

/// A scenario in progress: the cluster, the load, the clock and what was done.
struct Run<'a> {
    cluster: Cluster,
    started: Instant,
    rng: fastrand::Rng,
    faults: Vec<String>,
    violations: Vec<String>,
    slowest_recovery: Duration,
    say: &'a mut (dyn FnMut(&str) + Send),
}

async fn run_scenario(
    spec: &FaultSpec,
    scenario: Scenario,
    base_port: u16,
    use_namespaces: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<ScenarioReport, Error> {
    let started = Instant::now();
    let dir = spec.dir.join(scenario.name());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    }
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    let chain_id =
        ChainId::new(format!("faults-{}", scenario.name())).map_err(|error| Error::Launch(error.to_string()))?;
    crate::generate(&dir, &TestnetSpec { chain_id, validators: VALIDATORS, base_port })?;
    let network = crate::load(&dir)?;
    let funder = load_key(&network.faucet_key_path)?;
    let hosts =
        if use_namespaces { Hosts::Namespaces(Namespaces::create(base_port, VALIDATORS)?) } else { Hosts::Loopback };
    let hosts_name = if use_namespaces { "namespaces" } else { "loopback" };
    let interval = if scenario == Scenario::LateJoiner { "1ms" } else { EMPTY_BLOCK_INTERVAL };
    let environment = [("STELE__CONSENSUS__EMPTY_BLOCK_INTERVAL".to_string(), interval.to_string())];
    let cluster = Cluster::new(&network, &spec.stele, hosts, &environment);
    say(&format!("{}: {} validators on {hosts_name}, networks in {}", scenario.name(), VALIDATORS, dir.display()));
    let mut run = Run {
        cluster,
        started,
        rng: fastrand::Rng::with_seed(spec.seed ^ base_port as u64),
        faults: Vec::new(),
        violations: Vec::new(),
        slowest_recovery: Duration::ZERO,
        say,
    };
    run.cluster.start_all()?;
    let first = check::wait_for_height(&mut run.cluster, 1, Duration::from_secs(90)).await;
    if first.iter().any(|height| !height.is_some_and(|height| height >= 1)) {
        return Err(Error::Launch(format!(
            "{}: the network did not commit a first block within 90 s (heights {first:?}); see {}/node*/node.log",
            scenario.name(),
            dir.display()
        )));
    }
    let urls: Vec<String> = (0..VALIDATORS).map(|index| run.cluster.rpc_url(index).to_string()).collect();
    let load = Load::start(&urls, &funder, SENDERS, spec.seed).await?;
    run.started = Instant::now();

    let mut synced = None;
    match scenario {
        Scenario::KillRestart => run.kill_rounds(false).await?,
        Scenario::KillLeader => run.kill_rounds(true).await?,
        Scenario::Pause => run.pause_rounds().await?,
        Scenario::CutOne => run.cut_rounds().await?,
        Scenario::Split => run.split().await?,
        Scenario::LateJoiner => synced = Some(run.late_joiner(spec.late_blocks).await?),
        Scenario::Soak => run.soak(spec.soak, use_namespaces).await?,
    }
    // A little load after everything healed, so the checks cover it too.
    let before = load.acknowledged();
    let deadline = Instant::now() + Duration::from_secs(20);
    while load.acknowledged() < before + SENDERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let outcome = load.stop().await;
    if let Some((name, status)) = run.cluster.crashed() {
        run.violations.push(format!("{name} exited on its own: {status}"));
    }
    let mut checked = check::chains(&mut run.cluster, &outcome.acknowledged).await?;
    check::stop_and_audit(&mut run.cluster, &spec.stele, &mut checked);
    checked.violations.splice(0..0, run.violations.drain(..));
    Ok(ScenarioReport {
        scenario,
        hosts: hosts_name,
        skipped: None,
        faults: run.faults,
        acknowledged: outcome.acknowledged.len(),
        failed_submissions: outcome.failed,
        slowest_recovery_s: run.slowest_recovery.as_secs_f64(),
        synced_blocks: synced.map(|(blocks, _)| blocks),
        sync_blocks_per_s: synced.map(|(blocks, seconds): (Height, f64)| blocks as f64 / seconds.max(0.001)),
        checked,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Run<'_> {
    fn note(&mut self, fault: String) {
        let line = format!("t={:.1}s {fault}", self.started.elapsed().as_secs_f64());
        (self.say)(&format!("  {line}"));
        self.faults.push(line);
    }

    /// The validator that leads the next height in the current view, by node index.
    async fn leader(&mut self) -> Result<usize, Error> {
        for index in self.cluster.live() {
            let client = self.cluster.client(index, Duration::from_secs(2))?;
            let (Ok(status), Ok(validators)) = (client.chain_status().await, client.chain_get_validators(None).await)
            else {
                continue;
            };
            let keys = validators.validators.iter().map(|validator| validator.public_key).collect();
            let Ok(set) = consensus::ValidatorSet::new(keys) else { continue };
            let leader = consensus::Replica::leader(&set, status.height + 1, status.view);
            let Some(name) = validators.validators.get(leader as usize).map(|validator| validator.name.clone()) else {
                continue;
            };
            if let Some(node) = (0..self.cluster.len()).find(|&node| self.cluster.name(node) == name.as_str()) {
                return Ok(node);
            }
        }
        Err(Error::Launch("no live node answers chain_status".into()))
    }

    /// A random validator, or the next leader.
    async fn victim(&mut self, leader: bool) -> Result<(usize, &'static str), Error> {
        if leader {
            Ok((self.leader().await?, " (the next leader)"))
        } else {
            Ok((self.rng.usize(..self.cluster.len()), ""))
        }
    }

    /// Waits until every node in `nodes` is above `height`; records the time it took, or a
    /// violation after [`RECOVERY_LIMIT`].
    async fn expect_progress(&mut self, nodes: &[usize], height: Height, what: &str) {
        let since = Instant::now();
        loop {
            let heights = check::heights(&mut self.cluster).await;
            if nodes.iter().all(|&node| heights[node].is_some_and(|reached| reached > height)) {
                self.slowest_recovery = self.slowest_recovery.max(since.elapsed());
                return;
            }
            if since.elapsed() > RECOVERY_LIMIT {
                self.violations.push(format!(
                    "no progress {what} within {} s: heights {heights:?}, needed above {height}",
                    RECOVERY_LIMIT.as_secs()
                ));
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn others(&self, node: usize) -> Vec<usize> {
        (0..self.cluster.len()).filter(|&other| other != node).collect()
    }

    async fn hold(&mut self, from: u64, to: u64) {
        tokio::time::sleep(Duration::from_millis(self.rng.u64(from..=to))).await;
    }

    async fn kill_rounds(&mut self, leader: bool) -> Result<(), Error> {
        for _ in 0..3 {
            self.kill_once(leader).await?;
        }
        Ok(())
    }

    async fn kill_once(&mut self, leader: bool) -> Result<(), Error> {
        let (victim, role) = self.victim(leader).await?;
        let height = check::max_height(&mut self.cluster).await;
        self.cluster.kill(victim);
        self.note(format!("kill -9 {}{role} at height {height}", self.cluster.name(victim)));
        let others = self.others(victim);
        self.expect_progress(&others, height + PAST_ITS_TURN, &format!("with {} killed", self.cluster.name(victim)))
            .await;
        self.hold(1_000, 3_000).await;
        self.cluster.start(victim)?;
        let height = check::max_height(&mut self.cluster).await;
        self.note(format!("restart {}", self.cluster.name(victim)));
        self.expect_progress(&[victim], height, &format!("by {} after its restart", self.cluster.name(victim))).await;
        Ok(())
    }

    async fn pause_rounds(&mut self) -> Result<(), Error> {
        for leader in [false, true] {
            self.pause_once(leader).await?;
        }
        Ok(())
    }

    async fn pause_once(&mut self, leader: bool) -> Result<(), Error> {
        let (victim, role) = self.victim(leader).await?;
        let height = check::max_height(&mut self.cluster).await;
        self.cluster.pause(victim);
        self.note(format!("SIGSTOP {}{role} at height {height}", self.cluster.name(victim)));
        let others = self.others(victim);
        self.expect_progress(&others, height + PAST_ITS_TURN, &format!("with {} paused", self.cluster.name(victim)))
            .await;
        self.hold(3_000, 6_000).await;
        self.cluster.resume(victim);
        let height = check::max_height(&mut self.cluster).await;
        self.note(format!("SIGCONT {}", self.cluster.name(victim)));
        self.expect_progress(&[victim], height, &format!("by {} after SIGCONT", self.cluster.name(victim))).await;
        Ok(())
    }

    fn namespaces(&self) -> Result<&Namespaces, Error> {
        match &self.cluster.hosts {
            Hosts::Namespaces(namespaces) => Ok(namespaces),
            Hosts::Loopback => Err(Error::Launch("partitions need network namespaces".into())),
        }
    }

    async fn cut_rounds(&mut self) -> Result<(), Error> {
        for leader in [false, true] {
            self.cut_once(leader).await?;
        }
        Ok(())
    }

    async fn cut_once(&mut self, leader: bool) -> Result<(), Error> {
        let (victim, role) = self.victim(leader).await?;
        let others = self.others(victim);
        let height = check::max_height(&mut self.cluster).await;
        self.namespaces()?.partition(std::slice::from_ref(&others))?;
        self.note(format!("cut {}{role} off from every peer at height {height}", self.cluster.name(victim)));
        self.expect_progress(&others, height + PAST_ITS_TURN, &format!("with {} cut off", self.cluster.name(victim)))
            .await;
        self.hold(4_000, 8_000).await;
        self.namespaces()?.heal()?;
        let height = check::max_height(&mut self.cluster).await;
        self.note("heal".into());
        self.expect_progress(&[victim], height, &format!("by {} after the heal", self.cluster.name(victim))).await;
        Ok(())
    }

    async fn split(&mut self) -> Result<(), Error> {
        self.namespaces()?.partition(&[vec![0, 1], vec![2, 3]])?;
        // Read once every filter is in place: installing them takes a while, and blocks commit
        // until the last one is.
        let before = check::max_height(&mut self.cluster).await;
        self.note(format!("split {{node0, node1}} / {{node2, node3}} at height {before}"));
        self.hold(8_000, 12_000).await;
        // A block whose votes were in flight when the cut came may still complete; after that
        // no side has 2f+1 = 3 validators, so nothing may commit.
        let during = check::max_height(&mut self.cluster).await;
        if during > before + 1 {
            self.violations.push(format!("blocks committed during a 2/2 split: height {before} -> {during}"));
        }
        self.namespaces()?.heal()?;
        self.note(format!("heal at height {during}"));
        let all: Vec<usize> = (0..self.cluster.len()).collect();
        self.expect_progress(&all, during, "after the 2/2 split healed").await;
        Ok(())
    }

    /// The network commits `blocks` blocks; then one validator loses its store (killed, its
    /// data folder deleted) and restarts from nothing. Returns the blocks it synced and the
    /// seconds it took.
    async fn late_joiner(&mut self, blocks: Height) -> Result<(Height, f64), Error> {
        let late = self.cluster.len() - 1;
        let deadline = Instant::now() + Duration::from_secs(120 + blocks / 5);
        let mut last_said = Instant::now();
        loop {
            let height = check::max_height(&mut self.cluster).await;
            if height >= blocks {
                break;
            }
            if Instant::now() > deadline {
                self.violations.push(format!("the network reached only height {height} of {blocks} in time"));
                break;
            }
            if last_said.elapsed() > Duration::from_secs(15) {
                (self.say)(&format!("  height {height} of {blocks}"));
                last_said = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.cluster.kill(late);
        let data = self.cluster.home(late).join("data");
        std::fs::remove_dir_all(&data).map_err(|source| Error::Io { path: data.clone(), source })?;
        let target = check::max_height(&mut self.cluster).await;
        self.cluster.start(late)?;
        let joined = Instant::now();
        self.note(format!("kill -9 {0}, delete its store, restart it at height {target}", self.cluster.name(late)));
        let limit = Duration::from_secs(60 + target / 20);
        loop {
            let heights = check::heights(&mut self.cluster).await;
            if heights[late].is_some_and(|height| height >= target) {
                break;
            }
            if joined.elapsed() > limit {
                self.violations.push(format!(
                    "{} synced only to {:?} of {target} in {} s",
                    self.cluster.name(late),
                    heights[late],
                    limit.as_secs()
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let seconds = joined.elapsed().as_secs_f64();
        self.note(format!("{} synced {target} blocks in {seconds:.1} s", self.cluster.name(late)));
        Ok((target, seconds))
    }

    async fn soak(&mut self, duration: Duration, partitions: bool) -> Result<(), Error> {
        let kinds: &[&str] = if partitions {
            &["kill", "kill-leader", "pause", "pause-leader", "cut", "cut-leader", "split"]
        } else {
            &["kill", "kill-leader", "pause", "pause-leader"]
        };
        while self.started.elapsed() < duration {
            let kind = kinds[self.rng.usize(..kinds.len())];
            match kind {
                "kill" => self.kill_once(false).await?,
                "kill-leader" => self.kill_once(true).await?,
                "pause" => self.pause_once(false).await?,
                "pause-leader" => self.pause_once(true).await?,
                "cut" => self.cut_once(false).await?,
                "cut-leader" => self.cut_once(true).await?,
                _ => self.split().await?,
            }
            if let Some((name, status)) = self.cluster.crashed() {
                self.violations.push(format!("{name} exited on its own: {status}"));
                break;
            }
        }
        Ok(())
    }
}
