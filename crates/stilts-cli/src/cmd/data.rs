//! `stilts data ...`: check a task's files, download GLUE, generate Real/Fake.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use stilts_train::data::custom::TaskRef;
use stilts_train::data::{BuiltinTask, Dataset, Label, LoadOptions, Task};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Read every split of a task found in a directory; print rows and label counts.
    Check(CheckArgs),
}

/// Which task: a built-in name or a TOML definition.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct TaskArg {
    /// A built-in task: CoLA, SST-2, MRPC, QQP, STS-B, MNLI, QNLI, RTE, WNLI, AX, SNLI.
    #[arg(long)]
    task: Option<String>,
    /// A custom task definition (see configs/tasks/).
    #[arg(long, value_name = "TOML")]
    task_config: Option<PathBuf>,
}

impl TaskArg {
    fn task_ref(&self) -> Result<TaskRef> {
        Ok(match (&self.task, &self.task_config) {
            (Some(name), _) => TaskRef::Builtin(BuiltinTask::parse(name)?),
            (None, Some(path)) => TaskRef::File(path.clone()),
            (None, None) => bail!("give --task or --task-config"),
        })
    }
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    task: TaskArg,
    /// The task's directory, or a data root holding it (`glue_data` for `glue_data/RTE`).
    #[arg(long)]
    dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Drop malformed rows and count them instead of failing on the first.
    #[arg(long)]
    skip_malformed: bool,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Check(args) => check(&args),
    }
}

/// What `data check` reports, as a table or as JSON.
#[derive(Serialize)]
struct CheckReport {
    task: String,
    dir: PathBuf,
    splits: Vec<SplitReport>,
}

#[derive(Serialize)]
struct SplitReport {
    split: String,
    file: PathBuf,
    sha256: String,
    rows: usize,
    /// Label name -> count; empty for unlabelled or regression splits.
    labels: Vec<(String, usize)>,
    /// min/mean/max of a regression target.
    scores: Option<[f64; 3]>,
    skipped_unlabelled: usize,
    skipped_malformed: usize,
}

/// `dir` may be the task's own directory or a root holding `<task.dir>/`.
fn task_dir(task: &Task, dir: &Path) -> PathBuf {
    let nested = task.dir_in(dir);
    if nested.is_dir() {
        nested
    } else {
        dir.to_owned()
    }
}

fn check(args: &CheckArgs) -> Result<()> {
    let task = args.task.task_ref()?.resolve()?;
    if !args.dir.is_dir() {
        bail!("{}: no such directory", args.dir.display());
    }
    let dir = task_dir(&task, &args.dir);
    let present = task.present_splits(&dir);
    if present.is_empty() {
        let files: Vec<&str> = task
            .splits
            .iter()
            .flat_map(|s| s.sources.iter().map(|src| src.file.as_str()))
            .collect();
        bail!(
            "no files of {} in {} (looked for {})",
            task.name,
            dir.display(),
            files.join(", ")
        );
    }
    let opts = LoadOptions {
        skip_malformed: args.skip_malformed,
    };
    let mut splits = Vec::new();
    for split in &present {
        let ds = task
            .load(&dir, split, opts)
            .with_context(|| format!("{} split `{split}` is malformed", task.name))?;
        splits.push(split_report(&task, &ds));
    }
    let report = CheckReport {
        task: task.name.clone(),
        dir,
        splits,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn split_report(task: &Task, ds: &Dataset) -> SplitReport {
    let labels = if task.target.is_regression() || !ds.is_labelled() {
        Vec::new()
    } else {
        task.labels()
            .iter()
            .cloned()
            .zip(ds.label_counts(task.labels().len()))
            .collect()
    };
    let scores: Vec<f64> = ds
        .examples
        .iter()
        .filter_map(|e| e.label.and_then(Label::score))
        .collect();
    let scores = (!scores.is_empty()).then(|| {
        let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        [min, scores.iter().sum::<f64>() / scores.len() as f64, max]
    });
    SplitReport {
        split: ds.split.clone(),
        file: ds.path.clone(),
        sha256: ds.sha256.clone(),
        rows: ds.len(),
        labels,
        scores,
        skipped_unlabelled: ds.skipped_unlabelled,
        skipped_malformed: ds.skipped_malformed.len(),
    }
}

fn print_table(report: &CheckReport) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["split", "file", "rows", "labels", "skipped"]);
    for s in &report.splits {
        let labels = match (&s.scores, s.labels.is_empty()) {
            (Some([min, mean, max]), _) => {
                format!("score min {min:.3} mean {mean:.3} max {max:.3}")
            }
            (None, true) => "(unlabelled)".to_owned(),
            (None, false) => s
                .labels
                .iter()
                .map(|(name, n)| {
                    format!(
                        "{name}: {n} ({:.1}%)",
                        100.0 * *n as f64 / s.rows.max(1) as f64
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        };
        let mut skipped = Vec::new();
        if s.skipped_unlabelled > 0 {
            skipped.push(format!("{} no gold label", s.skipped_unlabelled));
        }
        if s.skipped_malformed > 0 {
            skipped.push(format!("{} malformed", s.skipped_malformed));
        }
        let file = s
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        table.add_row([
            s.split.clone(),
            file,
            s.rows.to_string(),
            labels,
            skipped.join(", "),
        ]);
    }
    println!("{} in {}", report.task, report.dir.display());
    println!("{table}");
}
