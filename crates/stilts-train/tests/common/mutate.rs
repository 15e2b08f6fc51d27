//! Mutations of a real file (cuts, flipped bytes, inserted bytes) or arbitrary bytes, and a
//! checker that feeds them to a parser: `Ok`, or an error naming the file, never a panic. Shared
//! by `crates/stilts-train/tests/parsers.rs` and `xtask/tests/grid_props.rs` (`#[path]`).

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Arbitrary bytes, or `seed` cut, with bytes flipped, or with bytes inserted.
pub fn mutated(seed: Vec<u8>) -> BoxedStrategy<Vec<u8>> {
    let n = seed.len();
    let (cut, flip, insert) = (seed.clone(), seed.clone(), seed);
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..256),
        2 => (0..=n).prop_map(move |k| cut[..k].to_vec()),
        3 => proptest::collection::vec((0..n.max(1), 1..=255u8), 1..6).prop_map(move |flips| {
            let mut v = flip.clone();
            for (i, x) in flips {
                if let Some(b) = v.get_mut(i) {
                    *b ^= x;
                }
            }
            v
        }),
        2 => (0..=n, proptest::collection::vec(any::<u8>(), 1..16)).prop_map(move |(at, bytes)| {
            let mut v = insert.clone();
            v.splice(at..at, bytes);
            v
        }),
    ]
    .boxed()
}

/// The error and its causes, one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// Runs `cases` mutations of `seed`, written to `file`, through `parse`; an error must name
/// the file (or, for a model directory, the directory).
pub fn check<T, E: std::error::Error>(
    cases: u32,
    seed: Vec<u8>,
    file: &Path,
    parse: impl Fn(&Path) -> Result<T, E>,
) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    // A fixed seed keeps CI reproducible; STILTS_PROPTEST_SEED=<n> explores other inputs.
    let rng_seed: u64 = std::env::var("STILTS_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5717_7500);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&rng_seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let names = [
        file.display().to_string(),
        file.parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    ];
    runner
        .run(&mutated(seed), |bytes| {
            std::fs::write(file, &bytes).unwrap();
            if let Err(e) = parse(file) {
                let text = chain(&e);
                prop_assert!(
                    names.iter().any(|n| text.contains(n.as_str())),
                    "the error does not name {}: {text}",
                    file.display()
                );
            }
            Ok(())
        })
        .unwrap();
}
