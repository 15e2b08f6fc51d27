//! Paired bootstrap confidence intervals for "STILTs minus baseline": the best-on-dev baseline
//! run and the best-on-dev run of a STILTs condition are scored on the same resamples of the dev
//! set (drawn with replacement), with the task's GLUE score computed by the same metric code as
//! training (`stilts_data::metrics`). Predictions come from each run's `result.json`
//! (`dev_predictions`), gold labels from the dev file the run recorded in its `data` list
//! (checked against the recorded SHA-256), matched by example id.
//!
//! `scripts/bootstrap_reference.py` is the numpy reference the tests compare against
//! (`xtask/tests/fixtures/bootstrap.json`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use stilts_data::metrics::{MetricError, Predictions, evaluate, percentile};
use stilts_data::rng::{Rng, derive_seed};
use stilts_data::{Label, LoadOptions, Metric, Task};
use stilts_schema::results::{
    DataFileInfo as DataEntry, RunResult as ResultFile, SplitPredictions,
};

mod render;

pub use render::{csv, markdown};

use super::ReportError;
use super::model::{Applies, ReportModel};
use crate::grid::{Regime, RunRow};

/// Per-example outputs: class indices or real-valued scores, in gold order.
#[derive(Debug, Clone, PartialEq)]
pub enum Outputs {
    Classes(Vec<usize>),
    Scores(Vec<f64>),
}

impl Outputs {
    pub fn len(&self) -> usize {
        match self {
            Outputs::Classes(v) => v.len(),
            Outputs::Scores(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn empty_like(&self, capacity: usize) -> Outputs {
        match self {
            Outputs::Classes(_) => Outputs::Classes(Vec::with_capacity(capacity)),
            Outputs::Scores(_) => Outputs::Scores(Vec::with_capacity(capacity)),
        }
    }

    /// `out[i] = self[idx[i]]`.
    fn gather_into(&self, idx: &[usize], out: &mut Outputs) {
        match (self, out) {
            (Outputs::Classes(src), Outputs::Classes(dst)) => {
                dst.clear();
                dst.extend(idx.iter().map(|&i| src[i]));
            }
            (Outputs::Scores(src), Outputs::Scores(dst)) => {
                dst.clear();
                dst.extend(idx.iter().map(|&i| src[i]));
            }
            _ => unreachable!("buffers are made with empty_like"),
        }
    }
}

/// How a task is scored: its metrics (the GLUE score is their mean) and, for classification,
/// its number of classes (0 for regression).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSpec {
    pub metrics: Vec<Metric>,
    pub num_classes: usize,
}

impl ScoreSpec {
    pub fn of(task: &Task) -> ScoreSpec {
        ScoreSpec {
            metrics: task.metrics.clone(),
            num_classes: if task.target.is_regression() {
                0
            } else {
                task.target.num_outputs()
            },
        }
    }
}

/// The task's GLUE score (mean of its metrics) of `pred` against `gold`.
pub fn score(spec: &ScoreSpec, gold: &Outputs, pred: &Outputs) -> Result<f64, MetricError> {
    let p = match (gold, pred) {
        (Outputs::Classes(g), Outputs::Classes(p)) => Predictions::Classes {
            pred: p,
            gold: g,
            num_classes: spec.num_classes,
        },
        (Outputs::Scores(g), Outputs::Scores(p)) => Predictions::Scores { pred: p, gold: g },
        (_, _) => {
            return Err(MetricError::WrongKind {
                metric: spec.metrics.first().copied().unwrap_or(Metric::Accuracy),
                expected: "the gold labels' kind of",
            });
        }
    };
    Ok(evaluate(&spec.metrics, &p)?.task_score())
}

/// A paired bootstrap of `stilts - baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Dev examples.
    pub n: usize,
    pub resamples: usize,
    /// Scores on the whole dev set.
    pub baseline: f64,
    pub stilts: f64,
    /// `stilts - baseline` on the whole dev set (the point estimate).
    pub diff: f64,
    /// Mean of the resampled differences.
    pub mean: f64,
    /// 2.5th and 97.5th percentiles of the resampled differences (linear interpolation between
    /// order statistics, as numpy's default `percentile`).
    pub low: f64,
    pub high: f64,
    /// Fraction of resamples where STILTs scores strictly higher.
    pub win: f64,
}

/// Resamples the `n` examples with replacement `resamples` times (indices from
/// `Rng::new(seed)`: `below(n)` per draw, resample after resample) and scores both systems on
/// each resample.
pub fn paired_bootstrap(
    spec: &ScoreSpec,
    gold: &Outputs,
    baseline: &Outputs,
    stilts: &Outputs,
    resamples: usize,
    seed: u64,
) -> Result<Interval, MetricError> {
    let n = gold.len();
    for o in [baseline, stilts] {
        if o.len() != n {
            return Err(MetricError::LengthMismatch {
                pred: o.len(),
                gold: n,
            });
        }
    }
    if n == 0 {
        return Err(MetricError::Empty);
    }
    let base_score = score(spec, gold, baseline)?;
    let stilts_score = score(spec, gold, stilts)?;
    let mut rng = Rng::new(seed);
    let mut idx = vec![0usize; n];
    let (mut g, mut b, mut s) = (
        gold.empty_like(n),
        baseline.empty_like(n),
        stilts.empty_like(n),
    );
    let mut diffs = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for i in idx.iter_mut() {
            *i = rng.below_usize(n);
        }
        gold.gather_into(&idx, &mut g);
        baseline.gather_into(&idx, &mut b);
        stilts.gather_into(&idx, &mut s);
        diffs.push(score(spec, &g, &s)? - score(spec, &g, &b)?);
    }
    let mean = if diffs.is_empty() {
        f64::NAN
    } else {
        diffs.iter().sum::<f64>() / diffs.len() as f64
    };
    let win = diffs.iter().filter(|&&d| d > 0.0).count() as f64 / diffs.len().max(1) as f64;
    diffs.sort_by(f64::total_cmp);
    Ok(Interval {
        n,
        resamples,
        baseline: base_score,
        stilts: stilts_score,
        diff: stilts_score - base_score,
        mean,
        low: percentile(&diffs, 2.5),
        high: percentile(&diffs, 97.5),
        win,
    })
}

/// The state of one comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Done(Interval),
    /// A best run is missing (unfinished cells).
    Missing(String),
    /// The runs exist but could not be compared (an unreadable result file, a moved dev set).
    Failed(String),
}

/// STILTs condition vs baseline for one encoder, regime and target.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub encoder: String,
    pub regime: Regime,
    /// The task's display name.
    pub target: String,
    /// The condition's key (`MNLI`, `{MNLI,RTE}->RTE`).
    pub condition: String,
    /// Row label of the condition (`BERT → MNLI`).
    pub label: String,
    pub baseline_run: Option<String>,
    pub stilts_run: Option<String>,
    pub status: Status,
}

/// A dev set's gold outputs.
#[derive(Debug)]
struct Gold {
    /// SHA-256 of the dev file as read now.
    sha256: String,
    ids: Vec<String>,
    outputs: Outputs,
}

/// Result files and dev sets, each read once.
#[derive(Default)]
struct Cache {
    results: HashMap<PathBuf, Rc<ResultFile>>,
    gold: HashMap<(String, String), Rc<Gold>>,
}

impl Cache {
    fn result(&mut self, path: &Path) -> Result<Rc<ResultFile>, ReportError> {
        if let Some(r) = self.results.get(path) {
            return Ok(r.clone());
        }
        let r = ResultFile::read(path).map_err(|e| match e {
            stilts_schema::SchemaError::Json { path, source } => ReportError::Json { path, source },
            stilts_schema::SchemaError::Io { path, source } => ReportError::Io { path, source },
            other => ReportError::invalid(path, format!("not a result file: {other}")),
        })?;
        let r = Rc::new(r);
        self.results.insert(path.to_path_buf(), r.clone());
        Ok(r)
    }

    fn gold(&mut self, task: &Task, entry: &DataEntry) -> Result<Rc<Gold>, ReportError> {
        let key = (entry.path.clone(), entry.split.clone());
        let g = match self.gold.get(&key) {
            Some(g) => g.clone(),
            None => {
                let g = Rc::new(load_gold(task, entry)?);
                self.gold.insert(key, g.clone());
                g
            }
        };
        // Every run's recorded hash is checked, also when the file was read for another run.
        if !entry.sha256.is_empty() && g.sha256 != entry.sha256 {
            return Err(ReportError::invalid(
                Path::new(&entry.path),
                format!(
                    "the {} {} file changed since the run read it (SHA-256 {} then, {} now)",
                    task.name, entry.split, entry.sha256, g.sha256
                ),
            ));
        }
        Ok(g)
    }
}

/// The task directory a recorded split file lies in (the file's path without the split
/// source's relative path, plain or `.gz`).
fn task_dir(task: &Task, entry: &DataEntry) -> PathBuf {
    let path = Path::new(&entry.path);
    let plain = Path::new(entry.path.strip_suffix(".gz").unwrap_or(&entry.path));
    if let Some(spec) = task.split(&entry.split) {
        for source in &spec.sources {
            let rel = Path::new(&source.file);
            if plain.ends_with(rel) {
                let depth = rel.components().count();
                if let Some(dir) = plain.ancestors().nth(depth) {
                    return dir.to_path_buf();
                }
            }
        }
    }
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn load_gold(task: &Task, entry: &DataEntry) -> Result<Gold, ReportError> {
    let dir = task_dir(task, entry);
    let data = task
        .load(&dir, &entry.split, LoadOptions::default())
        .map_err(|e| ReportError::Data {
            task: task.name.clone(),
            source: Box::new(e),
        })?;
    let mut ids = Vec::with_capacity(data.len());
    let mut classes = Vec::new();
    let mut scores = Vec::new();
    for ex in &data.examples {
        ids.push(ex.id.clone());
        match ex.label {
            Some(Label::Class(c)) => classes.push(c),
            Some(Label::Score(s)) => scores.push(s),
            None => {
                return Err(ReportError::invalid(
                    &data.path,
                    format!("dev example `{}` has no label", ex.id),
                ));
            }
        }
    }
    let outputs = if task.target.is_regression() {
        Outputs::Scores(scores)
    } else {
        Outputs::Classes(classes)
    };
    if outputs.len() != ids.len() {
        return Err(ReportError::invalid(
            &data.path,
            "mixed class and score labels",
        ));
    }
    Ok(Gold {
        sha256: data.sha256.clone(),
        ids,
        outputs,
    })
}

/// A run's dev outputs in gold order. Classes come from the logits as training scores them
/// (argmax), else from the label names; regression scores from the logit, else the string.
fn align(
    task: &Task,
    gold: &Gold,
    preds: &SplitPredictions,
    file: &Path,
) -> Result<Outputs, ReportError> {
    let n = preds.ids.len();
    if preds.predictions.len() != n {
        return Err(ReportError::invalid(
            file,
            format!(
                "dev_predictions of {}: {} ids but {} predictions",
                preds.task,
                n,
                preds.predictions.len()
            ),
        ));
    }
    let use_logits = preds.logits.len() == n && preds.logits.iter().all(|l| !l.is_empty());
    let positions: Vec<usize> = if preds.ids == gold.ids {
        (0..n).collect()
    } else {
        let mut by_id = HashMap::with_capacity(n);
        for (i, id) in preds.ids.iter().enumerate() {
            if by_id.insert(id.as_str(), i).is_some() {
                return Err(ReportError::invalid(
                    file,
                    format!("dev_predictions of {}: id `{id}` appears twice", preds.task),
                ));
            }
        }
        let unique: HashSet<&str> = gold.ids.iter().map(String::as_str).collect();
        if unique.len() != gold.ids.len() {
            return Err(ReportError::invalid(
                file,
                "the dev set's ids are not unique and the predictions are in another order",
            ));
        }
        gold.ids
            .iter()
            .map(|id| {
                by_id.get(id.as_str()).copied().ok_or_else(|| {
                    ReportError::invalid(
                        file,
                        format!("no dev prediction for {} example `{id}`", preds.task),
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    let bad = |i: usize, what: &str| {
        ReportError::invalid(
            file,
            format!(
                "dev prediction `{}` for {} example `{}`: {what}",
                preds.predictions[i], preds.task, preds.ids[i]
            ),
        )
    };
    if task.target.is_regression() {
        positions
            .iter()
            .map(|&i| {
                if use_logits {
                    Ok(f64::from(preds.logits[i][0]))
                } else {
                    preds.predictions[i]
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| bad(i, "not a number"))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Outputs::Scores)
    } else {
        let k = task.target.num_outputs();
        positions
            .iter()
            .map(|&i| {
                let c = if use_logits {
                    stilts_data::metrics::argmax(&preds.logits[i])
                } else {
                    task.label_index(&preds.predictions[i])
                        .ok_or_else(|| bad(i, "not one of the task's labels"))?
                };
                if c >= k {
                    return Err(bad(i, &format!("class {c} of a {k}-class task")));
                }
                Ok(c)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Outputs::Classes)
    }
}

/// The gold and predicted dev outputs of one run on `task`.
fn run_outputs(
    cache: &mut Cache,
    task: &Task,
    run: &RunRow,
) -> Result<(Rc<Gold>, Outputs), ReportError> {
    let file = run
        .outcome
        .as_ref()
        .map(|o| o.result_file.clone())
        .ok_or_else(|| ReportError::invalid(&run.run_dir, "the run has no result"))?;
    let result = cache.result(&file)?;
    let named: Vec<&SplitPredictions> = result
        .dev_predictions
        .iter()
        .filter(|p| p.task.eq_ignore_ascii_case(&task.name))
        .collect();
    let preds = match (named.as_slice(), result.dev_predictions.as_slice()) {
        ([p], _) => *p,
        ([], [only]) => only,
        _ => {
            return Err(ReportError::invalid(
                &file,
                format!(
                    "expected one dev_predictions entry of {}, found tasks: {}",
                    task.name,
                    result
                        .dev_predictions
                        .iter()
                        .map(|p| format!("{} ({})", p.task, p.split))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let entry = result
        .data
        .iter()
        .find(|d| d.task == preds.task && d.split == preds.split)
        .ok_or_else(|| {
            ReportError::invalid(
                &file,
                format!(
                    "`data` does not list the {} {} file the predictions are of",
                    preds.task, preds.split
                ),
            )
        })?;
    let gold = cache.gold(task, entry)?;
    let outputs = align(task, &gold, preds, &file)?;
    Ok((gold, outputs))
}

fn compare(
    cache: &mut Cache,
    task: &Task,
    base: &RunRow,
    stilts: &RunRow,
    resamples: usize,
    seed: u64,
) -> Result<Interval, ReportError> {
    let (gold_b, out_b) = run_outputs(cache, task, base)?;
    let (gold_s, out_s) = run_outputs(cache, task, stilts)?;
    if gold_b.ids != gold_s.ids {
        return Err(ReportError::invalid(
            &stilts.run_dir,
            format!(
                "run {} and baseline run {} were evaluated on different {} dev sets",
                stilts.run_id, base.run_id, task.name
            ),
        ));
    }
    paired_bootstrap(
        &ScoreSpec::of(task),
        &gold_b.outputs,
        &out_b,
        &out_s,
        resamples,
        seed,
    )
    .map_err(|e| ReportError::Metric {
        context: format!("{} bootstrap of run {}", task.name, stilts.run_id),
        source: e,
    })
}

/// Every STILTs condition against the baseline, per regime, encoder and target. Resamples are
/// drawn from a stream derived from `seed` and (encoder, regime, target), so every condition of
/// a target is scored on the same resamples.
pub fn compare_all(model: &ReportModel<'_>, resamples: usize, seed: u64) -> Vec<Comparison> {
    let mut out = Vec::new();
    let Some(baseline) = model.conditions.iter().find(|c| c.is_baseline()) else {
        return out;
    };
    let mut cache = Cache::default();
    for &regime in &model.regimes {
        let regime_label = regime.label();
        for enc in &model.encoders {
            for t in &model.targets {
                let base_cell = model.cell(enc, baseline, t, regime);
                let base_run = base_cell.as_ref().and_then(|c| c.best());
                let stream = derive_seed(
                    seed,
                    &[
                        "bootstrap".into(),
                        enc.into(),
                        regime_label.as_str().into(),
                        t.key.as_str().into(),
                    ],
                );
                for c in &model.conditions {
                    if c.is_baseline() || model.applies(c, t) != Applies::Yes {
                        continue;
                    }
                    let run = model.cell(enc, c, t, regime).and_then(|c| c.best());
                    let status = match (&t.task, base_run, run) {
                        (None, _, _) => Status::Failed(format!(
                            "task `{}` does not resolve here (no built-in task of that name, \
                             no task file), so its dev set cannot be read",
                            t.key
                        )),
                        (_, None, _) => Status::Missing("no finished baseline run".into()),
                        (_, _, None) => Status::Missing("no finished run".into()),
                        (Some(task), Some(b), Some(r)) => {
                            match compare(&mut cache, task, b, r, resamples, stream) {
                                Ok(i) => Status::Done(i),
                                Err(e) => Status::Failed(e.to_string()),
                            }
                        }
                    };
                    out.push(Comparison {
                        encoder: enc.clone(),
                        regime,
                        target: t.name.clone(),
                        condition: c.key_for(&t.key).unwrap_or(&c.name).to_string(),
                        label: c.label(enc),
                        baseline_run: base_run.map(|r| r.run_id.clone()),
                        stilts_run: run.map(|r| r.run_id.clone()),
                        status,
                    });
                }
            }
        }
    }
    out
}
