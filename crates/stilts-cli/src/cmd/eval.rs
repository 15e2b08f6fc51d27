//! `stilts eval`: score a trained stilts model on a split of a task.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use stilts_train::config::{DataFile, ExperimentFile, ModelFile, PhaseFile, TaskEntryFile};
use stilts_train::data::LoadOptions;
use stilts_train::data::tokenize::EncodeOptions;
use stilts_train::experiment::load_tokenizer;
use stilts_train::model::load_model;
use stilts_train::phase::predict;
use stilts_train::prepare::Split;

#[derive(Args)]
pub struct EvalArgs {
    /// A stilts model directory (`<run>/model`).
    #[arg(long)]
    model: PathBuf,
    /// The task: a built-in name or a task file.
    #[arg(long)]
    task: String,
    /// The split to score (default: the task's first dev split).
    #[arg(long)]
    split: Option<String>,
    /// vocab.txt or tokenizer.json the model was trained with.
    #[arg(long)]
    tokenizer: String,
    #[arg(long)]
    glue_dir: Option<String>,
    #[arg(long)]
    extra_dir: Option<String>,
    #[arg(long, default_value_t = 128)]
    max_seq_len: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// cpu, wgpu, wgpu:N, cuda:N, tch-cpu, tch-cuda:N (non-CPU devices need their cargo
    /// feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalArgs) -> Result<()> {
    // Resolve the task through the experiment machinery so paths and errors match `run`.
    let file = ExperimentFile {
        device: Some(args.device.clone()),
        model: ModelFile {
            checkpoint: Some(args.model.display().to_string()),
            tokenizer: Some(args.tokenizer.clone()),
            ..ModelFile::default()
        },
        data: DataFile {
            glue_dir: args.glue_dir.clone(),
            extra_dir: args.extra_dir.clone(),
        },
        phases: vec![PhaseFile {
            tasks: vec![TaskEntryFile::Name(args.task.clone())],
            ..PhaseFile::default()
        }],
        ..ExperimentFile::default()
    };
    let exp = file.resolve(Path::new("<flags>"), "eval")?;
    let spec = &exp.phases[0].tasks[0];
    let split = args.split.clone().unwrap_or_else(|| spec.dev_split.clone());
    let device = exp.device.device()?;
    let carried = load_model(&args.model, &device)?;
    let head = match carried
        .meta
        .heads
        .iter()
        .position(|h| h.task == spec.task.name)
    {
        Some(h) => h,
        None if carried.meta.heads.len() == 1 => 0,
        None => bail!(
            "the model has no head for {} (heads: {:?})",
            spec.task.name,
            carried
                .meta
                .heads
                .iter()
                .map(|h| &h.task)
                .collect::<Vec<_>>()
        ),
    };
    let positions = carried.meta.bert.max_position_embeddings;
    if args.max_seq_len > positions {
        bail!(
            "--max-seq-len {} exceeds the model's max_position_embeddings {positions}",
            args.max_seq_len
        );
    }
    let info = &carried.meta.heads[head];
    if info.labels != spec.task.labels() || info.regression != spec.task.target.is_regression() {
        bail!(
            "head {} has labels {:?} but {} has {:?}",
            head,
            info.labels,
            spec.task.name,
            spec.task.labels()
        );
    }
    let tokenizer = load_tokenizer(&exp.tokenizer)?.with_options(EncodeOptions {
        max_seq_len: args.max_seq_len,
        ..EncodeOptions::default()
    })?;
    let data = spec
        .task
        .load(&spec.dir, &split, LoadOptions::default())
        .with_context(|| format!("loading {} {split}", spec.task.name))?;
    if !data.is_labelled() {
        bail!("split {split} has no labels to score");
    }
    let split_data = Split::encode(data, &tokenizer)?;
    let logits = predict(
        &carried.model,
        head,
        &split_data,
        &tokenizer,
        args.batch_size,
        &device,
    );
    let scores = stilts_train::phase::score_split(&spec.task, &split_data, &logits)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scores)?);
    } else {
        for (k, v) in &scores.metrics {
            println!("{} {} {k}: {v:.4}", spec.task.name, split);
        }
        println!("{} {} score: {:.4}", spec.task.name, split, scores.score);
    }
    Ok(())
}
