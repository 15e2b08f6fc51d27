//! `cargo xtask bench gpt|elmo`: an encoder family's inference and fine-tuning steps on the CPU
//! backend (`crates/stilts-models/benches/<family>.rs`) against its PyTorch reference
//! (`scripts/bench_<family>_torch.py`), interleaved: each round runs every measurement once per
//! side, in the order A B in even rounds and B A in odd ones, one process per measurement, with
//! the 1-minute load average recorded before each. Medians over rounds; ratios are stilts /
//! PyTorch examples/s (above 1: stilts is faster).
//!
//! The PyTorch anchor runs with `$STILTS_TORCH_PYTHON`, else `python3`; without torch there,
//! stilts is measured alone and the tables say so.
//!
//! Arguments: `--shapes a,b` (default all of the family's), `--rounds N` (default 3),
//! `--iters-scale F`. Threads: `STILTS_BENCH_THREADS` (default 2). Tables land in
//! target/bench/<family>.md, the raw measurements in target/bench/<family>.json.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::bench_bert::torch_python;

/// One shape: (name, description, inference iterations, training iterations).
pub type Shape = (&'static str, &'static str, usize, usize);

/// What an encoder family's benchmark measures, and with what.
pub struct Family {
    /// The bench target (`crates/stilts-models/benches/<name>.rs`) and output file names.
    pub name: &'static str,
    /// The family in table titles.
    pub title: &'static str,
    /// The PyTorch anchor, relative to the checkout.
    pub script: &'static str,
    /// Measurements: (child name, description).
    pub whats: &'static [(&'static str, &'static str)],
    /// Shapes, the first the released model's.
    pub shapes: &'static [Shape],
    /// The input, for the table header ("seq 128, batch 8").
    pub input: &'static str,
}

struct Args {
    shapes: Vec<&'static Shape>,
    rounds: usize,
    iters_scale: f64,
}

fn parse_args(family: &Family, rest: &[String]) -> Result<Args> {
    let mut args = Args {
        shapes: family.shapes.iter().collect(),
        rounds: 3,
        iters_scale: 1.0,
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--shapes" => {
                let wanted: Vec<String> = value()?.split(',').map(str::to_owned).collect();
                args.shapes = family
                    .shapes
                    .iter()
                    .filter(|s| wanted.iter().any(|w| w == s.0))
                    .collect();
                if args.shapes.len() != wanted.len() {
                    let known: Vec<&str> = family.shapes.iter().map(|s| s.0).collect();
                    bail!("--shapes: known shapes are {}", known.join(", "));
                }
            }
            "--rounds" => args.rounds = value()?.parse().context("--rounds")?,
            "--iters-scale" => args.iters_scale = value()?.parse().context("--iters-scale")?,
            other => bail!("unknown argument `{other}` (--shapes, --rounds, --iters-scale)"),
        }
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(args)
}

/// Builds the benchmark and returns its executable (from cargo's JSON messages).
fn build_bench(root: &Path, name: &str) -> Result<PathBuf> {
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "bench",
            "--package",
            "stilts-models",
            "--bench",
            name,
            "--no-run",
            "--message-format=json",
        ])
        .output()
        .with_context(|| format!("building the {name} benchmark"))?;
    if !out.status.success() {
        bail!(
            "building the {name} benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo did not report the {name} benchmark's executable"))
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs one measurement process and parses the JSON line it prints.
fn measure(mut cmd: Command, label: &str) -> Result<Value> {
    let out = cmd.output().with_context(|| format!("running {label}"))?;
    if !out.status.success() {
        bail!("{label} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("{label} printed no JSON line"))?;
    serde_json::from_str(line).with_context(|| format!("{label}'s JSON"))
}

/// One measured sample of one side.
struct Sample {
    shape: &'static str,
    what: &'static str,
    side: &'static str,
    round: usize,
    load: Option<f64>,
    value: Value,
}

/// Runs `family`'s benchmark with the command-line arguments `rest`.
pub fn run(family: &Family, root: &Path, rest: &[String]) -> Result<()> {
    let args = parse_args(family, rest)?;
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let exe = build_bench(root, family.name)?;
    let threads = std::env::var("STILTS_BENCH_THREADS").unwrap_or_else(|_| "2".into());
    let python = match torch_python() {
        Ok(p) => Some(p),
        Err(p) => {
            eprintln!(
                "no PyTorch anchor: torch does not import in {} (set STILTS_TORCH_PYTHON; see \
                 {}); measuring stilts only",
                p.display(),
                family.script
            );
            None
        }
    };
    let mut samples = Vec::new();
    for round in 0..args.rounds {
        for &&(shape, _, infer_iters, train_iters) in &args.shapes {
            for &(what, _) in family.whats {
                let base = if what == "infer" {
                    infer_iters
                } else {
                    train_iters
                };
                let iters = ((base as f64 * args.iters_scale).round() as usize).max(1);
                let mut sides: Vec<(&str, Command)> = Vec::new();
                let mut ours = Command::new(&exe);
                ours.args(["--child", what, shape, &iters.to_string()])
                    .env("RAYON_NUM_THREADS", &threads);
                sides.push(("stilts", ours));
                if let Some(python) = &python {
                    let mut theirs = Command::new(python);
                    theirs
                        .current_dir(root)
                        .arg(family.script)
                        .args(["--child", what, "--shape", shape])
                        .args(["--iters", &iters.to_string(), "--threads", &threads]);
                    sides.push(("pytorch", theirs));
                }
                if round % 2 == 1 {
                    sides.reverse();
                }
                for (side, cmd) in sides {
                    let load = load_average();
                    let label = format!("{side} {what} {shape} (round {})", round + 1);
                    eprintln!(
                        "{label}: load {}",
                        load.map_or("?".into(), |l| format!("{l:.2}"))
                    );
                    let value = measure(cmd, &label)?;
                    samples.push(Sample {
                        shape,
                        what,
                        side,
                        round,
                        load,
                        value,
                    });
                }
            }
        }
    }
    let md = render(family, &args, &samples, &threads, python.is_some());
    let raw: Vec<Value> = samples
        .iter()
        .map(|s| {
            json!({"shape": s.shape, "what": s.what, "side": s.side, "round": s.round,
                   "load_1m": s.load, "result": s.value})
        })
        .collect();
    let (json_file, md_file) = (
        out_dir.join(format!("{}.json", family.name)),
        out_dir.join(format!("{}.md", family.name)),
    );
    stilts_io::fs::write_atomic(&json_file, serde_json::to_string_pretty(&raw)?.as_bytes())?;
    stilts_io::fs::write_atomic(&md_file, md.as_bytes())?;
    print!("{md}");
    println!("tables: {}", md_file.display());
    Ok(())
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied()
}

fn render(
    family: &Family,
    args: &Args,
    samples: &[Sample],
    threads: &str,
    anchored: bool,
) -> String {
    let pick = |shape: &str, what: &str, side: &str, key: &str| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| s.shape == shape && s.what == what && s.side == side)
            .filter_map(|s| s.value[key].as_f64())
            .collect()
    };
    let loads: Vec<f64> = samples.iter().filter_map(|s| s.load).collect();
    let (lo, hi) = loads.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &l| {
        (lo.min(l), hi.max(l))
    });
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {} on the CPU: stilts (burn-flex) vs PyTorch eager fp32\n",
        family.title
    );
    let _ = writeln!(
        md,
        "{} rounds, sides alternating (A B, then B A); {threads} threads; {}; \
         median examples/s over rounds. 1-minute load average before each measurement: \
         {lo:.2} to {hi:.2}.{}\n",
        args.rounds,
        family.input,
        if anchored {
            ""
        } else {
            " **No PyTorch anchor was available: stilts alone.**"
        }
    );
    let _ = writeln!(
        md,
        "| shape | measurement | stilts ex/s | PyTorch ex/s | stilts / PyTorch | stilts peak RSS MiB | PyTorch peak RSS MiB |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
    for &&(shape, label, _, _) in &args.shapes {
        for &(what, desc) in family.whats {
            let ours = median(pick(shape, what, "stilts", "examples_per_s"));
            let theirs = median(pick(shape, what, "pytorch", "examples_per_s"));
            let rss = |side| {
                pick(shape, what, side, "peak_rss_mib")
                    .into_iter()
                    .reduce(f64::max)
            };
            let f = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
            let ratio = match (ours, theirs) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                _ => "-".into(),
            };
            let _ = writeln!(
                md,
                "| {label} | {desc} | {} | {} | {ratio} | {} | {} |",
                f(ours, 2),
                f(theirs, 2),
                f(rss("stilts"), 0),
                f(rss("pytorch"), 0)
            );
        }
    }
    let _ = writeln!(md, "\n## Train step phases (median ms)\n");
    let _ = writeln!(md, "| shape | measurement | phase | stilts | PyTorch |");
    let _ = writeln!(md, "|---|---|---|---:|---:|");
    for &&(shape, label, _, _) in &args.shapes {
        for (what, desc) in family.whats.iter().filter(|w| w.0 != "infer") {
            let phases = |side: &str| -> BTreeMap<String, Vec<f64>> {
                let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for s in samples
                    .iter()
                    .filter(|s| s.shape == shape && s.what == *what && s.side == side)
                {
                    if let Some(obj) = s.value["phases_ms"].as_object() {
                        for (k, v) in obj {
                            m.entry(k.clone()).or_default().extend(v.as_f64());
                        }
                    }
                }
                m
            };
            let (ours, theirs) = (phases("stilts"), phases("pytorch"));
            for phase in ["forward + loss", "backward", "optimizer"] {
                let f = |m: &BTreeMap<String, Vec<f64>>| {
                    m.get(phase)
                        .cloned()
                        .and_then(median)
                        .map_or("-".into(), |v| format!("{v:.0}"))
                };
                let _ = writeln!(
                    md,
                    "| {label} | {desc} | {phase} | {} | {} |",
                    f(&ours),
                    f(&theirs)
                );
            }
        }
    }
    md
}
