//! `stilts rank`: candidate intermediate tasks for a target, scored before any fine-tuning.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use stilts_train::config::TaskSpec;
use stilts_train::models::burn::tensor::Device;
use stilts_train::models::device::DeviceChoice;
use stilts_train::models::hub::{self, HubOptions, ModelName};
use stilts_train::predict::{PredictOptions, Predictor};
use stilts_train::rank::evaluate::{Evaluation, evaluate, read_matrix};
use stilts_train::rank::{
    FeatureOptions, MethodName, Pooling, RankOptions, Ranking, Tuned, rank_tasks, resolve_tasks,
};

use crate::progress::ByteBars;

/// Rank candidate intermediate tasks for a target before fine-tuning on it. Methods: semb
/// (cosine of mean sentence embeddings, Poth et al. 2021), esm-logme (LogME of the target's
/// features mapped by each candidate's Embedding Space Map, Schulte et al. 2024), logme-tuned
/// (LogME of the target's features from each candidate's tuned encoder: the costly ceiling),
/// and the baselines every method must beat: size (larger training set first) and random.
/// Prints each method's scores and ranks, what it cost, and the LogME of the base encoder's
/// target features.
#[derive(Args, Debug)]
pub struct RankArgs {
    #[command(flatten)]
    pub tasks: TaskArgs,
    /// The methods, comma-separated, in the order to report them: semb, esm-logme,
    /// logme-tuned, size, random (esm-logme and logme-tuned need --tuned or --esm).
    #[arg(long, value_delimiter = ',', default_value = "semb,size,random")]
    pub methods: Vec<MethodName>,
    /// The encoder after intermediate training on a candidate, `CANDIDATE=DIR` (a stilts model
    /// directory such as `<run>/model`, or a Hugging Face one); repeat or separate with commas.
    #[arg(long, value_delimiter = ',', value_parser = pair)]
    pub tuned: Vec<(String, PathBuf)>,
    /// A ready Embedding Space Map for a candidate, `CANDIDATE=DIR` (one stilts saved, or one
    /// hf-dataset-selector's `ESM.save_pretrained` wrote); repeat or separate with commas.
    #[arg(long, value_delimiter = ',', value_parser = pair)]
    pub esm: Vec<(String, PathBuf)>,
    /// Where fitted maps are saved and found again (default: `$STILTS_CACHE/esm`).
    #[arg(long)]
    pub esm_dir: Option<PathBuf>,
    /// Examples per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Most tokens per example (default: what the model was trained with, else 128).
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// A transfer matrix (`transfer.csv` from `cargo xtask report` of the `transfer` grid): judge
    /// each method's ranking against the measured STILTs scores of the target (Spearman,
    /// NDCG@3, regret@1 and @3).
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// Print the ranking as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// cpu, wgpu, wgpu:N, cuda:N, tch-cpu, tch-cuda:N (non-CPU devices need their cargo
    /// feature).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
}

/// What `stilts rank` and `stilts select` share: the model, the tasks, how they are sampled.
#[derive(Args, Debug)]
pub struct TaskArgs {
    /// The base encoder: a stilts model directory, a Hugging Face directory or a hub id
    /// `org/name[@revision]`.
    #[arg(long)]
    pub model: String,
    /// The target task: a built-in name (RTE) or a task file.
    #[arg(long)]
    pub target: String,
    /// The candidate intermediate tasks, comma-separated (names or task files).
    #[arg(long, value_delimiter = ',', required = true)]
    pub candidates: Vec<String>,
    /// Most training examples encoded per task (a seeded sample of larger splits).
    #[arg(long, default_value_t = 1000)]
    pub max_examples: usize,
    /// How token states become one vector: mean (over tokens), pooled (what a head reads) or
    /// summary (the `[CLS]` or extract token's state).
    #[arg(long, default_value = "mean")]
    pub pooling: Pooling,
    /// Seed of the samples and of the random baseline (and, for select, of training).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl TaskArgs {
    /// The tasks, resolved (bad names fail before any model is fetched) and fetched when a
    /// built-in one is on no data root.
    pub fn tasks(&self, bars: &ByteBars) -> Result<(TaskSpec, Vec<TaskSpec>)> {
        let (mut target, mut candidates) = resolve_tasks(&self.target, &self.candidates)?;
        for spec in std::iter::once(&mut target).chain(candidates.iter_mut()) {
            spec.fetch(bars)?;
        }
        Ok((target, candidates))
    }

    /// The base model, downloaded first when named by hub id.
    pub fn base(
        &self,
        options: &PredictOptions,
        device: &Device,
        bars: &ByteBars,
    ) -> Result<Predictor> {
        let dir: PathBuf = match ModelName::parse(&self.model)? {
            ModelName::Dir(dir) => dir,
            ModelName::Hub(model) => hub::download_model(&model, &HubOptions::from_env()?, bars)?,
        };
        let (predictor, _) = Predictor::load(&dir, options, device)
            .with_context(|| format!("loading the model in {}", dir.display()))?;
        Ok(predictor)
    }

    /// How the tasks' samples are drawn and encoded.
    pub fn features(&self, batch_size: usize) -> FeatureOptions {
        FeatureOptions {
            max_examples: self.max_examples,
            pooling: self.pooling,
            batch_size,
        }
    }
}

pub fn run(args: RankArgs) -> Result<()> {
    let bars = ByteBars::default();
    let (target, candidates) = args.tasks.tasks(&bars)?;
    let device = args.device.device()?;
    let options = PredictOptions {
        max_seq_len: args.max_seq_len,
        batch_size: args.batch_size,
        ..PredictOptions::default()
    };
    let predictor = args.tasks.base(&options, &device, &bars)?;
    let tuned = Tuned {
        models: args.tuned.clone(),
        esms: args.esm.clone(),
        predict: options,
    };
    let defaults = RankOptions::default();
    let options = RankOptions {
        methods: args.methods.clone(),
        features: args.tasks.features(args.batch_size),
        seed: args.tasks.seed,
        esm_dir: args.esm_dir.clone().or(defaults.esm_dir),
        ..defaults
    };
    // A bad matrix file fails before anything is encoded.
    let cells = match &args.matrix {
        Some(path) => Some(read_matrix(path)?),
        None => None,
    };
    let ranking = rank_tasks(&predictor, &target, &candidates, &tuned, &options)?;
    let evaluation = match (&cells, &args.matrix) {
        (Some(cells), Some(path)) => {
            let references: Vec<(String, String)> = candidates
                .iter()
                .map(|s| (s.task.name.clone(), s.reference.clone()))
                .collect();
            evaluate(&ranking, &references, cells, path)?
        }
        _ => Vec::new(),
    };
    if args.json {
        #[derive(serde::Serialize)]
        struct Output<'a> {
            #[serde(flatten)]
            ranking: &'a Ranking,
            #[serde(skip_serializing_if = "<[Evaluation]>::is_empty")]
            evaluation: &'a [Evaluation],
        }
        let out = Output {
            ranking: &ranking,
            evaluation: &evaluation,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render(&ranking, &args.tasks.model));
        for e in &evaluation {
            print!("{}", render_evaluation(e));
        }
    }
    Ok(())
}

/// How each method's ranking compares with the measured matrix.
fn render_evaluation(e: &Evaluation) -> String {
    let mut measured: Vec<(&String, f64)> =
        e.candidates.iter().zip(e.stilts.iter().copied()).collect();
    measured.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out = format!(
        "\nagainst {} ({}, {}): measured {}\n",
        e.matrix.display(),
        e.encoder,
        e.regime,
        measured
            .iter()
            .map(|(c, s)| format!("{c} {:.1}", s * 100.0))
            .collect::<Vec<_>>()
            .join(" > ")
    );
    if !e.unmeasured.is_empty() {
        out.push_str(&format!("not in the matrix: {}\n", e.unmeasured.join(", ")));
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "method",
        "Spearman",
        "NDCG@3",
        "regret@1 %",
        "regret@3 %",
        "seconds",
    ]);
    let cell = |v: Option<f64>, ci: Option<[f64; 2]>, d: usize| {
        let v = v.map_or_else(|| "-".to_owned(), |v| format!("{v:.d$}"));
        match ci {
            Some([lo, hi]) => format!("{v} [{lo:.d$}, {hi:.d$}]"),
            None => v,
        }
    };
    for m in &e.methods {
        let ci = m.intervals.as_ref();
        table.add_row([
            m.method.clone(),
            cell(m.spearman, ci.and_then(|c| c.spearman), 3),
            cell(m.ndcg_at_3, ci.map(|c| c.ndcg_at_3), 3),
            cell(m.regret_at_1, ci.map(|c| c.regret_at_1), 2),
            cell(m.regret_at_3, ci.map(|c| c.regret_at_3), 2),
            format!("{:.1}", m.seconds),
        ]);
    }
    if let Some(c) = e.methods.iter().find_map(|m| m.intervals.as_ref()) {
        out.push_str(&format!(
            "[95% intervals over {} resamples of each cell's restarts]\n",
            c.resamples
        ));
    }
    out.push_str(&format!("{table}\n"));
    out
}

/// `CANDIDATE=DIR`.
fn pair(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(dir)))
        }
        _ => Err(format!("`{s}`: expected CANDIDATE=DIR")),
    }
}

/// The ranking as a person reads it: one row per candidate, a score and rank per method, then
/// what each method cost.
fn render(r: &Ranking, model: &str) -> String {
    let mut out = format!(
        "target {} ({} of {} training examples), model {model}, {} pooling, {} dims\n",
        r.target.task,
        r.target.examples,
        r.target.train_size,
        r.pooling.name(),
        r.dim
    );
    if let Some(v) = r.target_logme {
        out.push_str(&format!(
            "LogME of the base encoder's target features: {v:.4} (the floor a tuned encoder should beat)\n"
        ));
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["candidate".to_owned(), "train size".to_owned()];
    header.extend(r.methods.iter().map(|m| format!("{} (rank)", m.method)));
    table.set_header(header);
    for c in &r.candidates {
        let mut row = vec![c.task.clone(), c.train_size.to_string()];
        for m in &r.methods {
            let cell = m
                .ranking
                .iter()
                .find(|e| e.candidate == c.task)
                .map_or_else(
                    || "-".to_owned(),
                    |e| match e.score {
                        Some(s) => format!("{} ({})", short(s), e.rank),
                        None => format!("- ({})", e.rank),
                    },
                );
            row.push(cell);
        }
        table.add_row(row);
    }
    out.push_str(&format!("{table}\n"));
    for m in &r.methods {
        out.push_str(&format!(
            "{:>8}: {} ({:.1} s)\n",
            m.method,
            m.order().join(" > "),
            m.seconds
        ));
    }
    out
}

/// A score in a table cell: four decimals, or an integer for counts.
fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}
