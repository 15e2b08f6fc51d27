//! `stilts eval`: score a trained stilts model on a split of a task.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use stilts_train::config::DataFile;
use stilts_train::config::tasks::resolve_named_task;
use stilts_train::eval::{SavedModel, score_split};

#[derive(Args)]
pub struct EvalArgs {
    /// A stilts model directory (`<run>/model`, or the run directory); with --adapter, the
    /// base the modules were trained on (a stilts or Hugging Face model directory).
    #[arg(long)]
    model: PathBuf,
    /// A module directory (`<run>/adapter`: LoRA, adapters and heads saved on their own) to
    /// attach to --model first.
    #[arg(long, conflicts_with = "tokenizer")]
    adapter: Option<PathBuf>,
    /// The task: a built-in name or a task file.
    #[arg(long)]
    task: String,
    /// The split to score (default: the task's first dev split).
    #[arg(long)]
    split: Option<String>,
    /// A tokenizer file or directory (default: the one saved with the model).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long)]
    glue_dir: Option<String>,
    #[arg(long)]
    extra_dir: Option<String>,
    /// Most tokens per example (default: what the model was trained with, else 128 or the
    /// model's positions if fewer).
    #[arg(long)]
    max_seq_len: Option<usize>,
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
    let device = stilts_train::config::DeviceKind::parse(&args.device)
        .map_err(|m| anyhow::anyhow!("--device {}: {m}", args.device))?
        .device()?;
    let model = match &args.adapter {
        Some(adapter) => SavedModel::with_adapter(&args.model, adapter, args.max_seq_len, &device)?,
        None => SavedModel::open(
            &args.model,
            args.tokenizer.as_deref(),
            args.max_seq_len,
            &device,
        )?,
    };
    // The task is found as an experiment's would be, so paths and errors match `run`.
    let data = DataFile {
        glue_dir: args.glue_dir.clone(),
        extra_dir: args.extra_dir.clone(),
    };
    let spec = resolve_named_task(Path::new("<flags>"), "--task", &args.task, &data)?;
    let split = args.split.clone().unwrap_or_else(|| spec.dev_split.clone());
    let head = model.head_for(&spec.task)?;
    let (data, logits) =
        model.predict_split(head, &spec.task, &spec.dir, &split, args.batch_size)?;
    if !data.data.is_labelled() {
        bail!("split {split} has no labels to score");
    }
    let scores = score_split(&spec.task, &data, &logits)?;
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
