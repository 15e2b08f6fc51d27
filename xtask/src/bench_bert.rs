//! `cargo xtask bench bert`: BERT train-step and inference throughput, peak memory and a per-op
//! breakdown on the CPU backend (crates/stilts-models/benches/bert.rs), side by side with HF
//! PyTorch eager fp32 (scripts/bench_bert_torch.py) measured in the same invocation.
//!
//! The PyTorch anchor runs with `$STILTS_TORCH_PYTHON`, else `python3` on `PATH`; `torch` and
//! `transformers` must be importable there. When they are not (or that Python is missing), the
//! benchmark says so and measures stilts alone: the PyTorch columns of the tables stay empty.
//!
//! Arguments after `bert` go to both sides: `--shapes base,minilm`, `--iters-scale 0.5`.
//! Threads: `STILTS_BENCH_THREADS` (default 2). Tables land in target/bench/bert.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

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

pub fn run(root: &Path, rest: &[String]) -> Result<()> {
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    // Build first, so compilation does not compete with the PyTorch measurements.
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "bench",
            "--package",
            "stilts-models",
            "--bench",
            "bert",
            "--no-run",
        ])
        .status()
        .context("building the bert benchmark")?;
    if !status.success() {
        bail!("building the bert benchmark failed with {status}");
    }

    let torch_json = out_dir.join("bert-torch.json");
    let _ = std::fs::remove_file(&torch_json);
    match torch_python() {
        Ok(python) => {
            eprintln!("PyTorch anchor: {}", python.display());
            let status = Command::new(&python)
                .current_dir(root)
                .arg("scripts/bench_bert_torch.py")
                .arg("--out")
                .arg(&torch_json)
                .args(rest)
                .status()
                .context("running scripts/bench_bert_torch.py")?;
            if !status.success() {
                eprintln!("the PyTorch anchor failed ({status}); continuing without it");
            }
        }
        Err(python) => eprintln!(
            "no PyTorch anchor: torch and transformers do not import in {} (set \
             STILTS_TORCH_PYTHON to a Python that has them; see scripts/bench_bert_torch.py); \
             measuring stilts only",
            python.display()
        ),
    }

    let md = out_dir.join("bert.md");
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "bench",
            "--package",
            "stilts-models",
            "--bench",
            "bert",
            "--",
        ])
        .args(rest)
        .env("STILTS_BENCH_TORCH_JSON", &torch_json)
        .env("STILTS_BENCH_OUT", &md)
        .status()
        .context("running the bert benchmark")?;
    if !status.success() {
        bail!("the bert benchmark failed with {status}");
    }
    println!("tables: {}", md.display());
    Ok(())
}
