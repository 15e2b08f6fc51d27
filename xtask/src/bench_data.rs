//! `cargo xtask bench data`: criterion's load + tokenize benchmark for SST-2 train, side by side
//! with the Python anchor (csv + HF `BertTokenizerFast`) measured in the same run.
//!
//! The anchor runs with `$STILTS_PYTHON`, else `python3` on `PATH`; `transformers` (and
//! `tokenizers`) must be importable there. When they are not, the anchor's columns show `-` and
//! the reason is printed under the table.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

const FUNCTIONS: [&str; 3] = ["load", "tokenize", "load_tokenize"];

pub fn run(root: &Path, rest: &[String]) -> Result<()> {
    for var in ["GLUE_DIR", "STILTS_MODELS_DIR"] {
        if std::env::var_os(var).is_none() {
            bail!("set {var} (see README.md) to run the data benchmark");
        }
    }
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "bench",
            "--package",
            "stilts-data",
            "--bench",
            "load_tokenize",
            "--",
        ])
        .args(rest)
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed with {status}");
    }
    let ours: Vec<f64> = FUNCTIONS
        .iter()
        .map(|f| criterion_rate(root, f))
        .collect::<Result<_>>()?;
    let python = python_anchor(root);
    println!();
    println!(
        "SST-2 train (67,349 sentences), examples/s, bert-base-uncased vocab, max_seq_len 128"
    );
    println!();
    println!("| stage | stilts | Python anchor | stilts / anchor |");
    println!("|---|---:|---:|---:|");
    for (f, ours) in FUNCTIONS.iter().zip(&ours) {
        let theirs = python
            .as_ref()
            .ok()
            .and_then(|v| v["examples_per_s"][*f].as_f64());
        match theirs {
            Some(t) => println!("| {f} | {ours:.0} | {t:.0} | {:.2}x |", ours / t),
            None => println!("| {f} | {ours:.0} | - | - |"),
        }
    }
    match python {
        Ok(v) => println!("\nanchor: {}", v["versions"]),
        Err(e) => println!("\nno Python anchor: {e:#}"),
    }
    Ok(())
}

/// Examples/s from criterion's mean estimate of `sst2_train/<function>`.
fn criterion_rate(root: &Path, function: &str) -> Result<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target
        .join("criterion/sst2_train")
        .join(function)
        .join("new");
    let read = |name: &str| -> Result<Value> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let mean_ns = read("estimates.json")?["mean"]["point_estimate"]
        .as_f64()
        .context("estimates.json has no mean.point_estimate")?;
    let elements = read("benchmark.json")?["throughput"]["Elements"]
        .as_f64()
        .context("benchmark.json has no throughput.Elements")?;
    Ok(elements / (mean_ns * 1e-9))
}

/// Runs `scripts/bench_data_python.py` with `$STILTS_PYTHON` (default `python3`).
fn python_anchor(root: &Path) -> Result<Value> {
    let python = std::env::var("STILTS_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(&python)
        .current_dir(root)
        .args(["scripts/bench_data_python.py", "--json"])
        .output()
        .with_context(|| format!("running {python}"))?;
    if !out.status.success() {
        bail!(
            "{python} scripts/bench_data_python.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    serde_json::from_slice(&out.stdout).context("parsing the anchor's JSON")
}
