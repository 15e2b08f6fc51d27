//! `stilts select`: rank candidate intermediate tasks, train the best few and the baseline,
//! keep the winner.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use stilts_train::config::{Experiment, Override, apply_overrides};
use stilts_train::models::device::DeviceChoice;
use stilts_train::predict::PredictOptions;
use stilts_train::rank::select::{self, SelectOptions, Selection};
use stilts_train::rank::{FeatureOptions, MethodName, RankOptions, Tuned, rank_tasks};

use super::rank::TaskArgs;

use crate::progress::ByteBars;

/// Rank the candidates with one method (no tuned encoder needed: semb by default), then train
/// the top k as STILTs (the candidate, then the target with a new head) and the target alone,
/// and report the winner by the target's best dev score with what it cost. Each experiment is
/// a directory under --output-dir; running the same command again resumes them.
#[derive(Args, Debug)]
pub struct SelectArgs {
    #[command(flatten)]
    pub tasks: TaskArgs,
    /// The ranking method: semb, size or random (the methods that need no tuned encoder).
    #[arg(long, default_value = "semb")]
    pub method: MethodName,
    /// How many of the best-ranked candidates to train.
    #[arg(long, default_value_t = 2)]
    pub top_k: usize,
    /// Restarts of the target phase (the best on dev counts).
    #[arg(long, default_value_t = 3)]
    pub restarts: usize,
    /// Downsample the target's training set (the paper's 1k regime: 1000).
    #[arg(long)]
    pub target_examples: Option<usize>,
    /// Downsample each intermediate's training set.
    #[arg(long)]
    pub intermediate_examples: Option<usize>,
    /// Epochs of the intermediate phase (default: the recipe's).
    #[arg(long)]
    pub intermediate_epochs: Option<usize>,
    /// Set a key of every experiment, as `stilts run --set` (e.g. `recipe.max_seq_len=64`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<Override>,
    /// Where the experiments and selection.json go (default `runs/select-<target>`).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// cpu, wgpu, wgpu:N, cuda:N, tch-cpu, tch-cuda:N (ranking and training).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars (logs only).
    #[arg(long)]
    pub quiet: bool,
    /// Print selection.json instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SelectArgs) -> Result<()> {
    if matches!(args.method, MethodName::EsmLogme | MethodName::LogmeTuned) {
        anyhow::bail!(
            "--method {}: select ranks before any encoder is tuned; use semb, size or random",
            args.method
        );
    }
    let bars = ByteBars::default();
    let (target, candidates) = args.tasks.tasks(&bars)?;
    let output_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/select-{}", target.task.name)));

    let started = Instant::now();
    let ranking = {
        let device = args.device.parse::<DeviceChoice>()?.device()?;
        let predictor = args
            .tasks
            .base(&PredictOptions::default(), &device, &bars)?;
        let options = RankOptions {
            methods: vec![args.method],
            features: args.tasks.features(FeatureOptions::default().batch_size),
            seed: args.tasks.seed,
            ..RankOptions::default()
        };
        rank_tasks(
            &predictor,
            &target,
            &candidates,
            &Tuned::default(),
            &options,
        )?
    };
    let rank_seconds = started.elapsed().as_secs_f64();
    let method_ranking = ranking.methods[0].clone();
    let order = method_ranking.order();
    println!(
        "{} ranks for {}: {} ({rank_seconds:.1} s)",
        method_ranking.method,
        target.task.name,
        order.join(" > ")
    );
    let top: Vec<_> = order
        .iter()
        .take(args.top_k)
        .filter_map(|name| candidates.iter().find(|c| c.task.name == *name))
        .collect();
    let options = SelectOptions {
        top_k: args.top_k,
        restarts: args.restarts,
        target_examples: args.target_examples,
        intermediate_examples: args.intermediate_examples,
        intermediate_epochs: args.intermediate_epochs,
        output_dir: output_dir.clone(),
        device: Some(args.device.clone()),
        seed: args.tasks.seed,
    };
    let planned = select::plan(&args.tasks.model, &target, &top, &options)?;
    let mut experiments = Vec::with_capacity(planned.len());
    let origin = Path::new("<stilts select>");
    for p in &planned {
        let file = apply_overrides(&p.file, &args.set, origin)?;
        let name = file.name.clone().unwrap_or_default();
        experiments.push(Experiment::from_file(&file, origin, &name)?);
    }
    let mut summaries = Vec::with_capacity(experiments.len());
    for (p, exp) in planned.iter().zip(&experiments) {
        println!("training {} ({})", p.condition, exp.output_dir.display());
        summaries.push(super::run::execute_summary(exp, args.quiet)?);
    }
    let selection = select::summarize(
        &target.task.name,
        method_ranking,
        &planned,
        &summaries,
        rank_seconds,
    )?;
    let json = serde_json::to_string_pretty(&selection)?;
    let path = select::selection_path(&output_dir);
    stilts_train::io::fs::write_atomic(&path, json.as_bytes())?;
    if args.json {
        println!("{json}");
    } else {
        print!("{}", render(&selection));
        println!("written to {}", path.display());
    }
    Ok(())
}

fn render(s: &Selection) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "condition",
        "rank",
        "best dev",
        "mean ± std",
        "degenerate",
        "wall",
    ]);
    for t in &s.trained {
        let rank = s
            .ranking
            .ranking
            .iter()
            .find(|r| r.candidate == t.condition)
            .map_or_else(|| "-".to_owned(), |r| r.rank.to_string());
        table.add_row([
            if t.condition == select::BASELINE {
                format!("{} (target only)", select::BASELINE)
            } else {
                format!("{} → {}", t.condition, s.target)
            },
            rank,
            format!("{:.2}", t.best_dev_score * 100.0),
            format!("{:.2} ± {:.2}", t.mean * 100.0, t.std * 100.0),
            t.degenerate.to_string(),
            format!("{:.0} s", t.train_s),
        ]);
    }
    let mut out = format!("{table}\nwinner on {}: {}\n", s.target, s.winner);
    out.push_str(&format!(
        "cost: ranking {:.0} s, training {:.0} s",
        s.rank_seconds, s.train_seconds
    ));
    if let Some(all) = s.estimated_all_seconds {
        out.push_str(&format!(
            "; training all {} candidates would take about {:.0} s",
            s.ranking.ranking.len(),
            all
        ));
    }
    out.push('\n');
    out
}
