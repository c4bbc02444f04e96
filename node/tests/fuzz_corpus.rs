//! The CI half of fuzzing (fuzz/README.md): the committed corpus (fuzz/corpus/<target>/) replays
//! through the fuzz targets' own code, then a bounded run feeds each target a few thousand
//! inputs mutated from that corpus with a fixed seed. Both must end without a panic. Longer runs
//! on demand: `STELE_FUZZ_ITERATIONS=200000 STELE_FUZZ_SEED=7 cargo test --workspace --locked
//! --test fuzz_corpus`, or coverage-guided with `cargo +nightly fuzz run <target>` in fuzz/.

// Shared with the libFuzzer binaries, which use other parts of it.
#[path = "../../fuzz/targets/mod.rs"]
#[allow(dead_code)]
mod targets;

use std::{
    collections::BTreeMap,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
};

use targets::{Depth, TARGETS, Target};

/// Mutated inputs per target in the default run: a few seconds for all targets together.
const ITERATIONS: u64 = 3_000;
/// The default seed, so a CI failure reproduces exactly.
const SEED: u64 = 0x5_7e1e;
/// Largest mutated input, in bytes.
const INPUT_MAX: usize = 16 * 1024;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
            (path.file_name().expect("a file name").to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
        Err(_) => default,
    }
}

/// Runs one input, turning a panic into a failure that names the target and the input.
fn run_one(name: &str, target: Target, input: &[u8], origin: &str) -> Depth {
    match catch_unwind(AssertUnwindSafe(|| target(input))) {
        Ok(depth) => depth,
        Err(_) => panic!(
            "fuzz target {name} panicked on {origin}; input ({} bytes): {}\nsave it as fuzz/corpus/{name}/<name> \
             and reproduce with `cargo +nightly fuzz run {name} <file>` in fuzz/",
            input.len(),
            targets::hex(input)
        ),
    }
}

#[test]
fn the_committed_corpus_replays_without_a_panic() {
    for (name, target) in TARGETS {
        let files = corpus(name);
        assert!(files.len() >= 5, "fuzz/corpus/{name} has {} inputs; regenerate it (fuzz/README.md)", files.len());
        let mut depths: BTreeMap<Depth, usize> = BTreeMap::new();
        for (file, input) in &files {
            *depths.entry(run_one(name, *target, input, &format!("corpus file {file}"))).or_default() += 1;
        }
        println!("{name}: {} corpus inputs, {depths:?}", files.len());
        // A corpus that only exercises the decoders would let the validation behind them rot.
        // (Whether inputs still pass every check depends on the fixture chain, which changes with
        // the chain format; the freshly generated seeds are held to that instead.)
        assert!(
            depths.range(Depth::Rejected..).next().is_some(),
            "no input of fuzz/corpus/{name} decodes; regenerate the seeds (fuzz/README.md)"
        );
    }
}

/// One libFuzzer-like mutation of a corpus input (or, now and then, of random bytes).
fn mutate(rng: &mut fastrand::Rng, corpus: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut input = if rng.u8(..) < 8 {
        let mut bytes = vec![0; rng.usize(..64)];
        rng.fill(&mut bytes);
        bytes
    } else {
        corpus[rng.usize(..corpus.len())].1.clone()
    };
    for _ in 0..rng.usize(1..=4) {
        let len = input.len();
        match rng.u8(..9) {
            0 if len > 0 => {
                let at = rng.usize(..len);
                input[at] ^= 1 << rng.u8(..8);
            }
            1 if len > 0 => {
                let at = rng.usize(..len);
                input[at] = rng.u8(..);
            }
            2 if len > 0 => {
                let at = rng.usize(..len);
                input[at] = [0, 1, 0x7f, 0x80, 0xff][rng.usize(..5)];
            }
            3 => {
                let at = rng.usize(..=len);
                let byte = rng.u8(..);
                input.splice(at..at, std::iter::repeat_n(byte, rng.usize(1..=8)));
            }
            4 if len > 0 => {
                let start = rng.usize(..len);
                let end = rng.usize(start..=len.min(start + 64));
                input.drain(start..end);
            }
            5 if len > 0 => input.truncate(rng.usize(..len)),
            6 if len >= 4 => {
                // A borsh length or integer field set to an extreme.
                let at = rng.usize(..=len - 4);
                let value: u32 = [0, 1, u32::MAX, 0x8000_0000, rng.u32(..)][rng.usize(..5)];
                input[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            7 if len > 0 => {
                // Splice in a piece of another corpus input.
                let other = &corpus[rng.usize(..corpus.len())].1;
                if !other.is_empty() {
                    let start = rng.usize(..other.len());
                    let end = rng.usize(start..=other.len().min(start + 256));
                    let at = rng.usize(..=len);
                    input.splice(at..at, other[start..end].iter().copied());
                }
            }
            8 if len > 1 => {
                // Copy a piece of the input over another place in it.
                let start = rng.usize(..len);
                let end = rng.usize(start..=len.min(start + 64));
                let piece = input[start..end].to_vec();
                let at = rng.usize(..=len - piece.len());
                input[at..at + piece.len()].copy_from_slice(&piece);
            }
            _ => {}
        }
    }
    input.truncate(INPUT_MAX);
    input
}

#[test]
fn a_bounded_random_run_from_the_corpus_finds_no_panic() {
    let iterations = env_u64("STELE_FUZZ_ITERATIONS", ITERATIONS);
    let seed = env_u64("STELE_FUZZ_SEED", SEED);
    for (index, (name, target)) in TARGETS.iter().enumerate() {
        let corpus = corpus(name);
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty");
        let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(index as u64));
        let mut depths: BTreeMap<Depth, u64> = BTreeMap::new();
        for iteration in 0..iterations {
            let input = mutate(&mut rng, &corpus);
            let origin = format!("iteration {iteration} of seed {seed} (STELE_FUZZ_SEED={seed})");
            *depths.entry(run_one(name, *target, &input, &origin)).or_default() += 1;
        }
        println!("{name}: {iterations} mutated inputs from seed {seed}: {depths:?}");
        // Mutations must get past the decoders often enough to test the checks behind them.
        let decoded = depths.range(Depth::Rejected..).map(|(_, count)| count).sum::<u64>();
        assert!(decoded * 50 >= iterations, "{name}: only {decoded} of {iterations} mutated inputs decode");
    }
}

#[test]
fn every_seed_reaches_the_depth_it_was_made_for() {
    // The generator's inputs are valid by construction; each must at least decode, and the
    // target must accept some of them (the replay test checks the committed files the same way).
    let mut accepted: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, input) in targets::seeds::all() {
        let target = TARGETS.iter().find(|(target, _)| *target == name).expect("a seed for a known target").1;
        let depth = run_one(name, target, &input, "a generated seed");
        assert!(depth >= Depth::Rejected, "{name}: a generated seed does not decode: {}", targets::hex(&input));
        *accepted.entry(name).or_default() += usize::from(depth == Depth::Accepted);
    }
    for (name, _) in TARGETS {
        assert!(accepted.get(name).copied().unwrap_or(0) > 0, "{name}: no generated seed is accepted");
    }
}

/// Inputs of known, not yet fixed bugs (fuzz/regressions/<target>/, see fuzz/README.md): they
/// panic today, so they are not in the replayed corpus. Once the bug is fixed this test passes;
/// then move the files into fuzz/corpus/<target>/.
#[test]
#[ignore = "known bugs: fails until they are fixed"]
fn known_bug_inputs_no_longer_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for (name, target) in TARGETS {
        let Ok(entries) = std::fs::read_dir(dir.join(name)) else { continue };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let input = std::fs::read(&path).expect("read a regression input");
            run_one(name, *target, &input, &format!("regression input {}", path.display()));
        }
    }
}

/// Writes the generated seeds to fuzz/corpus/<target>/. Run on demand: `cargo test --workspace
/// --locked --test fuzz_corpus -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus; run on demand"]
fn write_seed_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let written = targets::seeds::write(&dir).expect("write the seeds");
    println!("wrote {written} seeds under {}", dir.display());
}
