//! `cargo xtask bench data`: criterion's load + tokenize benchmark for SST-2 train against the
//! Python anchor (csv + HF `BertTokenizerFast`), interleaved: each of `--rounds N` (default 3)
//! rounds runs both sides, stilts first in even rounds and the anchor first in odd ones, and
//! records the cores other work kept busy during each side (the table says when that
//! exceeded [`QUIET_CORES`]). Medians over rounds; the ratio is the median of the per-round
//! ratios with their range. Other arguments go to criterion.
//!
//! The anchor runs with `$STILTS_PYTHON`, else `python3` on `PATH`; `transformers` (and
//! `tokenizers`) must be importable there. When they are not, the anchor's columns show `-` and
//! the reason is printed under the table.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::bench_ab::{OtherLoad, QUIET_CORES, cpu_description, median};

const FUNCTIONS: [&str; 3] = ["load", "tokenize", "load_tokenize"];

/// One round's rates per stage (examples/s), each side's, and the other load during each.
struct Round {
    ours: Vec<f64>,
    theirs: Option<Vec<f64>>,
    other_cores: Vec<Option<f64>>,
}

pub fn run(root: &Path, rest: &[String]) -> Result<()> {
    for var in ["GLUE_DIR", "STILTS_MODELS_DIR"] {
        if std::env::var_os(var).is_none() {
            bail!("set {var} (see README.md) to run the data benchmark");
        }
    }
    let (rounds, criterion_args) = rounds_arg(rest)?;
    let mut done = Vec::new();
    let mut versions = None;
    let mut anchor_error = None;
    for round in 0..rounds {
        let mut ours = Vec::new();
        let mut theirs = None;
        let mut other_cores = Vec::new();
        for stilts_side in [round % 2 == 0, round % 2 == 1] {
            let load = OtherLoad::start();
            if stilts_side {
                ours = criterion(root, &criterion_args)?;
            } else {
                match python_anchor(root) {
                    Ok(v) => {
                        theirs = FUNCTIONS
                            .iter()
                            .map(|f| v["examples_per_s"][*f].as_f64())
                            .collect::<Option<Vec<f64>>>();
                        versions = Some(v["versions"].clone());
                    }
                    Err(e) => anchor_error = Some(format!("{e:#}")),
                }
            }
            other_cores.push(load.cores());
        }
        done.push(Round {
            ours,
            theirs,
            other_cores,
        });
    }
    println!(
        "{}",
        render(&done, versions.as_ref(), anchor_error.as_deref())
    );
    Ok(())
}

/// `--rounds N` out of the arguments; the rest are criterion's.
fn rounds_arg(rest: &[String]) -> Result<(usize, Vec<String>)> {
    let mut rounds = 3;
    let mut others = Vec::new();
    let mut args = rest.iter();
    while let Some(a) = args.next() {
        if a == "--rounds" {
            let n = args.next().context("--rounds needs a number")?;
            rounds = n
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .with_context(|| format!("--rounds: `{n}` is not a positive number"))?;
        } else {
            others.push(a.clone());
        }
    }
    Ok((rounds, others))
}

/// Runs criterion's benchmark once and reads each stage's rate.
fn criterion(root: &Path, args: &[String]) -> Result<Vec<f64>> {
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
        .args(args)
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed with {status}");
    }
    FUNCTIONS.iter().map(|f| criterion_rate(root, f)).collect()
}

fn render(rounds: &[Round], versions: Option<&Value>, anchor_error: Option<&str>) -> String {
    let worst = rounds
        .iter()
        .flat_map(|r| r.other_cores.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let mut s = format!(
        "\nSST-2 train (67,349 sentences), examples/s, bert-base-uncased vocab, max_seq_len 128\n\n\
         CPU: {}. {} rounds, sides alternating (stilts first, then the anchor first); medians \
         over rounds. Other work during a side: at most {worst:.2} cores{}.\n\n",
        cpu_description(),
        rounds.len(),
        if worst > QUIET_CORES {
            "; NOT QUIET: these figures are not a result"
        } else {
            ""
        }
    );
    s.push_str(
        "| stage | stilts | Python anchor | stilts / anchor (range) |\n|---|---:|---:|---:|\n",
    );
    for (i, f) in FUNCTIONS.iter().enumerate() {
        let ours = median(rounds.iter().map(|r| r.ours[i]).collect());
        let theirs = median(
            rounds
                .iter()
                .filter_map(|r| Some(r.theirs.as_ref()?[i]))
                .collect(),
        );
        let ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|r| Some(r.ours[i] / r.theirs.as_ref()?[i]))
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let ratio =
            median(ratios.clone()).map_or("-".to_owned(), |m| format!("{m:.2}x ({lo:.2}-{hi:.2})"));
        s.push_str(&format!(
            "| {f} | {} | {} | {ratio} |\n",
            fmt(ours),
            fmt(theirs)
        ));
    }
    match (versions, anchor_error) {
        (Some(v), _) => s.push_str(&format!("\nanchor: {v}\n")),
        (None, Some(e)) => s.push_str(&format!("\nno Python anchor: {e}\n")),
        (None, None) => {}
    }
    s
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
