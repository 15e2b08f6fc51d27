//! `stilts select`: rank the candidates, train the best few as STILTs experiments beside the
//! target-only baseline, keep the winner by dev score. This module plans the experiments (each
//! an ordinary experiment directory that `stilts run` resumes and `stilts show` reads) and
//! summarises their results; the front end runs them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stilts_schema::results::ExperimentSummary;

use super::{MethodRanking, RankError};
use crate::config::{
    ExperimentFile, HeadKind, ModelFile, PhaseFile, RecipeFile, TaskEntryFile, TaskSpec,
    TaskTableFile,
};

/// The condition name of the target-only experiment.
pub const BASELINE: &str = "none";

/// What `stilts select` trains.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectOptions {
    /// How many of the best-ranked candidates are trained.
    pub top_k: usize,
    /// Restarts of the target phase (the best on dev is kept).
    pub restarts: usize,
    /// Downsample the target's training set (the paper's 1k regime: 1000).
    pub target_examples: Option<usize>,
    /// Downsample each intermediate's training set.
    pub intermediate_examples: Option<usize>,
    /// Epochs of the intermediate phase (default: the recipe's).
    pub intermediate_epochs: Option<usize>,
    /// Where the experiments go, one directory each.
    pub output_dir: PathBuf,
    /// The device every experiment runs on.
    pub device: Option<String>,
    /// The experiments' seed.
    pub seed: u64,
}

/// One experiment to run: the baseline or a candidate's STILTs chain.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedExperiment {
    /// [`BASELINE`] or the candidate's task name.
    pub condition: String,
    /// The experiment (its `output_dir` under [`SelectOptions::output_dir`]).
    pub file: ExperimentFile,
}

fn task_entry(reference: &str, train_examples: Option<usize>) -> TaskEntryFile {
    match train_examples {
        None => TaskEntryFile::Name(reference.to_owned()),
        Some(n) => TaskEntryFile::Table(TaskTableFile {
            task: reference.to_owned(),
            data_root: None,
            train_examples: Some(n),
            dev_split: None,
            pair: None,
        }),
    }
}

/// A directory name for a condition: letters, digits, `-` and `_` kept, the rest `_`.
fn dir_name(i: usize, condition: &str) -> String {
    let safe: String = condition
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{i:02}-{safe}")
}

/// The baseline experiment, then one per candidate in `top` (already ranked best first): the
/// candidate as the intermediate phase, then the target with a new head, as the paper runs
/// STILTs. `model` is the base model as the user named it (a directory or a hub id).
pub fn plan(
    model: &str,
    target: &TaskSpec,
    top: &[&TaskSpec],
    options: &SelectOptions,
) -> Result<Vec<PlannedExperiment>, RankError> {
    if options.top_k == 0 || options.restarts == 0 {
        return Err(RankError::Options(
            "--top-k and --restarts must be at least 1".to_owned(),
        ));
    }
    let target_phase = |head: Option<HeadKind>| PhaseFile {
        tasks: vec![task_entry(&target.reference, options.target_examples)],
        restarts: Some(options.restarts),
        head,
        ..PhaseFile::default()
    };
    let experiment = |i: usize, condition: &str, phases: Vec<PhaseFile>| PlannedExperiment {
        condition: condition.to_owned(),
        file: ExperimentFile {
            name: Some(format!(
                "select-{}-{}",
                target.task.name,
                dir_name(i, condition)
            )),
            output_dir: Some(
                options
                    .output_dir
                    .join(dir_name(i, condition))
                    .to_string_lossy()
                    .into_owned(),
            ),
            device: options.device.clone(),
            seed: Some(options.seed),
            model: ModelFile {
                pretrained: Some(model.to_owned()),
                ..ModelFile::default()
            },
            phases,
            ..ExperimentFile::default()
        },
    };
    let mut out = vec![experiment(0, BASELINE, vec![target_phase(None)])];
    for (i, spec) in top.iter().enumerate() {
        let intermediate = PhaseFile {
            tasks: vec![task_entry(&spec.reference, options.intermediate_examples)],
            recipe: RecipeFile {
                epochs: options.intermediate_epochs,
                ..RecipeFile::default()
            },
            ..PhaseFile::default()
        };
        out.push(experiment(
            i + 1,
            &spec.task.name,
            vec![intermediate, target_phase(Some(HeadKind::New))],
        ));
    }
    Ok(out)
}

/// One trained condition's result on the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// [`BASELINE`] or the candidate.
    pub condition: String,
    /// The experiment's directory.
    pub output_dir: PathBuf,
    /// The target's best dev score over restarts.
    pub best_dev_score: f64,
    /// Its mean and standard deviation over restarts.
    pub mean: f64,
    /// Standard deviation over restarts.
    pub std: f64,
    /// Restarts at or below the majority-class baseline.
    pub degenerate: usize,
    /// Seconds of training and evaluation its runs recorded (every phase and restart, whichever
    /// invocation ran them).
    pub train_s: f64,
    /// Seconds this invocation spent on it (little when its runs had finished before).
    pub wall_s: f64,
}

/// What `stilts select` found: `selection.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The target.
    pub target: String,
    /// The ranking used (one method's).
    pub ranking: MethodRanking,
    /// The baseline first, then the trained candidates in rank order.
    pub trained: Vec<Trained>,
    /// The condition with the best target dev score ([`BASELINE`] when no candidate beats it;
    /// the first of equal scores).
    pub winner: String,
    /// Seconds spent ranking.
    pub rank_seconds: f64,
    /// Seconds of training the selection cost: the trained experiments' recorded time.
    pub train_seconds: f64,
    /// What training every candidate would have cost at the mean time of the candidates
    /// trained here, plus the baseline.
    pub estimated_all_seconds: Option<f64>,
}

/// Summarises the experiments' results (`summaries` in the order of [`plan`]).
pub fn summarize(
    target: &str,
    ranking: MethodRanking,
    planned: &[PlannedExperiment],
    summaries: &[ExperimentSummary],
    rank_seconds: f64,
) -> Result<Selection, RankError> {
    let mut trained = Vec::with_capacity(planned.len());
    for (p, s) in planned.iter().zip(summaries) {
        let phase = s.phases.last().ok_or_else(|| {
            RankError::Options(format!("experiment {} has no phase results", s.name))
        })?;
        trained.push(Trained {
            condition: p.condition.clone(),
            output_dir: PathBuf::from(p.file.output_dir.clone().unwrap_or_default()),
            best_dev_score: phase.best_dev_score,
            mean: phase.mean,
            std: phase.std,
            degenerate: phase.degenerate,
            train_s: s
                .phases
                .iter()
                .flat_map(|p| p.runs.iter().map(|r| r.wall_s))
                .sum(),
            wall_s: s.wall_s,
        });
    }
    let mut winner = 0;
    for (i, t) in trained.iter().enumerate() {
        if t.best_dev_score > trained[winner].best_dev_score {
            winner = i;
        }
    }
    let train_seconds: f64 = trained.iter().map(|t| t.train_s).sum();
    let candidates = &trained[1.min(trained.len())..];
    let estimated_all_seconds = (!candidates.is_empty()).then(|| {
        let mean = candidates.iter().map(|t| t.train_s).sum::<f64>() / candidates.len() as f64;
        trained[0].train_s + mean * ranking.ranking.len() as f64
    });
    Ok(Selection {
        target: target.to_owned(),
        ranking,
        winner: trained
            .get(winner)
            .map(|t| t.condition.clone())
            .unwrap_or_else(|| BASELINE.to_owned()),
        trained,
        rank_seconds,
        train_seconds,
        estimated_all_seconds,
    })
}

/// The selection file of an output directory.
pub fn selection_path(output_dir: &Path) -> PathBuf {
    output_dir.join("selection.json")
}
