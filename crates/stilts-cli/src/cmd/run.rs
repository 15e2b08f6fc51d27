//! `stilts run <experiment.toml>`: run an experiment's phases, with progress bars. Running the
//! same command again reuses finished runs and resumes interrupted ones from their checkpoints.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use stilts_train::config::{DeviceKind, Experiment, Override};
use stilts_train::experiment::run_experiment;
use stilts_train::io::progress::LogProgress;
use stilts_train::observer::{Observer, StepEvent};
use stilts_train::results::{EpochRecord, ExperimentSummary, RunResult};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::progress::ByteBars;

#[derive(Args)]
pub struct RunArgs {
    /// The experiment file (see configs/experiments/); with --check, any number of them.
    #[arg(required = true, num_args = 1..)]
    experiments: Vec<PathBuf>,
    /// Set a key of the file before it is read, e.g. `--set recipe.epochs=1`,
    /// `--set phases.0.tasks.0='{ task = "RTE", train_examples = 256 }'` (a TOML value, else a
    /// string); repeatable, applied in order.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Override>,
    /// Write runs here instead of the file's `output_dir`.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Train on this device instead of the file's `device`: cpu, wgpu, wgpu:N, cuda:N,
    /// tch-cpu, tch-cuda:N (non-CPU devices need their cargo feature).
    #[arg(long)]
    device: Option<String>,
    /// No progress bars (logs only).
    #[arg(long)]
    quiet: bool,
    /// Validate the file (keys, paths, combinations), print the resolved experiment as JSON
    /// and exit without training. With several files: check them all, print one line per
    /// file, and fail if any is invalid (what `cargo xtask reproduce` does before it submits).
    #[arg(long)]
    check: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    if args.experiments.len() > 1 {
        if !args.check {
            anyhow::bail!("train one experiment at a time (several files go with --check)");
        }
        return check_all(&args.experiments, &args.set);
    }
    let mut exp = Experiment::load_with(&args.experiments[0], &args.set)?;
    if let Some(dir) = args.output_dir {
        exp.output_dir = dir;
    }
    if let Some(device) = &args.device {
        exp.device =
            DeviceKind::parse(device).map_err(|m| anyhow::anyhow!("--device {device}: {m}"))?;
    }
    if args.check {
        println!("{}", serde_json::to_string_pretty(&exp)?);
        return Ok(());
    }
    execute(&exp, args.quiet)
}

/// Checks every file; prints `ok <file>` or `error <file>: <why>` per file.
fn check_all(files: &[PathBuf], overrides: &[Override]) -> Result<()> {
    let mut failed = 0;
    for file in files {
        match Experiment::load_with(file, overrides) {
            Ok(_) => println!("ok {}", file.display()),
            Err(e) => {
                failed += 1;
                let message = format!("{:#}", anyhow::Error::from(e));
                let name = file.display().to_string();
                if message.starts_with(&name) {
                    println!("error {message}");
                } else {
                    println!("error {name}: {message}");
                }
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} experiment files are invalid", files.len());
    }
    Ok(())
}

/// Runs a resolved experiment with the CLI's progress display and prints the summary; a hub
/// model and built-in tasks that no data root holds are downloaded first, with byte bars.
pub fn execute(exp: &Experiment, quiet: bool) -> Result<()> {
    execute_summary(exp, quiet).map(|_| ())
}

/// [`execute`], returning the experiment's summary.
pub fn execute_summary(exp: &Experiment, quiet: bool) -> Result<ExperimentSummary> {
    let mut progress = Progress::new(quiet);
    std::fs::create_dir_all(&exp.output_dir)
        .with_context(|| format!("creating {}", exp.output_dir.display()))?;
    let log_path = exp.output_dir.join("stilts.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let filter =
        || EnvFilter::try_from_env("STILTS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr (filtered by STILTS_LOG) and, at info level, to the output directory's
    // log file.
    let subscriber = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter()),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(log))
                .with_filter(EnvFilter::new("info")),
        );
    let summary = tracing::subscriber::with_default(subscriber, || {
        let mut exp = exp.clone();
        let downloads: Box<dyn stilts_train::io::Progress> = if quiet {
            Box::new(LogProgress)
        } else {
            Box::new(ByteBars::default())
        };
        exp.fetch_model(downloads.as_ref())?;
        exp.fetch_data(downloads.as_ref())?;
        run_experiment(&exp, &mut progress)
    })
    .with_context(|| format!("experiment {}", exp.name))?;
    progress.finish();
    print_summary(&summary);
    println!("outputs in {}", exp.output_dir.display());
    Ok(summary)
}

fn print_summary(summary: &ExperimentSummary) {
    for p in &summary.phases {
        println!(
            "phase {}: best seed {} dev {:.4} | mean {:.4} std {:.4} min {:.4} max {:.4} | baseline {:.4}, {} degenerate of {}",
            p.phase,
            p.best_seed,
            p.best_dev_score,
            p.mean,
            p.std,
            p.min,
            p.max,
            p.baseline,
            p.degenerate,
            p.runs.len()
        );
    }
}

/// Progress bars for steps within an epoch, and one line per evaluated epoch.
pub struct Progress {
    quiet: bool,
    bar: Option<ProgressBar>,
    label: String,
    epochs: usize,
    started: Instant,
    examples: usize,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            bar: None,
            label: String::new(),
            epochs: 0,
            started: Instant::now(),
            examples: 0,
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn run_start(&mut self, phase: &str, seed: u64, epochs: usize, first_epoch: usize) {
        self.label = format!("{phase} seed {seed}");
        self.epochs = epochs;
        if first_epoch > 0 {
            eprintln!("{}: resuming at epoch {}", self.label, first_epoch + 1);
        }
    }

    fn epoch_start(&mut self, epoch: usize, steps: u64, done: u64) {
        self.finish();
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(steps).with_position(done);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!(
            "{} epoch {}/{}",
            self.label,
            epoch + 1,
            self.epochs
        ));
        self.bar = Some(bar);
        self.started = Instant::now();
        self.examples = 0;
    }

    fn step(&mut self, e: &StepEvent) {
        self.examples += e.examples;
        if let Some(bar) = &self.bar {
            let rate = self.examples as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.4} lr {:.2e} {:.1} ex/s",
                e.loss, e.lr, rate
            ));
            bar.set_position(e.step_in_epoch);
        }
    }

    fn eval_start(&mut self, examples: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("evaluating {examples} dev examples"));
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        self.finish();
        let tasks: Vec<String> = r
            .dev
            .iter()
            .map(|t| {
                let m: Vec<String> = t
                    .metrics
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect();
                format!("{} {}", t.task, m.join(" "))
            })
            .collect();
        eprintln!(
            "{} epoch {}: train loss {:.4}, dev {:.4} ({})",
            self.label,
            r.epoch,
            r.train_loss,
            r.dev_score,
            tasks.join("; ")
        );
    }

    fn run_end(&mut self, r: &RunResult) {
        self.finish();
        eprintln!(
            "{} done: dev {:.4} (baseline {:.4}{}), {:.0} s, {:.1} ex/s",
            self.label,
            r.dev_score,
            r.baseline,
            if r.degenerate { ", DEGENERATE" } else { "" },
            r.wall_s,
            r.examples_per_s
        );
    }
}
