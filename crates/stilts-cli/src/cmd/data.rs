//! `stilts data ...`: check a task's files, download GLUE, generate Real/Fake, draw subsets,
//! tokenize records as an encoder reads them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use stilts_train::data::custom::TaskRef;
use stilts_train::data::download::{self, DownloadConfig, Verification};
use stilts_train::data::realfake::{self, RealFakeConfig};
use stilts_train::data::sample;
use stilts_train::data::{BuiltinTask, Dataset, Label, LoadOptions, Task};

use crate::progress::ByteBars;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Read every split of a task found in a directory; print rows and label counts.
    Check(CheckArgs),
    /// Fetch GLUE tasks (and SNLI) into the official layout, as the GLUE download script does.
    Download(DownloadArgs),
    /// Generate the Real/Fake word-swap task from a sentence-per-line corpus.
    Realfake(RealfakeArgs),
    /// Draw a seeded subset of a split (the 1k/5k regimes) and write its manifest.
    Sample(SampleArgs),
    /// Print the ids and tokens a tokenizer gives JSON-lines records, one line each.
    Tokenize(TokenizeArgs),
}

#[derive(Args)]
pub struct TokenizeArgs {
    /// A tokenizer file (tokenizer.json, vocab.txt, vocab.json, encoder_bpe_40000.json) or a
    /// model directory holding one.
    #[arg(long)]
    tokenizer: PathBuf,
    /// JSON lines: objects with `text_a` and an optional `text_b`.
    #[arg(long)]
    input: PathBuf,
    /// The pieces alone, without the encoder's special tokens (Hugging Face's
    /// `add_special_tokens=False`).
    #[arg(long)]
    no_special_tokens: bool,
    /// Cut each record to this many tokens, special tokens included (default: no cut).
    #[arg(long)]
    max_seq_len: Option<usize>,
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

#[derive(Args)]
pub struct DownloadArgs {
    /// Comma-separated tasks (CoLA,SST-2,MRPC,QQP,STS-B,MNLI,QNLI,RTE,WNLI,AX,SNLI); default:
    /// every GLUE task.
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// The data root; task folders (`RTE`, `diagnostic`, ...) are created in it. Default: the
    /// stilts cache (`$STILTS_CACHE/glue`, else `~/.cache/stilts/glue`), where `stilts run`
    /// looks for a task that neither `data.glue_dir` nor $GLUE_DIR holds.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Fetch every file from `<URL>/<name>` (a mirror) instead of the official locations
    /// (default: $STILTS_GLUE_MIRROR).
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Fetch even when a task folder is already complete.
    #[arg(long)]
    force: bool,
    /// Fail when row counts differ from the official release (instead of warning).
    #[arg(long)]
    strict: bool,
    /// Skip loading the splits after unpacking.
    #[arg(long)]
    no_verify: bool,
    /// Extra attempts after a transient network failure.
    #[arg(long, default_value_t = 3)]
    retries: u32,
}

#[derive(Args)]
pub struct RealfakeArgs {
    /// A sentence-per-line file, or a directory of them (`.gz` is read transparently).
    #[arg(long)]
    corpus: PathBuf,
    /// Output directory: `train.tsv`, `dev.tsv`, `report.json`.
    #[arg(long)]
    out: PathBuf,
    /// Examples over train and dev together (half real, half fake); default: one per usable
    /// sentence.
    #[arg(long)]
    num_examples: Option<usize>,
    /// Share of the examples in the dev split.
    #[arg(long, default_value_t = 0.1)]
    dev_fraction: f64,
    /// Shortest usable sentence in tokens (at least 4: a fake swaps 2-4 pairs).
    #[arg(long, default_value_t = 4)]
    min_tokens: usize,
    /// Longest usable sentence in tokens.
    #[arg(long)]
    max_tokens: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
pub struct SampleArgs {
    #[command(flatten)]
    task: TaskArg,
    /// The task's directory, or a data root holding it.
    #[arg(long)]
    dir: PathBuf,
    /// The split to draw from.
    #[arg(long, default_value = "train")]
    split: String,
    /// Keep at most this many examples (1000 and 5000 in the paper).
    #[arg(long)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The restart index: each restart draws its own subset.
    #[arg(long, default_value_t = 0)]
    stream: u64,
    /// Where to write the manifest (JSON with the chosen ids and their hash).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Check(args) => check(&args),
        DataCommand::Download(args) => download_cmd(&args),
        DataCommand::Realfake(args) => realfake_cmd(&args),
        DataCommand::Sample(args) => sample_cmd(&args),
        DataCommand::Tokenize(args) => tokenize_cmd(&args),
    }
}

fn tokenize_cmd(args: &TokenizeArgs) -> Result<()> {
    use std::io::Write;
    use stilts_train::data::encoding::{InputEncoder, Tokenizer};

    let records = stilts_train::predict::read_jsonl(&args.input)?;
    let mut tokenizer =
        Tokenizer::at(&args.tokenizer)?.with_max_seq_len(args.max_seq_len.unwrap_or(1 << 30))?;
    if args.no_special_tokens {
        tokenizer = tokenizer.without_special_tokens();
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for chunk in records.chunks(256) {
        let inputs: Vec<(&str, Option<&str>)> = chunk
            .iter()
            .map(|r| (r.text_a.as_str(), r.text_b.as_deref()))
            .collect();
        for encoding in tokenizer.encode_all(&inputs)? {
            let tokens = tokenizer.tokens(&encoding);
            let line = serde_json::json!({ "ids": encoding.ids, "tokens": tokens });
            writeln!(out, "{line}").context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
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

fn download_cmd(args: &DownloadArgs) -> Result<()> {
    if stilts_train::io::cache::offline() {
        bail!("STILTS_OFFLINE=1 forbids downloads; unset it to fetch GLUE");
    }
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => stilts_train::io::cache::glue_cache_dir()
            .context("no stilts cache: set --dir, STILTS_CACHE, XDG_CACHE_HOME or HOME")?,
    };
    let mut cfg = DownloadConfig::new(dir);
    if !args.tasks.is_empty() {
        cfg.tasks = args
            .tasks
            .iter()
            .map(|t| BuiltinTask::parse(t.trim()))
            .collect::<Result<_, _>>()?;
    }
    cfg.base_url = args
        .mirror
        .clone()
        .or_else(stilts_train::io::cache::glue_mirror);
    cfg.force = args.force;
    cfg.strict = args.strict;
    cfg.verify = !args.no_verify;
    cfg.retries = args.retries;
    let reports = download::download(&cfg, &ByteBars::default())?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["task", "dir", "fetched", "rows", "verification"]);
    for r in &reports {
        let fetched = if r.downloaded {
            format!("{:.1} MB", r.bytes as f64 / 1e6)
        } else {
            "already complete".to_owned()
        };
        let rows = r
            .splits
            .iter()
            .map(|s| format!("{} {}", s.split, s.examples))
            .collect::<Vec<_>>()
            .join("\n");
        let verification = match &r.verification {
            Verification::Matched => "official counts".to_owned(),
            Verification::Mismatch(lines) => lines.join("\n"),
            Verification::NotChecked => "not checked".to_owned(),
        };
        table.add_row([
            r.task.name().to_owned(),
            r.dir.display().to_string(),
            fetched,
            rows,
            verification,
        ]);
    }
    println!("{table}");
    Ok(())
}

fn realfake_cmd(args: &RealfakeArgs) -> Result<()> {
    let cfg = RealFakeConfig {
        num_examples: args.num_examples,
        dev_fraction: args.dev_fraction,
        min_tokens: args.min_tokens,
        max_tokens: args.max_tokens,
        seed: args.seed,
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("reading corpus [{bar:30}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let tick = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = realfake::generate(&args.corpus, &args.out, &cfg, Some(&tick))?;
    bar.finish_and_clear();
    println!(
        "wrote {} train and {} dev examples to {} ({})",
        report.train.examples,
        report.dev.examples,
        args.out.display(),
        report.counts
    );
    Ok(())
}

fn sample_cmd(args: &SampleArgs) -> Result<()> {
    let task = args.task.task_ref()?.resolve()?;
    let dir = task_dir(&task, &args.dir);
    let data = task
        .load(&dir, &args.split, LoadOptions::default())
        .with_context(|| format!("loading {} split `{}`", task.name, args.split))?;
    let (subset, manifest) = sample::downsample(&data, args.n, args.seed, args.stream)?;
    manifest.write(&args.out)?;
    println!(
        "{} of {} {} `{}` examples (seed {}, stream {}), ids sha256 {}; manifest in {}",
        subset.len(),
        data.len(),
        task.name,
        args.split,
        args.seed,
        args.stream,
        manifest.ids_sha256,
        args.out.display()
    );
    Ok(())
}
