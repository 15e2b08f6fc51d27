//! `stilts predict`: logits (and optionally the encoder's summary state) for JSON-lines records.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use stilts_train::layers::{LayerOptions, LayerPredictor, check_single};
use stilts_train::models::device::{DeviceChoice, Precision};
use stilts_train::models::hub::{self, HubOptions, ModelName};
use stilts_train::predict::{PredictOptions, Predictor, read_jsonl, read_jsonl_numbered};

use crate::progress::ByteBars;

/// Run a model over `{"text_a": ..., "text_b": ...}` lines; print one `{"logits": [...]}`
/// line per record. With --layers, run a released ELMo (a directory with its options file and
/// HDF5 weights) and print every layer of every word of each `text_a`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A stilts model directory (`<run>/model`), a Hugging Face model directory, or a hub id
    /// `org/name[@revision]` (downloaded into the Hugging Face cache; HF_ENDPOINT,
    /// HF_HUB_OFFLINE and HF_HOME are honoured).
    #[arg(long)]
    pub model: String,
    /// JSON-lines input: objects with `text_a` and optional `text_b`.
    #[arg(long)]
    pub input: PathBuf,
    /// A module directory (`<run>/adapter`: the LoRA updates, adapters and heads a
    /// parameter-efficient run trained, saved on their own) to attach to --model's encoder,
    /// which must be the base it was trained on (checked by hash); or a BERT LoRA directory
    /// saved by Hugging Face `peft` (docs/peft.md).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Also print `hidden`: the encoder's summary state (BERT: the last hidden state of
    /// `[CLS]`; GPT: the last layer's state at the extract token, or at the last token with
    /// --no-special-tokens).
    #[arg(long)]
    pub hidden: bool,
    /// Also print `lm_logits`: the language-model head's logits at that same position (GPT).
    #[arg(long)]
    pub lm_logits: bool,
    /// Feed the plain pieces, without the encoder's special tokens (Hugging Face's
    /// `add_special_tokens=False`).
    #[arg(long)]
    pub no_special_tokens: bool,
    /// Outputs of the head (default: the model's own, else 2). A head absent from the
    /// checkpoint is freshly initialised, so its logits are arbitrary.
    #[arg(long)]
    pub num_labels: Option<usize>,
    /// The head of a model with several (a multitask phase's), by task name.
    #[arg(long)]
    pub task: Option<String>,
    /// Most tokens per example, special tokens included (default: what the model was trained
    /// with, else 128 or the model's positions if fewer).
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Print `{"words": [...], "layers": [...]}` per record from a released ELMo: for layer 0
    /// (tokens) and each biLSTM layer, one [forward; backward] vector per word, sentence
    /// boundaries removed.
    #[arg(long, conflicts_with_all = ["hidden", "lm_logits", "no_special_tokens", "num_labels", "task", "max_seq_len", "adapter"])]
    pub layers: bool,
    /// With --layers: split each text at whitespace only (else punctuation is split off too).
    #[arg(long, requires = "layers")]
    pub pretokenized: bool,
    /// With --layers: carry the LSTM state from batch to batch in input order, as AllenNLP and
    /// bilm-tf do (results then depend on --batch-size and order).
    #[arg(long, requires = "layers")]
    pub stateful: bool,
    /// cpu, wgpu, wgpu:N, cuda:N, tch-cpu, tch-cuda:N (non-CPU devices need their cargo
    /// feature).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// f32, bf16 or f16 (reduced precision where the backend supports it).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

pub fn run(args: PredictArgs) -> Result<()> {
    if args.layers {
        return run_layers(&args);
    }
    // Bad input fails before a model is downloaded or loaded.
    let records = read_jsonl(&args.input)?;
    let dir = match ModelName::parse(&args.model)? {
        ModelName::Dir(dir) => dir,
        ModelName::Hub(model) => {
            let options = HubOptions::from_env()?;
            let dir = hub::download_model(&model, &options, &ByteBars::default())?;
            tracing::info!("{} is in {}", args.model, dir.display());
            dir
        }
    };
    let mut device = args.device.device()?;
    args.precision.apply(&mut device)?;
    let options = PredictOptions {
        num_labels: args.num_labels,
        task: args.task.clone(),
        max_seq_len: args.max_seq_len,
        batch_size: args.batch_size,
        hidden: args.hidden,
        special_tokens: !args.no_special_tokens,
        lm_logits: args.lm_logits,
        adapter: args.adapter.clone(),
    };
    let (predictor, report) = Predictor::load(&dir, &options, &device)
        .with_context(|| format!("loading the model in {}", dir.display()))?;
    if report
        .initialized
        .iter()
        .any(|p| p.starts_with("classifier."))
    {
        tracing::warn!(
            "{} has no classification head: it is freshly initialised, so the logits are arbitrary (use --hidden for features)",
            args.model
        );
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for chunk in records.chunks(args.batch_size.max(1)) {
        for prediction in predictor.predict_batch(chunk)? {
            writeln!(out, "{}", prediction.to_json_line()).context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}

fn run_layers(args: &PredictArgs) -> Result<()> {
    let numbered = read_jsonl_numbered(&args.input)?;
    check_single(&args.input, &numbered)?;
    let records: Vec<_> = numbered.into_iter().map(|(_, r)| r).collect();
    let mut device = args.device.device()?;
    args.precision.apply(&mut device)?;
    let options = LayerOptions {
        pretokenized: args.pretokenized,
        stateful: args.stateful,
    };
    let dir = PathBuf::from(&args.model);
    let mut predictor = LayerPredictor::load(&dir, options, &device)
        .with_context(|| format!("loading the ELMo in {}", dir.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for chunk in records.chunks(args.batch_size.max(1)) {
        for sentence in predictor.predict_batch(chunk)? {
            writeln!(out, "{}", sentence.to_json_line()).context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}
