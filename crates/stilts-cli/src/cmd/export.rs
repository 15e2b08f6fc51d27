//! `stilts export glue|validate`: GLUE leaderboard submission files from runs' test
//! predictions, and a validator for a directory of them.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use stilts_train::data::BuiltinTask;
use stilts_train::eval::{SavedModel, named_predictions};
use stilts_train::export::{
    ExportOptions, PredictionSource, ValidateOptions, export_glue, submission_specs, validate_dir,
    write_atomic,
};
use stilts_train::io::files::TokenizerFiles;
use stilts_train::model::peft_file::merge_lora;
use stilts_train::model::write_model_dir;
use stilts_train::models::device::DeviceChoice;
use stilts_train::predict::{PredictOptions, Predictor};

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Write GLUE submission files (CoLA.tsv ... AX.tsv) from runs' test predictions.
    Glue(GlueArgs),
    /// Check a directory of GLUE submission files (names, header, rows, indices, labels).
    Validate(ValidateArgs),
    /// Write a model with its LoRA updates folded into the encoder's weights: the same
    /// predictions without the extra matrix products (adapters stay).
    Merged(MergedArgs),
}

#[derive(Args)]
pub struct MergedArgs {
    /// A stilts model directory (`<run>/model`), or with --adapter the base the modules were
    /// trained on (a stilts or Hugging Face model directory).
    #[arg(long)]
    model: PathBuf,
    /// A module directory (`<run>/adapter`) to attach to --model first.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The directory to write (a stilts model directory; replaced atomically).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct GlueArgs {
    /// Run directories (`.../seed-<s>`, holding result.json) or result.json files; the runs'
    /// phases need `predict_test = true`.
    #[arg(long, num_args = 1.., required = true)]
    runs: Vec<PathBuf>,
    /// Directory to write the .tsv files into.
    #[arg(long)]
    out: PathBuf,
    /// Also write the files into this zip (the archive the GLUE server takes).
    #[arg(long)]
    zip: Option<PathBuf>,
    /// Write the files there are predictions for instead of failing on missing ones (the
    /// validator then only checks the files present).
    #[arg(long)]
    partial: bool,
    /// Skip the check of row counts against the official test sets (for subsets / fake data).
    #[arg(long)]
    no_validate: bool,
    /// An MNLI model (a run directory or its `model/`) to predict what the runs lack of
    /// AX.tsv (diagnostic.tsv, scored with the MNLI model) and MNLI-m/MNLI-mm.tsv.
    #[arg(long)]
    mnli_model: Option<PathBuf>,
    /// A tokenizer file or directory for --mnli-model (default: the one saved with it).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// GLUE data root holding `MNLI/` and `diagnostic/diagnostic.tsv` (default: $GLUE_DIR).
    #[arg(long)]
    glue_dir: Option<PathBuf>,
    /// Most tokens per example for --mnli-model (default: what it was trained with, else 128
    /// or the model's positions if fewer).
    #[arg(long)]
    max_seq_len: Option<usize>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// cpu, wgpu, wgpu:N, cuda:N, tch-cpu, tch-cuda:N (for --mnli-model).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The directory of submission files.
    dir: PathBuf,
    /// Accept a directory without all eleven files.
    #[arg(long)]
    partial: bool,
}

pub fn run(command: ExportCommand) -> Result<()> {
    match command {
        ExportCommand::Glue(a) => glue(a),
        ExportCommand::Validate(a) => validate(a),
        ExportCommand::Merged(a) => merged(a),
    }
}

fn merged(args: MergedArgs) -> Result<()> {
    let options = PredictOptions {
        adapter: args.adapter.clone(),
        ..PredictOptions::default()
    };
    let device = DeviceChoice::Cpu.device()?;
    let (predictor, _) = Predictor::load(&args.model, &options, &device)
        .with_context(|| format!("loading the model in {}", args.model.display()))?;
    let carried = predictor.into_model();
    if carried.meta.peft.lora.is_none() {
        bail!(
            "{} carries no LoRA updates: there is nothing to merge",
            args.model.display()
        );
    }
    let merged = merge_lora(carried);
    let tokenizer = TokenizerFiles::find(&args.model);
    write_model_dir(&merged, &args.out, tokenizer.as_ref())?;
    println!("{}", args.out.display());
    Ok(())
}

fn glue(args: GlueArgs) -> Result<()> {
    let mut sources = args
        .runs
        .iter()
        .map(|r| stilts_train::export::load_source(r).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    if let Some(model) = &args.mnli_model
        && let Some(source) = predict_with_mnli(model, &sources, &args)?
    {
        sources.push(source);
    }
    let options = ExportOptions {
        partial: args.partial,
    };
    let report = export_glue(&sources, &args.out, &options)?;
    for (file, rows) in &report.written {
        println!("{}: {rows} rows", args.out.join(file).display());
    }
    for m in &report.missing {
        tracing::warn!("{} not written: {}", m.file, m.reason);
    }
    if !args.no_validate {
        let issues = validate_dir(
            &args.out,
            &ValidateOptions {
                partial: args.partial,
                ..ValidateOptions::default()
            },
        )?;
        if !issues.is_empty() {
            for i in &issues {
                eprintln!("{i}");
            }
            bail!(
                "{}: {} problem(s) (--no-validate skips the row-count check)",
                args.out.display(),
                issues.len()
            );
        }
    }
    if let Some(zip) = &args.zip {
        let files: Vec<String> = report.written.iter().map(|(f, _)| f.clone()).collect();
        write_zip(&args.out, &files, zip)?;
        println!("{}", zip.display());
    }
    Ok(())
}

fn validate(args: ValidateArgs) -> Result<()> {
    let issues = validate_dir(
        &args.dir,
        &ValidateOptions {
            partial: args.partial,
            ..ValidateOptions::default()
        },
    )?;
    if issues.is_empty() {
        println!("{}: valid GLUE submission", args.dir.display());
        return Ok(());
    }
    for i in &issues {
        eprintln!("{i}");
    }
    bail!("{}: {} problem(s)", args.dir.display(), issues.len())
}

/// Zips `files` of `dir` (stored at the archive's root, as the GLUE server wants), atomically.
fn write_zip(dir: &Path, files: &[String], out: &Path) -> Result<()> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for f in files {
            let path = dir.join(f);
            let mut bytes = Vec::new();
            File::open(&path)
                .and_then(|mut h| h.read_to_end(&mut bytes))
                .with_context(|| format!("reading {}", path.display()))?;
            zip.start_file(f.as_str(), options)
                .with_context(|| format!("zipping {f}"))?;
            zip.write_all(&bytes)
                .with_context(|| format!("zipping {f}"))?;
        }
        zip.finish().context("writing the zip")?;
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_atomic(out, &buf.into_inner())?;
    Ok(())
}

/// Predictions of the MNLI model in `model` (a run directory or its `model/`) for every
/// submission file it scores (MNLI-m, MNLI-mm, AX) that `have` lacks.
fn predict_with_mnli(
    model: &Path,
    have: &[PredictionSource],
    args: &GlueArgs,
) -> Result<Option<PredictionSource>> {
    let mnli = BuiltinTask::Mnli.task();
    let present = |task: &str, split: &str| {
        have.iter().flat_map(|s| &s.predictions).any(|p| {
            p.split == split && BuiltinTask::parse(&p.task).is_ok_and(|t| t.name() == task)
        })
    };
    let wanted: Vec<_> = submission_specs()
        .into_iter()
        .filter(|s| s.task.name == mnli.name || s.model_task.as_deref() == Some(&mnli.name))
        .filter(|s| !present(&s.task.name, &s.split))
        .collect();
    if wanted.is_empty() {
        tracing::warn!("--mnli-model: the runs already have MNLI-m, MNLI-mm and AX predictions");
        return Ok(None);
    }
    let glue_dir = args
        .glue_dir
        .clone()
        .or_else(|| std::env::var_os("GLUE_DIR").map(PathBuf::from))
        .context("--mnli-model needs --glue-dir or $GLUE_DIR")?;
    let device = args.device.device()?;
    let saved = SavedModel::open(model, args.tokenizer.as_deref(), args.max_seq_len, &device)
        .with_context(|| format!("loading {}", model.display()))?;
    let head = saved.head_for(&mnli)?;
    let mut predictions = Vec::new();
    for spec in wanted {
        let task_dir = glue_dir.join(&spec.task.dir);
        let (split, logits) = saved
            .predict_split(head, &spec.task, &task_dir, &spec.split, args.batch_size)
            .with_context(|| {
                format!(
                    "predicting {} {} from {} (for {})",
                    spec.task.name,
                    spec.split,
                    task_dir.display(),
                    spec.file
                )
            })?;
        tracing::info!("{}: predicted with {}", spec.file, model.display());
        // AX is read with the MNLI head: its labels are MNLI's.
        let mut named = named_predictions(&mnli, &split, logits);
        named.task = spec.task.name.clone();
        predictions.push(named);
    }
    let dir = model.to_path_buf();
    Ok(Some(PredictionSource {
        origin: dir,
        predictions,
    }))
}
