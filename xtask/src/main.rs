//! Developer tasks: `cargo xtask bench`, `cargo xtask check-backends`, and experiment grids:
//! `cargo xtask reproduce <grid>`, `cargo xtask status <grid>`, `cargo xtask report <grid>`.

mod bench_ab;
mod bench_bert;
mod bench_data;
mod bench_elmo;
mod bench_gpt;
mod check_backends;
mod reproduce;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "stilts developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a benchmark suite beside its Python anchor, measured in the same run: `data` (anchor:
    /// `$STILTS_PYTHON`, else `python3`, with transformers), `bert`, `gpt` or `elmo` (anchor:
    /// `$STILTS_TORCH_PYTHON`, else `python3`, with torch and transformers; the two sides
    /// interleaved, other load measured). Without an anchor that imports, the suite measures
    /// stilts alone and says why.
    Bench {
        /// Which suite: `data` (load + tokenize throughput), `bert`, `gpt` or `elmo` (train step
        /// and inference).
        suite: String,
        /// Arguments of the suite: `data` passes them to criterion; the others take
        /// `--shapes a,b`, `--rounds N`, `--iters-scale F` and (bert) `--unfused`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Build and test stilts-models with each optional backend (wgpu, cuda, tch) in
    /// target/backends. Slow (a full burn build per feature); for developers, not CI.
    CheckBackends {
        /// Features to check (default: wgpu cuda tch).
        features: Vec<String>,
        /// Only `cargo check`, do not build and run the parity tests.
        #[arg(long)]
        check_only: bool,
    },
    /// Run an experiment grid (configs/grids/<grid>.toml or a path): plan, check every
    /// unfinished run with `stilts run --check` (an invalid one stops it before anything is
    /// submitted), execute (skipping finished runs, resuming interrupted ones, re-submitting
    /// lost ones), ingest results and render the report.
    Reproduce(reproduce::ReproduceArgs),
    /// Print a grid's runs and their state (finished, running, pending) without running anything.
    Status(reproduce::GridArgs),
    /// Ingest a grid's finished runs and render its tables and figures.
    Report(reproduce::GridArgs),
    /// A GLUE submission from a grid's best-on-dev run per task (exported, validated, zipped).
    Bundle(reproduce::BundleArgs),
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Bench { suite, rest } => bench(&suite, &rest),
        Cmd::CheckBackends {
            features,
            check_only,
        } => check_backends::run(&root(), &features, check_only),
        Cmd::Reproduce(args) => reproduce::reproduce(&root(), &args),
        Cmd::Status(args) => reproduce::status(&root(), &args),
        Cmd::Report(args) => reproduce::report(&root(), &args),
        Cmd::Bundle(args) => reproduce::bundle(&root(), &args),
    }
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn bench(suite: &str, rest: &[String]) -> Result<()> {
    match suite {
        "data" => bench_data::run(&root(), rest),
        "bert" => bench_ab::run(&bench_bert::BERT, &root(), rest),
        "gpt" => bench_ab::run(&bench_gpt::GPT, &root(), rest),
        "elmo" => bench_ab::run(&bench_elmo::ELMO, &root(), rest),
        other => bail!("unknown benchmark suite `{other}`; known: data, bert, gpt, elmo"),
    }
}
