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

use sha2::{Digest, Sha256};
use stilts_data::encoding::{InputEncoder, Tokenizer};
use stilts_data::rng::derive_seed;
use stilts_io::files::TokenizerFiles;
use stilts_models::peft::PeftConfig;

use crate::config::{Experiment, ModelSource, Phase};
use crate::error::{Result, TrainError};
use crate::model::peft_file::{fusion_of, load_fused};
use crate::model::store::check_max_seq_len;
use crate::model::{Carried, apply_head_policy, build_initial};
use crate::observer::Observer;
use crate::prepare::{LoadedTask, load_task};
use crate::results::{
    ExperimentSummary, PhaseSummary, RunResult, SeedScore, best_of, model_dir, write_json,
};
use crate::trainer::{self, RunSpec};

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

/// The tokenizer a path names (a tokenizer file or a directory holding one), as every command
/// loads it ([`Tokenizer::at`]).
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    Tokenizer::at(path).map_err(TrainError::from)
}

/// The file whose OS lock a running experiment holds in its output directory.
pub const LOCK_FILE: &str = ".stilts.lock";

/// Takes the output directory for this process: a second `stilts run` (or library call) on the
/// same directory is refused, naming the holder, instead of both writing the same runs. The
/// lock goes with the process, however it ends.
pub fn lock_output_dir(dir: &Path) -> Result<stilts_io::lock::FileLock> {
    let path = dir.join(LOCK_FILE);
    stilts_io::lock::FileLock::try_acquire(&path)?.map_err(|holder| TrainError::Locked {
        dir: dir.to_path_buf(),
        holder,
    })
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
/// their checkpoints, so running the same command again continues where it stopped. A hub
/// model and the built-in tasks no data root holds are fetched first
/// ([`Experiment::fetch_model`], [`Experiment::fetch_data`]).
pub fn run_experiment(exp: &Experiment, observer: &mut dyn Observer) -> Result<ExperimentSummary> {
    let started = Instant::now();
    let mut exp = exp.clone();
    exp.fetch_model(&stilts_io::progress::LogProgress)?;
    exp.fetch_data(&stilts_io::progress::LogProgress)?;
    let exp = &exp;
    std::fs::create_dir_all(&exp.output_dir).map_err(|e| TrainError::io(&exp.output_dir, e))?;
    let _lock = lock_output_dir(&exp.output_dir)?;
    // Holding the lock, any temporary file here is a killed writer's.
    let swept = stilts_io::fs::remove_stale_temps(&exp.output_dir)?;
    if swept > 0 {
        tracing::info!(swept, "removed temporary files of an interrupted run");
    }
    write_json(&exp.output_dir.join("experiment.json"), exp)?;
    let tokenizer_path = exp.tokenizer.as_deref().ok_or_else(|| {
        TrainError::config(
            &exp.source,
            "model.tokenizer",
            "no tokenizer for this model",
        )
    })?;
    let tokenizer_files = TokenizerFiles::at(tokenizer_path)
        .map_err(|e| TrainError::config(&exp.source, "model.tokenizer", e.to_string()))?;
    let base_tokenizer = Tokenizer::load(&tokenizer_files)?;
    let device = exp.device.device()?;
    let replicas: Vec<burn::tensor::Device> = exp
        .replicas
        .iter()
        .map(|d| d.device())
        .collect::<Result<_>>()?;
    check_precisions(exp, &device, &replicas)?;
    device.seed(derive_seed(exp.seed, &["init".into()]));
    let mut carried: Carried = build_initial(&exp.model, base_tokenizer.vocab_size(), &device)?;
    let mut upstream = fingerprint(&[
        &serde_json::to_vec(&exp.model).unwrap_or_default(),
        &exp.seed.to_le_bytes(),
        model_source_identity(&exp.model).as_bytes(),
    ]);
    let mut summaries = Vec::new();
    for (index, phase) in exp.phases.iter().enumerate() {
        let modules = check_phase(exp, index, phase, &carried)?;
        let tokenizer = base_tokenizer
            .clone()
            .with_max_seq_len(phase.recipe.max_seq_len)?;
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
            let tasks: Vec<_> = data.iter().map(|d| (&d.task, d.train.pair)).collect();
            let start = apply_head_policy(&phase.name, &phase.head, &carried, &tasks, &device)?;
            let start = with_modules(start, &modules, exp, index, &device)?;
            let run_dir = dir.join(format!("seed-{seed}"));
            let spec = RunSpec {
                phase,
                phase_index: index,
                seed,
                data: &data,
                tokenizer: &tokenizer,
                run_dir: run_dir.clone(),
                device: device.clone(),
                replicas: replicas.clone(),
                fingerprint: fingerprint(&[&phase_json, &seed.to_le_bytes(), upstream.as_bytes()]),
                tokenizer_files: Some(&tokenizer_files),
            };
            let (result, model) = trainer::run(&spec, &start, observer)?;
            // Runs finished before models carried their tokenizer get it now.
            let saved = model_dir(&run_dir);
            if saved.is_dir() {
                tokenizer_files.copy_into(&saved)?;
            }
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

/// The start of a run with the phase's parameter-efficient modules: those the model lacks
/// added, a fusion's adapters read from their module directories.
fn with_modules(
    start: Carried,
    modules: &PeftConfig,
    exp: &Experiment,
    index: usize,
    device: &burn::tensor::Device,
) -> Result<Carried> {
    let fuse = start.meta.peft.fusion.is_none() && modules.fusion.is_some();
    let start = start
        .with_peft(modules, device)
        .map_err(|m| TrainError::config(&exp.source, format!("phases[{index}].recipe"), m))?;
    match (&exp.phases[index].recipe.fusion, fuse) {
        (Some(fusion), true) => load_fused(start, fusion),
        _ => Ok(start),
    }
}

/// Refuses, before anything trains, a phase whose `precision` one of the experiment's devices
/// does not compute in, naming the phase's key and the device as the experiment spells it.
fn check_precisions(
    exp: &Experiment,
    device: &burn::tensor::Device,
    replicas: &[burn::tensor::Device],
) -> Result<()> {
    let devices: Vec<_> = match replicas.is_empty() {
        true => vec![(exp.device, device)],
        false => exp.replicas.iter().copied().zip(replicas).collect(),
    };
    for (index, phase) in exp.phases.iter().enumerate() {
        let precision = phase.recipe.compute_precision();
        for (kind, device) in &devices {
            if precision.check(device).is_err() {
                return Err(TrainError::config(
                    &exp.source,
                    format!("phases[{index}].recipe.precision"),
                    format!(
                        "device `{}` does not compute in {precision} (its backend has no {precision} type); use f32 there",
                        kind.0
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What can only be checked once the model is built: `max_seq_len` against its positions, the
/// frozen groups against its parameter groups, the modules against those the model carries.
/// Returns the modules the phase trains.
fn check_phase(
    exp: &Experiment,
    index: usize,
    phase: &Phase,
    carried: &Carried,
) -> Result<PeftConfig> {
    let key = |k: &str| format!("phases[{index}].recipe.{k}");
    check_max_seq_len(&carried.meta.encoder, phase.recipe.max_seq_len)
        .map_err(|m| TrainError::config(&exp.source, key("max_seq_len"), m))?;
    let mut peft = phase.recipe.peft();
    if let Some(f) = &phase.recipe.fusion {
        peft.fusion = Some(
            fusion_of(f).map_err(|m| TrainError::config(&exp.source, key("fusion.adapters"), m))?,
        );
    }
    if !peft.is_empty()
        && let Err(m) = stilts_models::peft::supported_by(carried.meta.encoder.kind(), &peft)
    {
        // The key of the first module the encoder lacks.
        let which = match (&peft.adapter, &peft.fusion) {
            (Some(_), _) => "adapter",
            (None, Some(_)) => "fusion",
            (None, None) => "lora",
        };
        return Err(TrainError::config(&exp.source, key(which), m));
    }
    carried
        .peft_to_add(&peft)
        .map_err(|(k, m)| TrainError::config(&exp.source, key(k), m))?;
    let groups = carried.meta.encoder.param_groups();
    for (k, g) in phase.recipe.freeze.iter().map(|g| ("freeze", g)).chain(
        phase
            .recipe
            .modules_to_save
            .iter()
            .map(|g| ("modules_to_save", g)),
    ) {
        if g != "all" && !groups.contains(g) {
            return Err(TrainError::config(
                &exp.source,
                key(k),
                format!(
                    "the {} encoder has no parameter group `{g}` (groups: all, {})",
                    exp.encoder,
                    groups.join(", ")
                ),
            ));
        }
    }
    Ok(peft)
}

fn model_source_identity(source: &ModelSource) -> String {
    let file = match source {
        ModelSource::Pretrained { dir } => Some(dir.join("model.safetensors")),
        ModelSource::Checkpoint { dir, .. } => Some(dir.join(crate::model::WEIGHTS_FILE)),
        ModelSource::Random { .. } | ModelSource::Hub { .. } => None,
    };
    file.and_then(|f| {
        std::fs::metadata(&f)
            .ok()
            .map(|m| format!("{}:{}", f.display(), m.len()))
    })
    .unwrap_or_default()
}
