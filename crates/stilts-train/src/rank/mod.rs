//! Which intermediate task? Scores that predict, before any fine-tuning on the target, how well
//! each candidate intermediate task will serve it: `stilts rank`.
//!
//! The target's and the candidates' training examples (a seeded sample of each) are encoded
//! by the base encoder ([`features`]); each method ([`methods`], one file each behind
//! [`RankMethod`]) turns the inputs it declares into one score per candidate, higher first.
//! Methods that read an encoder after intermediate training on a candidate (LogME of its
//! target features; ESM-LogME, whose Embedding Space Map ([`esm`], saved by [`esm_file`]) is
//! fitted once per candidate and reused for every target) need that encoder, a model directory
//! per candidate. The LogME of the base encoder's target features ([`logme`]) is reported beside
//! the rankings as the floor.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use stilts_train::predict::{PredictOptions, Predictor};
//! use stilts_train::rank::{MethodName, RankOptions, Tuned, rank_tasks, resolve_tasks};
//! # fn main() -> Result<(), stilts_train::rank::RankError> {
//! let (predictor, _) = Predictor::load("all-MiniLM-L6-v2".as_ref(), &PredictOptions::default(), &Device::flex())?;
//! let options = RankOptions { methods: vec![MethodName::Semb, MethodName::Size], ..RankOptions::default() };
//! let (target, candidates) = resolve_tasks("RTE", &["MNLI".into(), "SST-2".into()])?;
//! let ranking = rank_tasks(&predictor, &target, &candidates, &Tuned::default(), &options)?;
//! for method in &ranking.methods {
//!     println!("{}: {}", method.method, method.order().join(" > "));
//! }
//! # Ok(()) }
//! ```

pub mod esm;
pub mod esm_file;
pub mod evaluate;
pub mod features;
pub mod logme;
pub mod methods;
pub mod select;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stilts_data::encoding::InputEncoder;
use stilts_io::fs::FsError;

use crate::TrainError;
use crate::config::tasks::resolve_named_task;
use crate::config::{DataFile, TaskSpec};
use crate::model::store::weights_sha256;
use crate::predict::{PredictError, PredictOptions, Predictor};

pub use esm::{Esm, EsmTraining};
pub use features::{FeatureOptions, Pooling, TaskFeatures, TaskSample};
pub use methods::{Input, MethodName, RankMethod};

/// Everything that can go wrong while ranking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RankError {
    /// A model could not be loaded or run.
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// A task could not be resolved or read.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The options do not make sense (an empty candidate list, the target among them, ...).
    #[error("{0}")]
    Options(String),
    /// The encoder's output could not be pooled or read back.
    #[error("{task}: cannot compute features: {message}")]
    Features {
        /// The task being encoded.
        task: String,
        /// What went wrong.
        message: String,
    },
    /// An Embedding Space Map file is unreadable or does not fit.
    #[error("{}: {message}", path.display())]
    Esm {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file could not be written.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A file stilts shares with the grid driver (a transfer matrix) is unreadable.
    #[error(transparent)]
    Schema(#[from] stilts_schema::SchemaError),
}

/// How to rank.
#[derive(Debug, Clone, PartialEq)]
pub struct RankOptions {
    /// The methods, in the order their rankings are reported.
    pub methods: Vec<MethodName>,
    /// How examples are sampled, encoded and pooled.
    pub features: FeatureOptions,
    /// The seed of the samples, of the random baseline and of ESM training.
    pub seed: u64,
    /// How Embedding Space Maps are fitted.
    pub esm: EsmTraining,
    /// Where fitted maps are saved and looked up (`$STILTS_CACHE/esm` by default; `None`: not
    /// saved).
    pub esm_dir: Option<PathBuf>,
}

impl Default for RankOptions {
    fn default() -> Self {
        RankOptions {
            methods: MethodName::DEFAULT.to_vec(),
            features: FeatureOptions::default(),
            seed: 1,
            esm: EsmTraining::default(),
            esm_dir: stilts_io::cache::stilts_cache_dir().map(|d| d.join("esm")),
        }
    }
}

/// What the methods that read tuned encoders are given, per candidate (named by task name or
/// as the user wrote it): the encoder after intermediate training on it (a model directory),
/// or a ready Embedding Space Map (a directory of stilts' or hf-dataset-selector's).
#[derive(Debug, Clone, Default)]
pub struct Tuned {
    /// Candidate -> tuned model directory.
    pub models: Vec<(String, PathBuf)>,
    /// Candidate -> ESM directory.
    pub esms: Vec<(String, PathBuf)>,
    /// How tuned models are loaded (the base's options: the same tokens per example).
    pub predict: PredictOptions,
}

impl Tuned {
    fn find<'a>(list: &'a [(String, PathBuf)], spec: &TaskSpec) -> Option<&'a Path> {
        list.iter()
            .find(|(name, _)| *name == spec.task.name || *name == spec.reference)
            .map(|(_, p)| p.as_path())
    }

    /// Every name given must be a candidate (a typo would otherwise go unnoticed).
    fn check(&self, specs: &[TaskSpec]) -> Result<(), RankError> {
        for (flag, list) in [("--tuned", &self.models), ("--esm", &self.esms)] {
            for (name, _) in list {
                if !specs
                    .iter()
                    .any(|s| *name == s.task.name || *name == s.reference)
                {
                    return Err(RankError::Options(format!(
                        "{flag} names {name}, which is not a candidate"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A candidate intermediate task as the methods see it; each input is present when some
/// method reads it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The task's name.
    pub name: String,
    /// Examples in its whole training split.
    pub train_size: usize,
    /// Its sample as the base encoder sees it.
    pub features: Option<TaskFeatures>,
    /// The target's sample as this candidate's tuned encoder sees it.
    pub tuned_target: Option<TaskFeatures>,
    /// Its Embedding Space Map.
    pub esm: Option<Esm>,
    /// Seconds spent on the ESM (loading it, or encoding with both encoders and fitting).
    pub esm_seconds: f64,
    /// Where the ESM was read from or saved.
    pub esm_path: Option<PathBuf>,
}

/// What every method is given.
#[derive(Debug, Clone, Copy)]
pub struct RankInput<'a> {
    /// The target's sampled training examples, encoded by the base encoder.
    pub target: &'a TaskFeatures,
    /// The candidates, in the order the user named them.
    pub candidates: &'a [Candidate],
    /// The seed (for methods that draw).
    pub seed: u64,
}

/// One candidate's place in one method's ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedCandidate {
    /// The candidate task.
    pub candidate: String,
    /// The method's score (higher ranks first; `null` in JSON when not finite).
    pub score: Option<f64>,
    /// 1-based rank.
    pub rank: usize,
}

/// One method's ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodRanking {
    /// The method's name.
    pub method: String,
    /// What it cost: its own computation plus what its inputs took.
    pub seconds: f64,
    /// The candidates, best first.
    pub ranking: Vec<RankedCandidate>,
}

impl MethodRanking {
    /// Ranks candidates by score, highest first; ties and non-finite scores keep the order the
    /// candidates were named in (non-finite ones last).
    pub fn from_scores(method: &str, seconds: f64, names: &[String], scores: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..names.len()).collect();
        let key = |i: usize| scores.get(i).copied().filter(|s| s.is_finite());
        order.sort_by(|&a, &b| match (key(a), key(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        let ranking = order
            .into_iter()
            .enumerate()
            .map(|(place, i)| RankedCandidate {
                candidate: names[i].clone(),
                score: key(i),
                rank: place + 1,
            })
            .collect();
        MethodRanking {
            method: method.to_owned(),
            seconds,
            ranking,
        }
    }

    /// The candidates' names, best first.
    pub fn order(&self) -> Vec<String> {
        self.ranking.iter().map(|r| r.candidate.clone()).collect()
    }
}

/// A task as encoded for ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// The task.
    pub task: String,
    /// Examples in its whole training split.
    pub train_size: usize,
    /// Examples sampled.
    pub examples: usize,
    /// Seconds to tokenize and encode them with the base encoder (0 when no method read them).
    pub seconds: f64,
    /// The Embedding Space Map used for it, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esm: Option<PathBuf>,
}

/// The result of [`rank_tasks`]: what `stilts rank --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// The target task.
    pub target: TaskReport,
    /// The candidates, in the order they were named.
    pub candidates: Vec<TaskReport>,
    /// How features were pooled.
    pub pooling: Pooling,
    /// Their width.
    pub dim: usize,
    /// LogME of the base encoder's features of the target: the floor that the features of an
    /// encoder after a useful intermediate task should beat.
    pub target_logme: Option<f64>,
    /// One ranking per method, in the order asked for.
    pub methods: Vec<MethodRanking>,
}

/// Resolves a target and its candidates (built-in names or task files, found as an experiment
/// finds them). A built-in task on no data root is marked for download: fetch it with
/// [`TaskSpec::fetch`] before ranking.
pub fn resolve_tasks(
    target: &str,
    candidates: &[String],
) -> Result<(TaskSpec, Vec<TaskSpec>), RankError> {
    let resolve = |key: &str, name: &str| -> Result<TaskSpec, RankError> {
        Ok(resolve_named_task(
            Path::new("<flags>"),
            key,
            name,
            &DataFile::default(),
        )?)
    };
    let target = resolve("--target", target)?;
    if candidates.is_empty() {
        return Err(RankError::Options("no candidate tasks to rank".to_owned()));
    }
    let mut specs: Vec<TaskSpec> = Vec::with_capacity(candidates.len());
    for name in candidates {
        let spec = resolve("--candidates", name)?;
        if spec.task.name == target.task.name {
            return Err(RankError::Options(format!(
                "{} is the target: a task is never its own intermediate",
                spec.task.name
            )));
        }
        if specs.iter().any(|s| s.task.name == spec.task.name) {
            return Err(RankError::Options(format!(
                "{} is named twice among the candidates",
                spec.task.name
            )));
        }
        specs.push(spec);
    }
    Ok((target, specs))
}

/// Ranks the candidates with each method; the methods that read tuned encoders take them (or
/// ready maps) from `tuned`.
pub fn rank_tasks(
    base: &Predictor,
    target_spec: &TaskSpec,
    candidate_specs: &[TaskSpec],
    tuned: &Tuned,
    options: &RankOptions,
) -> Result<Ranking, RankError> {
    if candidate_specs.is_empty() {
        return Err(RankError::Options("no candidate tasks to rank".to_owned()));
    }
    if options.methods.is_empty() {
        return Err(RankError::Options("no ranking methods".to_owned()));
    }
    tuned.check(candidate_specs)?;
    let methods: Vec<Box<dyn RankMethod>> = options.methods.iter().map(|m| m.method()).collect();
    let needs = |input: Input| methods.iter().any(|m| m.inputs().contains(&input));

    let target_sample = features::sample_task(target_spec, &options.features, options.seed)?;
    let target = features::encode_sample(base, target_spec, &target_sample, &options.features)?;
    let target_logme = logme::logme(&target.values, target.dim, &target.targets);
    tracing::info!(
        "{}: LogME of the base encoder's features {target_logme:.4}",
        target.task
    );

    let mut prepare = Prepare {
        base,
        base_sha: None,
        tuned,
        options,
    };
    let mut pool = Vec::with_capacity(candidate_specs.len());
    for spec in candidate_specs {
        pool.push(prepare.candidate(spec, &target_sample, target_spec, &needs)?);
    }

    let input = RankInput {
        target: &target,
        candidates: &pool,
        seed: options.seed,
    };
    let names: Vec<String> = pool.iter().map(|c| c.name.clone()).collect();
    let cost = |input: Input| -> f64 {
        match input {
            Input::TargetFeatures => target.seconds,
            Input::CandidateFeatures => pool
                .iter()
                .filter_map(|c| c.features.as_ref().map(|f| f.seconds))
                .sum(),
            Input::TunedTargetFeatures => pool
                .iter()
                .filter_map(|c| c.tuned_target.as_ref().map(|f| f.seconds))
                .sum(),
            Input::Esm => pool.iter().map(|c| c.esm_seconds).sum(),
        }
    };
    let mut rankings = Vec::with_capacity(methods.len());
    for method in &methods {
        let started = Instant::now();
        let scores = method.scores(&input)?;
        let seconds =
            started.elapsed().as_secs_f64() + method.inputs().iter().map(|&i| cost(i)).sum::<f64>();
        rankings.push(MethodRanking::from_scores(
            method.name(),
            seconds,
            &names,
            &scores,
        ));
    }
    Ok(Ranking {
        target: TaskReport {
            task: target.task.clone(),
            train_size: target.train_size,
            examples: target.rows,
            seconds: target.seconds,
            esm: None,
        },
        candidates: pool
            .iter()
            .map(|c| TaskReport {
                task: c.name.clone(),
                train_size: c.train_size,
                examples: c.features.as_ref().map_or(0, |f| f.rows),
                seconds: c.features.as_ref().map_or(0.0, |f| f.seconds),
                esm: c.esm_path.clone(),
            })
            .collect(),
        pooling: options.features.pooling,
        dim: target.dim,
        target_logme: Some(target_logme).filter(|v| v.is_finite()),
        methods: rankings,
    })
}

/// Computes what the methods read of one candidate.
struct Prepare<'a> {
    base: &'a Predictor,
    base_sha: Option<String>,
    tuned: &'a Tuned,
    options: &'a RankOptions,
}

impl Prepare<'_> {
    fn base_sha(&mut self) -> String {
        self.base_sha
            .get_or_insert_with(|| weights_sha256(&self.base.model().model.encoder))
            .clone()
    }

    fn tuned_model(&self, spec: &TaskSpec, method: &str) -> Result<Predictor, RankError> {
        let dir = Tuned::find(&self.tuned.models, spec).ok_or_else(|| {
            RankError::Options(format!(
                "{method} needs the encoder after intermediate training on {}: --tuned {}=DIR",
                spec.task.name, spec.task.name
            ))
        })?;
        let (predictor, _) = Predictor::load(dir, &self.tuned.predict, self.base.device())?;
        Ok(predictor)
    }

    fn candidate(
        &mut self,
        spec: &TaskSpec,
        target_sample: &TaskSample,
        target_spec: &TaskSpec,
        needs: &dyn Fn(Input) -> bool,
    ) -> Result<Candidate, RankError> {
        let features_options = &self.options.features;
        let sample = features::sample_task(spec, features_options, self.options.seed)?;
        let mut candidate = Candidate {
            name: spec.task.name.clone(),
            train_size: sample.train_size,
            features: None,
            tuned_target: None,
            esm: None,
            esm_seconds: 0.0,
            esm_path: None,
        };
        if needs(Input::CandidateFeatures) {
            candidate.features = Some(features::encode_sample(
                self.base,
                spec,
                &sample,
                features_options,
            )?);
        }
        let mut tuned: Option<Predictor> = None;
        if needs(Input::TunedTargetFeatures) {
            let model = self.tuned_model(spec, "logme-tuned")?;
            candidate.tuned_target = Some(features::encode_sample(
                &model,
                target_spec,
                target_sample,
                features_options,
            )?);
            tuned = Some(model);
        }
        if needs(Input::Esm) {
            let started = Instant::now();
            let (esm, path) = self.esm(spec, &sample, candidate.features.as_ref(), tuned.take())?;
            candidate.esm_seconds = started.elapsed().as_secs_f64();
            candidate.esm = Some(esm);
            candidate.esm_path = path;
        }
        Ok(candidate)
    }

    /// The candidate's map: given, saved earlier, or fitted now (and saved).
    fn esm(
        &mut self,
        spec: &TaskSpec,
        sample: &TaskSample,
        base_features: Option<&TaskFeatures>,
        tuned: Option<Predictor>,
    ) -> Result<(Esm, Option<PathBuf>), RankError> {
        let base_sha = self.base_sha();
        if let Some(dir) = Tuned::find(&self.tuned.esms, spec) {
            let (esm, config) = esm_file::load(dir)?;
            if let Some(p) = &config.stilts
                && p.base_weights_sha256 != base_sha
            {
                return Err(RankError::Esm {
                    path: dir.to_path_buf(),
                    message: format!(
                        "the map reads another base encoder (weights {}, this one {base_sha})",
                        p.base_weights_sha256
                    ),
                });
            }
            return Ok((esm, Some(dir.to_path_buf())));
        }
        let tuned = match tuned {
            Some(t) => t,
            None => self.tuned_model(spec, "esm-logme")?,
        };
        let tuned_sha = weights_sha256(&tuned.model().model.encoder);
        let max_seq_len = self.base.tokenizer().max_seq_len();
        let pooling = self.options.features.pooling;
        let training = &self.options.esm;
        let key = {
            let mut h = Sha256::new();
            h.update(
                format!(
                    "{base_sha}\n{tuned_sha}\n{}\n{}\n{max_seq_len}\n{training:?}\n{}",
                    sample.sha256,
                    pooling.name(),
                    self.options.seed
                )
                .as_bytes(),
            );
            format!("{:x}", h.finalize())
        };
        let dir = self
            .options
            .esm_dir
            .as_ref()
            .map(|root| esm_file::cached_dir(root, &key));
        if let Some(dir) = &dir
            && stilts_io::fs::complete_dir(dir, esm_file::WEIGHTS_FILE).is_some()
        {
            let (esm, _) = esm_file::load(dir)?;
            tracing::info!(
                "{}: Embedding Space Map from {}",
                spec.task.name,
                dir.display()
            );
            return Ok((esm, Some(dir.clone())));
        }
        let encoded;
        let base_features = match base_features {
            Some(f) => f,
            None => {
                encoded = features::encode_sample(self.base, spec, sample, &self.options.features)?;
                &encoded
            }
        };
        let tuned_features = features::encode_sample(&tuned, spec, sample, &self.options.features)?;
        if tuned_features.dim != base_features.dim {
            return Err(RankError::Options(format!(
                "{}: the tuned encoder's features are {}-wide, the base's {}",
                spec.task.name, tuned_features.dim, base_features.dim
            )));
        }
        let mut esm = Esm::init(base_features.dim, self.options.seed);
        let losses = esm.train(
            &base_features.values,
            &tuned_features.values,
            training,
            self.options.seed,
        );
        tracing::info!(
            "{}: Embedding Space Map fitted, loss {:.4} -> {:.4}",
            spec.task.name,
            losses.first().copied().unwrap_or(f64::NAN),
            losses.last().copied().unwrap_or(f64::NAN)
        );
        if let Some(dir) = &dir {
            let config = esm_file::EsmConfig::new(
                esm.dim(),
                &spec.task.name,
                base_features.rows,
                self.options.seed,
                training,
                esm_file::EsmProvenance {
                    base_weights_sha256: base_sha,
                    tuned_weights_sha256: tuned_sha,
                    sample_sha256: sample.sha256.clone(),
                    pooling,
                    max_seq_len,
                    losses,
                },
            );
            esm_file::save(dir, &esm, &config)?;
        }
        Ok((esm, dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_score_with_ties_and_nan_in_named_order() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let r = MethodRanking::from_scores("m", 0.0, &names, &[0.5, f64::NAN, 0.9, 0.5]);
        assert_eq!(r.order(), ["c", "a", "d", "b"]);
        assert_eq!(r.ranking[3].score, None);
        assert_eq!(
            r.ranking.iter().map(|c| c.rank).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }
}
