//! `cargo xtask bench bert|gpt|elmo`: an encoder family's inference and fine-tuning steps on the
//! CPU backend (`crates/stilts-models/benches/<family>.rs`) against its PyTorch reference
//! (`scripts/bench_<family>_torch.py`), interleaved: each round runs every measurement once per
//! side, in the order A B in even rounds and B A in odd ones, one process per measurement, the
//! same thread count pinned on both. Medians over rounds; ratios are stilts / PyTorch
//! examples/s (above 1: stilts is faster), with the spread of the per-round ratios.
//!
//! Other work on the machine skews a ratio, so each measurement records the CPU time the rest
//! of the machine used while it ran (`/proc/stat`'s busy time less the child's own, from
//! `getrusage`), in cores; the table says when that exceeded [`QUIET_CORES`]. It also records
//! the CPU model and its SIMD flags, and (for BERT) each side's peak GEMM in the same run.
//!
//! The PyTorch anchor runs with `$STILTS_TORCH_PYTHON`, else `python3`; without torch there,
//! stilts is measured alone and the tables say so.
//!
//! Arguments: `--shapes a,b` (default all of the family's), `--rounds N` (default 3),
//! `--iters-scale F`, `--unfused` (adds stilts with `STILTS_FUSED_KERNELS=0` as a side). Threads: `STILTS_BENCH_THREADS` (default 2). Tables land in
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
    /// Whether both sides have a `gemm` child (peak f32 GEMM), measured once per round.
    pub gemm: bool,
}

/// Other work above this many cores during a measurement marks it as not quiet.
pub const QUIET_CORES: f64 = 0.1;

struct Args {
    shapes: Vec<&'static Shape>,
    rounds: usize,
    iters_scale: f64,
    unfused: bool,
}

fn parse_args(family: &Family, rest: &[String]) -> Result<Args> {
    let mut args = Args {
        shapes: family.shapes.iter().collect(),
        rounds: 3,
        iters_scale: 1.0,
        unfused: false,
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
            "--unfused" => args.unfused = true,
            other => {
                bail!("unknown argument `{other}` (--shapes, --rounds, --iters-scale, --unfused)")
            }
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

/// Busy CPU seconds of the whole machine so far (`/proc/stat`: user, nice, system, irq,
/// softirq, steal).
fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| busy / ticks as f64)
}

/// CPU seconds (user + system) of this process's waited-for children so far.
fn children_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The CPU model and the SIMD extensions the kernels care about (`/proc/cpuinfo`).
pub fn cpu_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    let flags = field("flags").unwrap_or_default();
    let simd: Vec<&str> = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{} ({cores} logical cores; {})",
        field("model name").unwrap_or_else(|| "unknown CPU".into()),
        if simd.is_empty() {
            "no AVX2".to_owned()
        } else {
            simd.join(", ")
        }
    )
}

/// The CPU time the rest of the machine uses while this process waits for its children: the
/// machine's busy time (`/proc/stat`) less the waited-for children's (`getrusage`).
pub struct OtherLoad {
    busy0: Option<f64>,
    child0: f64,
    t0: std::time::Instant,
}

impl OtherLoad {
    pub fn start() -> OtherLoad {
        OtherLoad {
            busy0: machine_busy_s(),
            child0: children_cpu_s(),
            t0: std::time::Instant::now(),
        }
    }

    /// Cores other processes kept busy since [`OtherLoad::start`] (children waited for by now
    /// excluded); `None` without `/proc/stat`.
    pub fn cores(&self) -> Option<f64> {
        let wall = self.t0.elapsed().as_secs_f64();
        match (self.busy0, machine_busy_s()) {
            (Some(a), Some(b)) if wall > 0.0 => {
                Some(((b - a) - (children_cpu_s() - self.child0)).max(0.0) / wall)
            }
            _ => None,
        }
    }
}

/// Runs one measurement process and parses the JSON line it prints; also returns the cores
/// the rest of the machine kept busy meanwhile.
fn measure(mut cmd: Command, label: &str) -> Result<(Value, Option<f64>)> {
    let load = OtherLoad::start();
    let out = cmd.output().with_context(|| format!("running {label}"))?;
    let other = load.cores();
    if !out.status.success() {
        bail!("{label} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("{label} printed no JSON line"))?;
    let value = serde_json::from_str(line).with_context(|| format!("{label}'s JSON"))?;
    Ok((value, other))
}

/// One measured sample of one side.
struct Sample {
    shape: &'static str,
    what: &'static str,
    side: &'static str,
    round: usize,
    /// Cores other processes kept busy during the measurement.
    other_cores: Option<f64>,
    value: Value,
}

/// A side of the comparison: its name and how to start one of its measurements.
struct Side<'a> {
    name: &'static str,
    command: Box<dyn Fn(&str, &str, usize) -> Command + 'a>,
}

fn sides<'a>(
    family: &'a Family,
    root: &'a Path,
    exe: &'a Path,
    threads: &'a str,
    python: Option<&'a Path>,
    unfused: bool,
) -> Vec<Side<'a>> {
    let ours = move |fused: bool| {
        move |what: &str, shape: &str, iters: usize| {
            let mut c = Command::new(exe);
            c.args(["--child", what, shape, &iters.to_string()])
                .env("RAYON_NUM_THREADS", threads)
                .env("STILTS_FUSED_KERNELS", if fused { "1" } else { "0" });
            c
        }
    };
    let mut sides = vec![Side {
        name: "stilts",
        command: Box::new(ours(true)),
    }];
    if unfused {
        sides.push(Side {
            name: "stilts-unfused",
            command: Box::new(ours(false)),
        });
    }
    if let Some(python) = python {
        sides.push(Side {
            name: "pytorch",
            command: Box::new(move |what: &str, shape: &str, iters: usize| {
                let mut c = Command::new(python);
                c.current_dir(root)
                    .arg(family.script)
                    .args(["--child", what, "--shape", shape])
                    .args(["--iters", &iters.to_string(), "--threads", threads]);
                c
            }),
        });
    }
    sides
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
    let sides = sides(
        family,
        root,
        &exe,
        &threads,
        python.as_deref(),
        args.unfused,
    );
    let mut whats: Vec<(&'static str, &'static str, Option<&'static Shape>)> = Vec::new();
    if family.gemm {
        whats.push(("gemm", "-", None));
    }
    for shape in &args.shapes {
        for &(what, _) in family.whats {
            whats.push((what, shape.0, Some(*shape)));
        }
    }
    let mut samples = Vec::new();
    for round in 0..args.rounds {
        for &(what, shape, spec) in &whats {
            let base = match spec {
                None => 1,
                Some(s) if what == "infer" => s.2,
                Some(s) => s.3,
            };
            let iters = ((base as f64 * args.iters_scale).round() as usize).max(1);
            let mut order: Vec<&Side> = sides.iter().collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for side in order {
                let label = format!("{} {what} {shape} (round {})", side.name, round + 1);
                let (value, other_cores) = measure((side.command)(what, shape, iters), &label)?;
                eprintln!(
                    "{label}: {} ex/s, other load {} cores",
                    value["examples_per_s"]
                        .as_f64()
                        .map_or("-".into(), |v| format!("{v:.2}")),
                    other_cores.map_or("?".into(), |l| format!("{l:.2}"))
                );
                samples.push(Sample {
                    shape,
                    what,
                    side: side.name,
                    round,
                    other_cores,
                    value,
                });
            }
        }
    }
    let side_names: Vec<&str> = sides.iter().map(|s| s.name).collect();
    let md = render(family, &args, &samples, &threads, &side_names);
    let raw: Vec<Value> = samples
        .iter()
        .map(|s| {
            json!({"shape": s.shape, "what": s.what, "side": s.side, "round": s.round,
                   "other_cores": s.other_cores, "result": s.value})
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

/// The middle value (the upper of the two middle ones for an even count); `None` for none.
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied()
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn side_title(side: &str) -> &str {
    match side {
        "stilts" => "stilts",
        "stilts-unfused" => "stilts, unfused",
        _ => "PyTorch",
    }
}

/// The samples' values of `key` for one (shape, what, side), by round.
fn by_round(
    samples: &[Sample],
    shape: &str,
    what: &str,
    side: &str,
    key: &str,
) -> Vec<(usize, f64)> {
    samples
        .iter()
        .filter(|s| s.shape == shape && s.what == what && s.side == side)
        .filter_map(|s| s.value[key].as_f64().map(|v| (s.round, v)))
        .collect()
}

fn render(
    family: &Family,
    args: &Args,
    samples: &[Sample],
    threads: &str,
    sides: &[&str],
) -> String {
    let values = |shape: &str, what: &str, side: &str, key: &str| -> Vec<f64> {
        by_round(samples, shape, what, side, key)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    };
    let other: Vec<f64> = samples.iter().filter_map(|s| s.other_cores).collect();
    let worst = other.iter().copied().fold(0.0f64, f64::max);
    let noisy = samples
        .iter()
        .filter(|s| s.other_cores.is_none_or(|c| c > QUIET_CORES))
        .count();
    let versions = samples
        .iter()
        .find_map(|s| s.value.get("versions"))
        .map(|v| format!(" PyTorch side: {v}."))
        .unwrap_or_default();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {} on the CPU: stilts (burn-flex) vs PyTorch eager fp32\n",
        family.title
    );
    let _ = writeln!(
        md,
        "CPU: {}. {} rounds, sides alternating (A B, then B A); {threads} threads on every side; \
         {}; one process per measurement; medians over rounds.{versions}\n",
        cpu_description(),
        args.rounds,
        family.input,
    );
    let _ = writeln!(
        md,
        "Other work on the machine during a measurement: at most {worst:.2} cores. {}\n",
        if noisy == 0 {
            format!("Every measurement ran quiet (below {QUIET_CORES} cores of other work).")
        } else {
            format!(
                "**{noisy} of {} measurements ran beside other work (above {QUIET_CORES} cores, \
                 or unknown): these figures are not a result.**",
                samples.len()
            )
        }
    );
    if !sides.contains(&"pytorch") {
        let _ = writeln!(md, "**No PyTorch anchor was available: stilts alone.**\n");
    }
    if family.gemm {
        let _ = write!(md, "Peak f32 GEMM (2048^3, best of 6), GFLOP/s:");
        for side in sides {
            let _ = write!(
                md,
                " {} {};",
                side_title(side),
                fmt(median(values("-", "gemm", side, "gflops")), 1)
            );
        }
        let _ = writeln!(md, "\n");
    }
    let _ = write!(md, "| shape | measurement |");
    for side in sides {
        let _ = write!(md, " {} ex/s |", side_title(side));
    }
    for side in sides.iter().filter(|s| **s != "pytorch") {
        let _ = write!(md, " {} / PyTorch (range) |", side_title(side));
    }
    for side in sides {
        let _ = write!(md, " {} peak RSS MiB |", side_title(side));
    }
    let _ = writeln!(md);
    let ncols = 2 + sides.len() * 2 + sides.iter().filter(|s| **s != "pytorch").count();
    let _ = writeln!(md, "|---|---|{}", "---:|".repeat(ncols - 2));
    for &&(shape, label, _, _) in &args.shapes {
        for &(what, desc) in family.whats {
            let _ = write!(md, "| {label} | {desc} |");
            for side in sides {
                let _ = write!(
                    md,
                    " {} |",
                    fmt(median(values(shape, what, side, "examples_per_s")), 2)
                );
            }
            let theirs = by_round(samples, shape, what, "pytorch", "examples_per_s");
            for side in sides.iter().filter(|s| **s != "pytorch") {
                let ratios: Vec<f64> = by_round(samples, shape, what, side, "examples_per_s")
                    .into_iter()
                    .filter_map(|(r, v)| theirs.iter().find(|(tr, _)| *tr == r).map(|(_, t)| v / t))
                    .collect();
                let (lo, hi) = ratios
                    .iter()
                    .fold((f64::INFINITY, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
                let cell = match median(ratios) {
                    Some(m) => format!("{m:.2}x ({lo:.2}-{hi:.2})"),
                    None => "-".into(),
                };
                let _ = write!(md, " {cell} |");
            }
            for side in sides {
                let rss = values(shape, what, side, "peak_rss_mib")
                    .into_iter()
                    .reduce(f64::max);
                let _ = write!(md, " {} |", fmt(rss, 0));
            }
            let _ = writeln!(md);
        }
    }
    render_breakdown(
        &mut md,
        family,
        args,
        samples,
        sides,
        "phases_ms",
        "Train step phases",
    );
    render_breakdown(
        &mut md,
        family,
        args,
        samples,
        sides,
        "ops_ms",
        "One inference batch, per op class",
    );
    md
}

/// A table of the named-timings object `key` (median ms per name), one column per side.
fn render_breakdown(
    md: &mut String,
    family: &Family,
    args: &Args,
    samples: &[Sample],
    sides: &[&str],
    key: &str,
    title: &str,
) {
    let mut rows = Vec::new();
    for &&(shape, label, _, _) in &args.shapes {
        for &(what, desc) in family.whats {
            let timings = |side: &str| -> BTreeMap<String, Vec<f64>> {
                let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for s in samples
                    .iter()
                    .filter(|s| s.shape == shape && s.what == what && s.side == side)
                {
                    if let Some(obj) = s.value[key].as_object() {
                        for (k, v) in obj {
                            m.entry(k.clone()).or_default().extend(v.as_f64());
                        }
                    }
                }
                m
            };
            let per_side: Vec<BTreeMap<String, Vec<f64>>> =
                sides.iter().map(|s| timings(s)).collect();
            let mut names: Vec<String> = Vec::new();
            for m in &per_side {
                for k in m.keys() {
                    if !names.contains(k) {
                        names.push(k.clone());
                    }
                }
            }
            for name in names {
                let cells: Vec<String> = per_side
                    .iter()
                    .map(|m| fmt(m.get(&name).cloned().and_then(median), 1))
                    .collect();
                rows.push(format!(
                    "| {label} | {desc} | {name} | {} |",
                    cells.join(" | ")
                ));
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## {title} (median ms)\n");
    let heads: Vec<&str> = sides.iter().map(|s| side_title(s)).collect();
    let _ = writeln!(md, "| shape | measurement | part | {} |", heads.join(" | "));
    let _ = writeln!(md, "|---|---|---|{}", "---:|".repeat(sides.len()));
    for r in rows {
        let _ = writeln!(md, "{r}");
    }
}
