//! `cargo xtask bench elmo`: ELMo inference and fine-tuning steps in the paper's setup (the
//! whole biLM trained, scalar mix, projection and max-pooling, a linear classifier) on the CPU
//! backend (crates/stilts-models/benches/elmo.rs) against AllenNLP 2.10.1's modules on PyTorch
//! eager fp32 (scripts/bench_elmo_torch.py), interleaved ([`crate::bench_ab`]).

use crate::bench_ab::Family;

/// ELMo's measurements and shapes.
pub const ELMO: Family = Family {
    name: "elmo",
    title: "ELMo",
    script: "scripts/bench_elmo_torch.py",
    whats: &[("infer", "inference"), ("train", "train step (Adam)")],
    shapes: &[
        (
            "small",
            "small (2x1024 cells, 128 proj, 2048 filters)",
            3,
            2,
        ),
        ("cpu", "CPU grid (2x256 cells, 64 proj, 256 filters)", 5, 3),
    ],
    input: "32 sentences of 20 words, 50 characters a word",
    gemm: false,
};
