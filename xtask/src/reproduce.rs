//! `cargo xtask reproduce | status | report`: the command-line layer over `xtask::grid`,
//! `xtask::exec` and `xtask::report`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use stilts_data::env::expand_env;
use stilts_io::lock::holder_text;
use xtask::exec::check::check_plan;
use xtask::exec::local::{self, LocalOptions};
use xtask::exec::{WorkerCommand, driver_lock};
use xtask::grid::{LoadedGrid, Plan, Registry, RunKind, spec};

#[derive(Args, Debug)]
pub struct GridArgs {
    /// A grid name in configs/grids/ (`table1`, `table2`, `table3`, `table4`, `figure1`) or a grid file.
    pub grid: String,
    /// Apply the grid's `[scale.<name>]` overrides (e.g. `cpu`); every override is recorded in
    /// grid.json.
    #[arg(long)]
    pub scale: Option<String>,
    /// The grid's output directory (default: the grid's `output_dir`, else
    /// runs/grids/<name>[-<scale>]).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    Local,
    Slurm,
}

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    #[command(flatten)]
    pub grid: GridArgs,
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    pub executor: Executor,
    /// Local: number of concurrent CPU workers.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Local: one worker per device, e.g. `cuda:0,cuda:1` (overrides --jobs).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// The `stilts` binary (default: $STILTS_BIN, else built with `cargo build --release`).
    #[arg(long)]
    pub stilts: Option<PathBuf>,
    /// Write the plan (runs/<id>/experiment.toml) and print it; run nothing.
    #[arg(long)]
    pub plan_only: bool,
    /// Slurm: submit and return without waiting for the runs.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args, Debug)]
pub struct BundleArgs {
    #[command(flatten)]
    pub grid: GridArgs,
    /// The encoder whose runs are submitted (default: the grid's first).
    #[arg(long)]
    pub encoder: Option<String>,
    /// The data regime whose runs are submitted.
    #[arg(long, default_value = "full")]
    pub regime: String,
    /// Accept fewer than GLUE's eleven files.
    #[arg(long)]
    pub partial: bool,
    /// Skip the row-count check against the official test sets.
    #[arg(long)]
    pub no_validate: bool,
    /// The `stilts` binary (default: $STILTS_BIN, else built with `cargo build --release`).
    #[arg(long)]
    pub stilts: Option<PathBuf>,
    /// Device for scoring AX with the MNLI model.
    #[arg(long)]
    pub device: Option<String>,
}

fn grid_path(root: &Path, grid: &str) -> PathBuf {
    let p = PathBuf::from(grid);
    if p.exists() || grid.ends_with(".toml") {
        p
    } else {
        root.join("configs/grids").join(format!("{grid}.toml"))
    }
}

fn load(root: &Path, args: &GridArgs) -> Result<(LoadedGrid, Plan)> {
    let path = grid_path(root, &args.grid);
    let grid = spec::load(&path, args.scale.as_deref())?;
    let plan = Plan::expand(&grid, args.output_dir.as_deref())?;
    Ok((grid, plan))
}

fn stilts_binary(root: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("STILTS_BIN") {
        return Ok(PathBuf::from(p));
    }
    eprintln!("building stilts (cargo build --release -p stilts-cli) ...");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "-p", "stilts-cli"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build -p stilts-cli failed with {status}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/stilts"))
}

pub fn reproduce(root: &Path, args: &ReproduceArgs) -> Result<()> {
    let (grid, plan) = load(root, &args.grid)?;
    let _lock = match driver_lock(&plan.output_dir)? {
        Ok(lock) => lock,
        Err(pid) => bail!(
            "another driver{} is running grid {} ({} is locked); wait for it or stop it",
            holder_text(pid),
            plan.grid,
            plan.output_dir.join("driver.lock").display()
        ),
    };
    plan.write(&grid)?;
    print_overrides(&grid);
    let counts = kind_counts(&plan);
    println!(
        "grid {}: {} runs ({counts}) in {}",
        plan.grid,
        plan.nodes.len(),
        plan.output_dir.display()
    );
    if args.plan_only {
        print_status(&plan)?;
        return Ok(());
    }
    let stilts = stilts_binary(root, args.stilts.as_deref())?;
    prepare_data(&grid, &plan, &stilts)?;
    let (device, cwd) = match args.executor {
        Executor::Local => (None, None),
        // Slurm jobs start in the grid's output directory.
        Executor::Slurm => (
            grid.file.slurm.device.clone(),
            Some(plan.output_dir.as_path()),
        ),
    };
    let worker = WorkerCommand {
        stilts,
        device,
        threads: None,
    };
    let checked = check_plan(&plan, &worker, cwd)?;
    println!("{checked} unfinished runs checked with `stilts run --check`");
    let mut registry = Registry::open(&plan.output_dir.join("registry.sqlite"))?;
    registry.sync(&plan)?;
    match args.executor {
        Executor::Local => local_queue(&plan, &worker, args)?,
        Executor::Slurm => slurm(&plan, &grid, &worker, args.no_wait)?,
    }
    let newly = registry.sync(&plan)?;
    println!(
        "registry: {} new results, {}/{} runs finished",
        newly,
        registry.finished(&plan.grid)?,
        plan.nodes.len()
    );
    render(&grid, &plan, &registry)
}

/// Runs the plan on local workers (`--jobs` CPU workers, or one per `--devices` entry).
fn local_queue(plan: &Plan, worker: &WorkerCommand, args: &ReproduceArgs) -> Result<()> {
    let workers = if args.devices.is_empty() {
        vec![None; args.jobs.max(1)]
    } else {
        args.devices.iter().cloned().map(Some).collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let worker = WorkerCommand {
        threads: cpu_worker_threads(
            &workers,
            cores,
            std::env::var_os("STILTS_THREADS").is_some(),
        ),
        ..worker.clone()
    };
    let rep = local::run(
        plan,
        &worker,
        &LocalOptions {
            workers,
            ..LocalOptions::default()
        },
    )?;
    println!(
        "local: {} finished now, {} already finished, {} failed, {} blocked by failed dependencies",
        rep.finished.len(),
        rep.skipped.len(),
        rep.failed.len(),
        rep.blocked.len()
    );
    for id in &rep.failed {
        println!(
            "  failed: {id} (log: {})",
            plan.run_dir(id).join("worker.log").display()
        );
    }
    Ok(())
}

/// Threads per `stilts run` when several CPU workers share the machine: the cores split
/// between them (each would otherwise start one thread per core, and they would oversubscribe
/// the cores). `None` with one worker, with a GPU device among the workers, or when
/// `STILTS_THREADS` is set (the workers inherit it).
fn cpu_worker_threads(
    workers: &[Option<String>],
    cores: usize,
    threads_set: bool,
) -> Option<usize> {
    let cpu = |w: &Option<String>| w.as_deref().is_none_or(|d| d == "cpu");
    if threads_set || workers.len() < 2 || !workers.iter().all(cpu) {
        return None;
    }
    Some((cores / workers.len()).max(1))
}

pub fn status(root: &Path, args: &GridArgs) -> Result<()> {
    let (grid, plan) = load(root, args)?;
    print_overrides(&grid);
    print_status(&plan)
}

pub fn report(root: &Path, args: &GridArgs) -> Result<()> {
    let (grid, plan) = load(root, args)?;
    let mut registry = Registry::open(&plan.output_dir.join("registry.sqlite"))?;
    let newly = registry.sync(&plan)?;
    println!(
        "registry: {newly} new results, {}/{} runs finished",
        registry.finished(&plan.grid)?,
        plan.nodes.len()
    );
    render(&grid, &plan, &registry)
}

/// Generates the data of Real/Fake intermediates (once; the generator is seeded, and its
/// `report.json` is written last, so a half-generated directory is regenerated).
fn prepare_data(grid: &LoadedGrid, plan: &Plan, stilts: &Path) -> Result<()> {
    for m in &grid.file.intermediates {
        let Some(rf) = &m.realfake else { continue };
        let out = xtask::grid::plan::generated_data_root(&plan.output_dir).join(&rf.dir);
        if out.join("report.json").exists() {
            continue;
        }
        let corpus = expand_env(&rf.corpus)
            .with_context(|| format!("intermediates `{}`: realfake.corpus", m.name))?;
        println!("generating {} from {corpus} into {}", m.name, out.display());
        let mut cmd = Command::new(stilts);
        cmd.args(["data", "realfake", "--corpus", &corpus, "--out"])
            .arg(&out)
            .args(["--seed", &grid.file.seed.to_string()]);
        if let Some(n) = rf.examples {
            cmd.args(["--num-examples", &n.to_string()]);
        }
        let status = cmd.status().context("running stilts data realfake")?;
        if !status.success() {
            bail!("stilts data realfake for `{}` failed with {status}", m.name);
        }
    }
    Ok(())
}

fn print_overrides(grid: &LoadedGrid) {
    if let Some(scale) = &grid.scale {
        println!("scale `{scale}` overrides:");
        for (k, v) in &grid.overrides {
            println!("  {k} = {v}");
        }
    }
}

fn kind_counts(plan: &Plan) -> String {
    let n = |k| plan.nodes.iter().filter(|x| x.meta.kind == k).count();
    format!(
        "{} intermediate, {} target, {} multitask",
        n(RunKind::Intermediate),
        n(RunKind::Target),
        n(RunKind::Multitask)
    )
}

fn print_status(plan: &Plan) -> Result<()> {
    println!(
        "{:<16}  {:<12}  {:<8}  {:<10}  {:<18}  {:<8}  {:<6}  {:>4}  state",
        "run", "kind", "method", "encoder", "condition", "target", "regime", "seed"
    );
    let mut finished = 0;
    for n in &plan.nodes {
        let dir = plan.run_dir(&n.id);
        let state = if plan.is_finished(&n.id) {
            finished += 1;
            "finished"
        } else if dir.join(n.phase_dir()).exists() {
            "started"
        } else if !plan.waiting_on(n).is_empty() {
            "waiting"
        } else {
            "pending"
        };
        println!(
            "{:<16}  {:<12}  {:<8}  {:<10}  {:<18}  {:<8}  {:<6}  {:>4}  {state}",
            n.id,
            n.meta.kind.as_str(),
            n.meta.method,
            n.meta.encoder,
            n.meta.condition,
            n.meta.target.as_deref().unwrap_or("-"),
            n.meta.regime.label(),
            n.meta.seed
        );
    }
    println!("{finished}/{} finished", plan.nodes.len());
    Ok(())
}

fn slurm(plan: &Plan, grid: &LoadedGrid, worker: &WorkerCommand, no_wait: bool) -> Result<()> {
    use xtask::exec::slurm::{self, SlurmOptions};
    let rep = slurm::run(
        plan,
        grid,
        worker,
        &SlurmOptions {
            wait: !no_wait,
            ..SlurmOptions::default()
        },
    )?;
    println!(
        "slurm: {} arrays submitted ({} runs, {} re-submitted); {} finished, {} failed, {} blocked",
        rep.arrays.len(),
        rep.submitted,
        rep.resubmitted,
        rep.finished.len(),
        rep.failed.len(),
        rep.blocked.len()
    );
    for (id, why) in &rep.blocked {
        println!("  blocked: {id}: {why}");
    }
    for id in &rep.failed {
        println!(
            "  failed: {id} (log: {})",
            plan.run_dir(id).join("worker.log").display()
        );
    }
    Ok(())
}

fn render(grid: &LoadedGrid, plan: &Plan, registry: &Registry) -> Result<()> {
    let rows = registry.rows(&plan.grid)?;
    let out = plan.output_dir.join("reports");
    let summary = xtask::report::render_all(grid, &rows, &out)?;
    print!("{}", summary.markdown);
    println!("reports in {}", out.display());
    Ok(())
}

pub fn bundle(root: &Path, args: &BundleArgs) -> Result<()> {
    use xtask::bundle::{BundleOptions, bundle, choose};
    let (grid, plan) = load(root, &args.grid)?;
    let mut registry = Registry::open(&plan.output_dir.join("registry.sqlite"))?;
    registry.sync(&plan)?;
    let encoder = match &args.encoder {
        Some(e) => e.clone(),
        None => grid.file.encoders[0].name.clone(),
    };
    let regime = xtask::grid::Regime::parse(&args.regime).map_err(anyhow::Error::msg)?;
    let choices = choose(&registry.rows(&plan.grid)?, &encoder, regime);
    if choices.is_empty() {
        bail!(
            "no finished {} runs of encoder `{encoder}` for a GLUE task in {}",
            regime.label(),
            plan.output_dir.display()
        );
    }
    for c in &choices {
        println!(
            "{:<6} {:<18} restart {:<3} dev {:.4}  {}",
            c.task,
            c.condition,
            c.restart,
            c.dev_score,
            c.seed_dir.display()
        );
    }
    let zip = bundle(
        &choices,
        &BundleOptions {
            stilts: stilts_binary(root, args.stilts.as_deref())?,
            out_dir: plan.output_dir.join("submission"),
            partial: args.partial,
            no_validate: args.no_validate,
            device: args.device.clone(),
        },
    )?;
    println!("submission: {}", zip.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cpu_worker_threads;

    #[test]
    fn cpu_workers_split_the_cores() {
        let cpu = |n: usize| vec![None; n];
        assert_eq!(cpu_worker_threads(&cpu(2), 2, false), Some(1));
        assert_eq!(cpu_worker_threads(&cpu(2), 16, false), Some(8));
        assert_eq!(cpu_worker_threads(&cpu(4), 2, false), Some(1));
        assert_eq!(
            cpu_worker_threads(&cpu(1), 16, false),
            None,
            "one worker: its default"
        );
        assert_eq!(
            cpu_worker_threads(&cpu(2), 16, true),
            None,
            "STILTS_THREADS wins"
        );
        let gpus = vec![Some("cuda:0".to_owned()), Some("cuda:1".to_owned())];
        assert_eq!(cpu_worker_threads(&gpus, 16, false), None);
        let named_cpu = vec![Some("cpu".to_owned()), None];
        assert_eq!(cpu_worker_threads(&named_cpu, 4, false), Some(2));
    }
}
