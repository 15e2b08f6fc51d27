//! `cargo xtask bench gpt`: GPT inference and fine-tuning steps (with and without the auxiliary
//! language-model loss) on the CPU backend (crates/stilts-models/benches/gpt.rs) against HF
//! PyTorch eager fp32 (scripts/bench_gpt_torch.py), interleaved ([`crate::bench_ab`]).

use crate::bench_ab::Family;

/// GPT's measurements and shapes.
pub const GPT: Family = Family {
    name: "gpt",
    title: "GPT",
    script: "scripts/bench_gpt_torch.py",
    whats: &[
        ("infer", "inference"),
        ("train", "train step, task + 0.5 LM loss"),
        ("train-noaux", "train step, task loss only"),
    ],
    // Measured iterations per child after one warm-up (inference, train step), as BERT's: the
    // median of several steps, not of the first two while the heap still grows.
    shapes: &[
        ("gpt", "GPT (12x768, vocab 40481)", 5, 4),
        ("small", "small (4x256, vocab 40481)", 10, 8),
    ],
    input: "seq 128, batch 8",
    gemm: false,
};
