//! `stilts train`: one phase from flags, for quick use; the same engine as `stilts run`.

use std::path::Path;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use stilts_train::config::{
    DataFile, Experiment, ExperimentFile, Keep, ModelFile, PhaseFile, RecipeFile, TaskEntryFile,
    TaskTableFile,
};

#[derive(Args)]
pub struct TrainArgs {
    /// Task(s): built-in names (RTE) or task files (configs/tasks/x.toml); several make a
    /// multitask phase.
    #[arg(long = "task", required = true)]
    tasks: Vec<String>,
    /// A Hugging Face model directory, or a hub id `org/name[@revision]` (downloaded into the
    /// Hugging Face cache; HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN apply).
    #[arg(long, conflicts_with_all = ["checkpoint", "random"])]
    model: Option<String>,
    /// A stilts model directory from a previous run (`.../model`); encoder only.
    #[arg(long)]
    checkpoint: Option<String>,
    /// A random encoder of the --encoder family (needs --tokenizer): for BERT
    /// HIDDEN,LAYERS,HEADS,INTERMEDIATE, for GPT N_EMBD,N_LAYER,N_HEAD, for ELMo
    /// PROJECTION,CELL,LAYERS (the tokenizer: any ELMo options file).
    #[arg(long, value_name = "SIZES")]
    random: Option<String>,
    /// The encoder family (default: read from the model; `bert` for --random).
    #[arg(long)]
    encoder: Option<String>,
    /// A tokenizer file (tokenizer.json, vocab.txt) or a directory holding one (default: the
    /// model directory's).
    #[arg(long)]
    tokenizer: Option<String>,
    /// Root of GLUE task directories (default $GLUE_DIR).
    #[arg(long)]
    glue_dir: Option<String>,
    /// Root of custom task data (default $STILTS_EXTRA_DIR).
    #[arg(long)]
    extra_dir: Option<String>,
    /// Output directory (default runs/train).
    #[arg(long, default_value = "runs/train")]
    output_dir: String,
    /// cpu, wgpu, wgpu:N, cuda:N, tch-cpu, tch-cuda:N (non-CPU devices need their cargo
    /// feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of restarts (seeds seed, seed+1, ...); the best on dev is reported.
    #[arg(long, default_value_t = 1)]
    restarts: usize,
    /// Downsample each task's training set to this many examples.
    #[arg(long)]
    train_examples: Option<usize>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    max_seq_len: Option<usize>,
    #[arg(long)]
    grad_accum_steps: Option<usize>,
    /// Weight of the encoder's auxiliary loss (GPT's language model; its preset: 0.5).
    #[arg(long)]
    aux_lm_weight: Option<f64>,
    #[arg(long)]
    bucket_by_length: bool,
    /// The model a run ends with: the last epoch's (the paper's) or the best on dev.
    #[arg(long, value_enum)]
    keep: Option<KeepArg>,
    /// Also write test-split predictions.
    #[arg(long)]
    predict_test: bool,
    /// Multitask: rank restarts on this task's dev score instead of the mean over tasks.
    #[arg(long, value_name = "TASK")]
    select_on: Option<String>,
    #[arg(long)]
    quiet: bool,
}

/// `--keep`, spelled as in the experiment TOML.
#[derive(Clone, Copy, ValueEnum)]
enum KeepArg {
    Last,
    #[value(name = "best_epoch")]
    BestEpoch,
}

/// `--random` as the family's `[model] random` table: BERT's four sizes, GPT's or ELMo's three.
fn parse_random(s: &str, encoder: Option<&str>) -> Result<toml::Table> {
    let keys: &[&str] = match encoder {
        Some("gpt") => &["n_embd", "n_layer", "n_head"],
        Some("elmo") => &["projection_dim", "cell_size", "n_layers"],
        _ => &[
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
        ],
    };
    let values = s
        .split(',')
        .map(|x| x.trim().parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|v| v.len() == keys.len());
    let Some(values) = values else {
        bail!(
            "--random wants {} integers ({}), got `{s}`",
            keys.len(),
            keys.join(",")
        );
    };
    Ok(keys
        .iter()
        .zip(values)
        .map(|(k, v)| ((*k).to_owned(), toml::Value::Integer(v)))
        .collect())
}

pub fn run(args: TrainArgs) -> Result<()> {
    let tasks = args
        .tasks
        .iter()
        .map(|t| match args.train_examples {
            None => TaskEntryFile::Name(t.clone()),
            Some(n) => TaskEntryFile::Table(TaskTableFile {
                task: t.clone(),
                data_root: None,
                train_examples: Some(n),
                dev_split: None,
                pair: None,
            }),
        })
        .collect();
    let file = ExperimentFile {
        name: Some("train".into()),
        output_dir: Some(args.output_dir.clone()),
        device: Some(args.device.clone()),
        devices: None,
        seed: Some(args.seed),
        model: ModelFile {
            encoder: args.encoder.clone(),
            pretrained: args.model.clone(),
            random: args
                .random
                .as_deref()
                .map(|r| parse_random(r, args.encoder.as_deref()))
                .transpose()?,
            checkpoint: args.checkpoint.clone(),
            load: None,
            tokenizer: args.tokenizer.clone(),
        },
        data: DataFile {
            glue_dir: args.glue_dir.clone(),
            extra_dir: args.extra_dir.clone(),
        },
        recipe: RecipeFile {
            epochs: args.epochs,
            batch_size: args.batch_size,
            lr: args.lr,
            max_seq_len: args.max_seq_len,
            grad_accum_steps: args.grad_accum_steps,
            aux_lm_weight: args.aux_lm_weight,
            bucket_by_length: args.bucket_by_length.then_some(true),
            keep: args.keep.map(|k| match k {
                KeepArg::Last => Keep::Last,
                KeepArg::BestEpoch => Keep::BestEpoch,
            }),
            ..RecipeFile::default()
        },
        phases: vec![PhaseFile {
            tasks,
            restarts: Some(args.restarts),
            predict_test: Some(args.predict_test),
            select_on: args.select_on.clone(),
            ..PhaseFile::default()
        }],
    };
    let exp = Experiment::from_file(&file, Path::new("<flags>"), "train")?;
    super::run::execute(&exp, args.quiet)
}
