//! `cargo xtask check-backends [wgpu cuda tch] [--check-only]`: builds stilts-models with each
//! optional burn backend and runs `tests/backend_parity.rs` (the tiny BERT against Hugging
//! Face's fixture on that backend), in `target/backends` so the main target dir keeps its
//! default-feature build. Each feature is a full burn rebuild (~10-30 min on two cores). CI runs
//! `check-backends wgpu tch --check-only` (~12 min on two cores from a cold `target/backends`);
//! `cuda` cannot build without the internet (README, "Backends").
//!
//! Needs: `wgpu` a Vulkan/Metal/DX12 driver to run (none to check); `cuda` the CUDA toolkit and
//! a GPU; `tch` libtorch through `LIBTORCH=/path/to/libtorch` (`scripts/fetch_libtorch.sh` puts
//! the headers of the PyPI wheel tch 0.22 expects there, enough to check; to run, the torch
//! directory of a venv with that wheel installed, README "Backends") or
//! `LIBTORCH_USE_PYTORCH=1` with that torch in the active Python.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

const FEATURES: [&str; 3] = ["wgpu", "cuda", "tch"];

pub fn run(root: &Path, features: &[String], check_only: bool) -> Result<()> {
    let features: Vec<String> = if features.is_empty() {
        FEATURES.iter().map(|f| f.to_string()).collect()
    } else {
        features.to_vec()
    };
    if let Some(bad) = features.iter().find(|f| !FEATURES.contains(&f.as_str())) {
        bail!(
            "unknown backend feature `{bad}`; known: {}",
            FEATURES.join(", ")
        );
    }
    if features.iter().any(|f| f == "tch")
        && std::env::var_os("LIBTORCH").is_none()
        && std::env::var_os("LIBTORCH_USE_PYTORCH").is_none()
    {
        eprintln!(
            "warning: neither LIBTORCH nor LIBTORCH_USE_PYTORCH is set: the tch build will fail (libtorch is never downloaded; `LIBTORCH=$(scripts/fetch_libtorch.sh)` fetches its headers from PyPI)"
        );
    }
    let target = root.join("target/backends");
    let mut failures = Vec::new();
    for feature in &features {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(root);
        if check_only {
            cmd.args(["check", "-p", "stilts-models", "--all-targets"]);
        } else {
            cmd.args(["test", "-p", "stilts-models", "--test", "backend_parity"]);
        }
        cmd.args(["--locked", "--features", feature])
            .arg("--target-dir")
            .arg(&target);
        if !check_only {
            cmd.args(["--", "--nocapture"]);
        }
        eprintln!("== {feature}: {cmd:?}");
        let status = cmd
            .status()
            .with_context(|| format!("running cargo for {feature}"))?;
        if status.success() {
            eprintln!("== {feature}: ok");
        } else {
            eprintln!("== {feature}: FAILED ({status})");
            failures.push(feature.clone());
        }
    }
    if !failures.is_empty() {
        bail!("backends failed: {}", failures.join(", "));
    }
    Ok(())
}
