//! Developer tasks: `cargo xtask bench`, later `cargo xtask reproduce`.

mod bench_data;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "stilts developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a criterion benchmark suite (e.g. `data`) and print where its report lands.
    Bench {
        /// Which suite: `data` (load + tokenize throughput).
        suite: String,
        /// Extra arguments passed to criterion after `--`.
        #[arg(trailing_var_arg = true)]
        rest: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Bench { suite, rest } => bench(&suite, &rest),
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
    if suite == "data" {
        return bench_data::run(&root(), rest);
    }
    let (package, bench) = match suite {
        "data" => ("stilts-data", "load_tokenize"),
        other => bail!("unknown benchmark suite `{other}`; known: data"),
    };
    let status = Command::new(env!("CARGO"))
        .args(["bench", "--package", package, "--bench", bench, "--"])
        .args(rest)
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed with {status}");
    }
    Ok(())
}
