//! Experiments: phases in sequence (STILTs), each run over its restart seeds, the best run on
//! dev carried into the next phase.
//!
//! Output layout under `output_dir`:
//!
//! ```text
//! experiment.json                 resolved configuration
//! summary.json                    every phase's seeds, scores, best seed, wall time
//! 00-<phase>/summary.json         one phase
//! 00-<phase>/seed-<s>/result.json one run: config, seeds, data manifest, hashes, per-epoch
//!                                 metrics, dev/test predictions, wall time
//! 00-<phase>/seed-<s>/val_history.json
//! 00-<phase>/seed-<s>/model/      final model (stilts-model.json, model.bpk, classifier/)
//! 00-<phase>/seed-<s>/checkpoint/ while running
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stilts_data::rng::derive_seed;
use stilts_data::tokenize::{BertTokenizer, Casing, EncodeOptions};

use crate::config::{Experiment, ModelSource, Phase};
use crate::error::{Result, TrainError};
use crate::model::{Carried, apply_head_policy, build_initial};
use crate::observer::Observer;
use crate::phase::{self, RunResult, RunSpec, write_json};
use crate::prepare::{LoadedTask, load_task};

/// The score of one restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedScore {
    pub seed: u64,
    pub dev_score: f64,
    pub degenerate: bool,
    pub wall_s: f64,
}

/// The restarts of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    pub phase: String,
    /// Every restart's score, in seed order.
    pub runs: Vec<SeedScore>,
    /// The seed whose model continues to the next phase.
    pub best_seed: u64,
    pub best_dev_score: f64,
    pub mean: f64,
    /// Sample standard deviation (0 for one run).
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Majority-class / constant baseline on dev.
    pub baseline: f64,
    /// Number of degenerate runs.
    pub degenerate: usize,
    /// Run directory of the best run.
    pub best_run_dir: PathBuf,
}

/// The whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentSummary {
    pub name: String,
    pub phases: Vec<PhaseSummary>,
    /// Wall time of this invocation.
    pub wall_s: f64,
}

/// Picks the best run on dev (the first of equal scores; NaN never wins).
pub fn best_of(results: &[RunResult]) -> Option<usize> {
    phase::first_best(results.iter().map(|r| r.dev_score)).or(if results.is_empty() {
        None
    } else {
        Some(0)
    })
}

/// Summarises restarts.
pub fn summarize(phase: &str, results: &[RunResult], run_dirs: &[PathBuf]) -> Option<PhaseSummary> {
    let best = best_of(results)?;
    let scores: Vec<f64> = results.iter().map(|r| r.dev_score).collect();
    let n = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let std = if scores.len() > 1 {
        (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some(PhaseSummary {
        phase: phase.to_owned(),
        runs: results
            .iter()
            .map(|r| SeedScore {
                seed: r.seed,
                dev_score: r.dev_score,
                degenerate: r.degenerate,
                wall_s: r.wall_s,
            })
            .collect(),
        best_seed: results[best].seed,
        best_dev_score: results[best].dev_score,
        mean,
        std,
        min: scores.iter().copied().fold(f64::INFINITY, f64::min),
        max: scores.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        baseline: results[best].baseline,
        degenerate: results.iter().filter(|r| r.degenerate).count(),
        best_run_dir: run_dirs.get(best).cloned().unwrap_or_default(),
    })
}

/// Loads the tokenizer of an experiment: `tokenizer.json`, or `vocab.txt` with its casing
/// guessed from the vocabulary.
pub fn load_tokenizer(path: &Path) -> Result<BertTokenizer> {
    let tok = if path.extension().is_some_and(|e| e == "json") {
        BertTokenizer::from_tokenizer_json(path)
    } else {
        Casing::guess_from_vocab(path).and_then(|c| BertTokenizer::from_vocab(path, c))
    };
    tok.map_err(TrainError::from)
}

/// The directory of a phase.
pub fn phase_dir(exp: &Experiment, index: usize, phase: &Phase) -> PathBuf {
    exp.output_dir.join(format!("{index:02}-{}", phase.name))
}

fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    format!("{:x}", h.finalize())
}

/// Runs an experiment; finished runs found on disk are reused and interrupted runs resume from
/// their checkpoints, so running the same command again continues where it stopped.
pub fn run_experiment(exp: &Experiment, observer: &mut dyn Observer) -> Result<ExperimentSummary> {
    let started = Instant::now();
    std::fs::create_dir_all(&exp.output_dir).map_err(|e| TrainError::io(&exp.output_dir, e))?;
    write_json(&exp.output_dir.join("experiment.json"), exp)?;
    let base_tokenizer = load_tokenizer(&exp.tokenizer)?;
    let device = exp.device.device()?;
    device.seed(derive_seed(exp.seed, &["init".into()]));
    let mut carried: Carried =
        build_initial(&exp.model, base_tokenizer.vocab_size(), None, &device)?;
    let max_positions = carried.meta.bert.max_position_embeddings;
    let mut upstream = fingerprint(&[
        &serde_json::to_vec(&exp.model).unwrap_or_default(),
        &exp.seed.to_le_bytes(),
        model_source_identity(&exp.model).as_bytes(),
    ]);
    let mut summaries = Vec::new();
    for (index, phase) in exp.phases.iter().enumerate() {
        if phase.recipe.max_seq_len > max_positions {
            return Err(TrainError::config(
                &exp.source,
                format!("phases[{index}].recipe.max_seq_len"),
                format!(
                    "{} exceeds the model's max_position_embeddings {max_positions}",
                    phase.recipe.max_seq_len
                ),
            ));
        }
        let tokenizer = base_tokenizer
            .clone()
            .with_options(EncodeOptions {
                max_seq_len: phase.recipe.max_seq_len,
                ..EncodeOptions::default()
            })
            .map_err(TrainError::from)?;
        let loaded: Vec<LoadedTask> = phase
            .tasks
            .iter()
            .map(|t| load_task(t, &tokenizer, phase.predict_test))
            .collect::<Result<_>>()?;
        for l in &loaded {
            tracing::info!(phase = %phase.name, task = %l.spec.task.name, train = l.train.data.len(), dev = l.dev.data.len(), "data loaded");
        }
        let dir = phase_dir(exp, index, phase);
        let phase_json = serde_json::to_vec(phase).map_err(|e| TrainError::json(&dir, e))?;
        let mut results = Vec::new();
        let mut run_dirs = Vec::new();
        let mut best: Option<(f64, Carried)> = None;
        for &seed in &phase.seeds {
            let data = loaded
                .iter()
                .enumerate()
                .map(|(t, l)| l.for_seed(seed, (index * 1000 + t) as u64, &tokenizer))
                .collect::<Result<Vec<_>>>()?;
            device.seed(derive_seed(seed, &["head".into(), index.into()]));
            let tasks: Vec<_> = data.iter().map(|d| &d.task).collect();
            let start = apply_head_policy(&phase.name, &phase.head, &carried, &tasks, &device)?;
            let run_dir = dir.join(format!("seed-{seed}"));
            let spec = RunSpec {
                phase,
                phase_index: index,
                seed,
                data: &data,
                tokenizer: &tokenizer,
                run_dir: run_dir.clone(),
                device: device.clone(),
                fingerprint: fingerprint(&[&phase_json, &seed.to_le_bytes(), upstream.as_bytes()]),
            };
            let (result, model) = phase::run(&spec, &start, observer)?;
            bundle_tokenizer(&exp.tokenizer, &phase::model_dir(&run_dir))?;
            let better = best
                .as_ref()
                .is_none_or(|(s, _)| result.dev_score > *s || s.is_nan());
            if better {
                best = Some((result.dev_score, model));
            }
            results.push(result);
            run_dirs.push(run_dir);
        }
        let summary = summarize(&phase.name, &results, &run_dirs).ok_or_else(|| {
            TrainError::config(&exp.source, format!("phases[{index}]"), "no runs")
        })?;
        write_json(&dir.join("summary.json"), &summary)?;
        tracing::info!(phase = %phase.name, best_seed = summary.best_seed, best = summary.best_dev_score, mean = summary.mean, std = summary.std, degenerate = summary.degenerate, "phase done");
        let best_idx = best_of(&results).unwrap_or(0);
        upstream = results[best_idx].weights_sha256.clone();
        if let Some((_, model)) = best {
            carried = model;
        }
        summaries.push(summary);
    }
    let summary = ExperimentSummary {
        name: exp.name.clone(),
        phases: summaries,
        wall_s: started.elapsed().as_secs_f64(),
    };
    write_json(&exp.output_dir.join("summary.json"), &summary)?;
    Ok(summary)
}

/// Copies the tokenizer next to a saved model (as `tokenizer.json` or `vocab.txt`), so the
/// model directory alone is enough to continue from (`model.checkpoint` finds it there).
fn bundle_tokenizer(tokenizer: &Path, model_dir: &Path) -> Result<()> {
    let name = if tokenizer.extension().is_some_and(|e| e == "json") {
        "tokenizer.json"
    } else {
        "vocab.txt"
    };
    let dest = model_dir.join(name);
    if dest.exists() || !model_dir.is_dir() {
        return Ok(());
    }
    let bytes = std::fs::read(tokenizer).map_err(|e| TrainError::io(tokenizer, e))?;
    crate::checkpoint::write_atomic(&dest, &bytes)
}

fn model_source_identity(source: &ModelSource) -> String {
    let file = match source {
        ModelSource::Pretrained { dir } => Some(dir.join("model.safetensors")),
        ModelSource::Checkpoint { dir, .. } => Some(dir.join(crate::model::WEIGHTS_FILE)),
        ModelSource::Random { .. } => None,
    };
    file.and_then(|f| {
        std::fs::metadata(&f)
            .ok()
            .map(|m| format!("{}:{}", f.display(), m.len()))
    })
    .unwrap_or_default()
}
