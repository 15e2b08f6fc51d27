//! `cargo xtask bench bert`: BERT inference and train steps on the CPU backend
//! (crates/stilts-models/benches/bert.rs) against HF PyTorch eager fp32
//! (scripts/bench_bert_torch.py), interleaved ([`crate::bench_ab`]), with each side's peak GEMM
//! and a per-op breakdown of one inference batch. `--unfused` adds stilts with burn's own GELU,
//! softmax and LayerNorm (`STILTS_FUSED_KERNELS=0`) as a third side.

use std::path::PathBuf;
use std::process::Command;

use crate::bench_ab::Family;

/// BERT's measurements and shapes.
pub const BERT: Family = Family {
    name: "bert",
    title: "BERT",
    script: "scripts/bench_bert_torch.py",
    whats: &[("infer", "inference"), ("train", "train step (AdamW)")],
    // Measured iterations per child after one warm-up (inference, train step): the median is
    // taken over them, so one slow step (the second step still growing the heap, on both
    // sides) does not decide it.
    shapes: &[
        ("base", "BERT-base (12x768)", 5, 4),
        ("minilm", "MiniLM (6x384)", 10, 8),
    ],
    input: "seq 128, batch 8",
    gemm: true,
};

/// The Python of the PyTorch anchor: `$STILTS_TORCH_PYTHON`, else `python3`; `Err` with it
/// when torch and transformers do not import there (or it does not run).
pub(crate) fn torch_python() -> Result<PathBuf, PathBuf> {
    let candidate = std::env::var_os("STILTS_TORCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&candidate)
        .args(["-c", "import torch, transformers"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok { Ok(candidate) } else { Err(candidate) }
}
