//! The seeds the test command runs, a replay of one seed, and a soak of as many as asked.
//!
//! A failing seed prints the command that replays it:
//! `STELE_SIM_MIX=<mix> STELE_SIM_SEED=<seed> cargo test --workspace --lib sim::tests::replay -- --nocapture`.
//! The soak runs `STELE_SIM_SEEDS` seeds of every mix (default 1,000):
//! `STELE_SIM_SEEDS=100000 cargo test --release -p node --lib sim::tests::soak -- --ignored --nocapture`.

use std::time::Instant;

use super::{Outcome, Scenario, World};

/// Every fault mix, by name.
const MIXES: [&str; 7] = ["calm", "lossy", "partitions", "crashes", "skew", "mixed", "byzantine"];
/// Seeds of each mix in the test command: 7 mixes × 30 = 210 seeds.
const SEEDS_PER_MIX: u64 = 30;

fn run_or_report(scenario: Scenario) -> Outcome {
    let (mix, seed) = (scenario.name, scenario.seed);
    let outcome = World::new(scenario).run();
    if let Some(violation) = &outcome.violation {
        panic!(
            "mix {mix} seed {seed}: {violation}\nreplay: STELE_SIM_MIX={mix} STELE_SIM_SEED={seed} cargo test \
             --workspace --lib sim::tests::replay -- --nocapture"
        );
    }
    outcome
}

/// Runs `seeds` seeds of every mix, from `first`; prints seeds per second.
fn run_mixes(first: u64, seeds: u64) {
    let started = Instant::now();
    let mut runs = 0;
    let mut heights = 0;
    let mut transfers = 0;
    let mut virtual_ms = 0;
    for mix in MIXES {
        for seed in first..first + seeds {
            let outcome = run_or_report(Scenario::of_mix(mix, seed));
            assert!(outcome.height > 0, "mix {mix} seed {seed}: no block committed");
            runs += 1;
            heights += outcome.height;
            transfers += outcome.acknowledged;
            virtual_ms += outcome.virtual_ms;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{runs} seeds in {elapsed:.1} s ({:.1} seeds/s, {:.0} virtual s): {heights} blocks, {transfers} transfers \
         committed on every node",
        runs as f64 / elapsed,
        virtual_ms as f64 / 1_000.0
    );
}

#[test]
fn every_mix_keeps_one_chain_and_commits_every_acknowledged_transfer() {
    run_mixes(0, SEEDS_PER_MIX);
}

#[test]
fn a_seed_replays_with_the_same_trace() {
    for mix in ["mixed", "crashes", "byzantine"] {
        let first = run_or_report(Scenario::of_mix(mix, 7));
        let second = run_or_report(Scenario::of_mix(mix, 7));
        assert_eq!(first.trace, second.trace, "mix {mix}: two runs of one seed differ");
        assert_eq!(first.events, second.events);
        let other = run_or_report(Scenario::of_mix(mix, 8));
        assert_ne!(first.trace, other.trace, "mix {mix}: two seeds gave one trace");
    }
}

#[test]
fn replay() {
    let (Ok(mix), Ok(seed)) = (std::env::var("STELE_SIM_MIX"), std::env::var("STELE_SIM_SEED")) else {
        return;
    };
    let mix = MIXES.into_iter().find(|known| *known == mix).unwrap_or_else(|| panic!("unknown mix {mix}"));
    let seed = seed.parse().expect("STELE_SIM_SEED is a number");
    let outcome = run_or_report(Scenario::of_mix(mix, seed));
    println!("{outcome:?}");
}

#[test]
#[ignore = "a soak: run on demand with STELE_SIM_SEEDS"]
fn soak() {
    let seeds = std::env::var("STELE_SIM_SEEDS").ok().and_then(|seeds| seeds.parse().ok()).unwrap_or(1_000);
    run_mixes(1_000_000, seeds);
}
