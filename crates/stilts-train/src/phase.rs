//! One run: one seed of one phase. Trains on the autodiff device (dropout active), evaluates on
//! the plain device after every epoch, checkpoints atomically, resumes from its checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stilts_data::metrics::{self, Metric, Predictions};
use stilts_data::rng::derive_seed;
use stilts_data::sample::SampleManifest;
use stilts_data::tokenize::BertTokenizer;
use stilts_data::{Label, Target, Task};
use stilts_models::bert::{AdamWGroupsConfig, BertAdamGroupsConfig};

use crate::batching::{collate, plan_epoch};
use crate::checkpoint::{self, TrainState};
use crate::config::{Keep, OptimizerKind, Phase};
use crate::error::{Result, TrainError};
use crate::model::{Carried, TaskModel, loss, save_model};
use crate::observer::{Observer, StepEvent};
use crate::prepare::{DataFileInfo, Split, TaskData};
use crate::schedule::LinearWarmupDecay;

/// Dev scores of one task after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    pub task: String,
    pub split: String,
    /// Every metric of the task, by name.
    pub metrics: BTreeMap<String, f64>,
    /// The task's GLUE score (mean of its metrics).
    pub score: f64,
}

/// One entry of the validation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps done at the end of this epoch.
    pub step: u64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Dev scores per task.
    pub dev: Vec<TaskScores>,
    /// What restarts are selected on: the mean of the tasks' scores, or the phase's
    /// `select_on` task's score.
    pub dev_score: f64,
}

/// Predictions on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitPredictions {
    pub task: String,
    pub split: String,
    pub ids: Vec<String>,
    /// Predicted label names (classification) or scores as strings (regression).
    pub predictions: Vec<String>,
    /// Raw head outputs, one row per example.
    pub logits: Vec<Vec<f32>>,
}

/// Everything recorded about a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub phase: String,
    pub seed: u64,
    /// Validation history, one record per epoch.
    pub history: Vec<EpochRecord>,
    /// The epoch (1-based) whose model the run ended with: the last, or with
    /// `keep = "best_epoch"` the best on dev.
    #[serde(default)]
    pub kept_epoch: usize,
    /// Dev score of the kept model.
    pub dev_score: f64,
    /// The majority-class (classification) or constant (regression) baseline's dev score,
    /// taken over the tasks as `dev_score` is (the mean, or the `select_on` task's).
    pub baseline: f64,
    /// Each task's baseline dev score, by task name (what a multitask run's tasks are judged
    /// against one by one).
    #[serde(default)]
    pub task_baselines: BTreeMap<String, f64>,
    /// Whether the dev score is at or below the baseline.
    pub degenerate: bool,
    /// The data files (paths, SHA-256, sizes).
    pub data: Vec<DataFileInfo>,
    /// Downsampling manifests (which examples).
    pub manifests: Vec<SampleManifest>,
    /// SHA-256 of the final weights' values (see [`weights_sha256`]).
    pub weights_sha256: String,
    pub dev_predictions: Vec<SplitPredictions>,
    pub test_predictions: Vec<SplitPredictions>,
    pub steps: u64,
    pub train_examples_seen: u64,
    /// Training and evaluation time, summed over resumptions.
    pub wall_s: f64,
    /// Training examples per second of training time.
    pub examples_per_s: f64,
    /// Whether the run was resumed from a checkpoint.
    pub resumed: bool,
}

/// The index of the first highest score; NaN never wins. `None` when every score is NaN.
pub fn first_best(scores: impl IntoIterator<Item = f64>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, s) in scores.into_iter().enumerate() {
        if !s.is_nan() && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// The output directory of a run's final model.
pub fn model_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("model")
}

/// The result file of a run.
pub fn result_file(run_dir: &Path) -> PathBuf {
    run_dir.join("result.json")
}

/// What a run needs.
pub struct RunSpec<'a> {
    pub phase: &'a Phase,
    pub phase_index: usize,
    pub seed: u64,
    pub data: &'a [TaskData],
    pub tokenizer: &'a BertTokenizer,
    pub run_dir: PathBuf,
    /// The plain device (training uses its autodiff form).
    pub device: Device,
    /// Identifies the configuration and starting model; a checkpoint with another one is
    /// refused.
    pub fingerprint: String,
}

/// Sets every gradient `g` to `g * min(1, max_norm / (‖g‖ + 1e-6))`, where `‖g‖` is the norm
/// over all parameters together (PyTorch's `clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum(); // [1]
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads
                    .register::<D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut sum = SumSquares { grads, total: None };
    model.visit(&mut sum);
    let Some(total) = sum.total else {
        return 0.0;
    };
    let norm = f64::from(scalar(total)).sqrt();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale { grads, factor });
    }
    norm
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().iter::<f32>().next().unwrap_or(f32::NAN)
}

/// Runs (or resumes, or finds finished) one run and returns its result; the final model is in
/// [`model_dir`].
pub fn run(
    spec: &RunSpec<'_>,
    start: &Carried,
    observer: &mut dyn Observer,
) -> Result<(RunResult, Carried)> {
    let phase = spec.phase;
    let recipe = &phase.recipe;
    let result_path = result_file(&spec.run_dir);
    if result_path.exists() {
        let text =
            std::fs::read_to_string(&result_path).map_err(|e| TrainError::io(&result_path, e))?;
        let result: RunResult =
            serde_json::from_str(&text).map_err(|e| TrainError::json(&result_path, e))?;
        let carried = crate::model::load_model(&model_dir(&spec.run_dir), &spec.device)?;
        tracing::info!(phase = %phase.name, seed = spec.seed, "run already finished; reusing {}", spec.run_dir.display());
        observer.run_end(&result);
        return Ok((result, carried));
    }
    std::fs::create_dir_all(&spec.run_dir).map_err(|e| TrainError::io(&spec.run_dir, e))?;
    let ad = spec.device.clone().autodiff();
    let lengths: Vec<Vec<usize>> = spec.data.iter().map(|d| d.train.lengths()).collect();
    let batches_per_epoch = plan_epoch(
        &lengths,
        recipe.batch_size,
        recipe.bucket_by_length,
        phase.sampler,
        spec.seed,
        0,
    )
    .len();
    let steps_per_epoch = batches_per_epoch.div_ceil(recipe.grad_accum_steps) as u64;
    let total_steps = steps_per_epoch * recipe.epochs as u64;
    let schedule = LinearWarmupDecay::new(recipe.lr, total_steps, recipe.warmup_proportion);
    let fresh_optimizer = || match recipe.optimizer {
        OptimizerKind::AdamW => AdamWGroupsConfig::new()
            .with_beta_1(recipe.beta_1)
            .with_beta_2(recipe.beta_2)
            .with_epsilon(recipe.epsilon)
            .with_weight_decay(recipe.weight_decay)
            .init(),
        OptimizerKind::BertAdam => BertAdamGroupsConfig::new()
            .with_beta_1(recipe.beta_1)
            .with_beta_2(recipe.beta_2)
            .with_epsilon(recipe.epsilon)
            .with_weight_decay(recipe.weight_decay)
            .with_max_grad_norm(recipe.max_grad_norm.map(|n| n as f32))
            .init(),
    };
    let mut optimizer = fresh_optimizer();
    let mut meta = start.meta.clone();
    let mut model: TaskModel;
    let mut state = TrainState {
        fingerprint: spec.fingerprint.clone(),
        phase: phase.name.clone(),
        seed: spec.seed,
        next_epoch: 0,
        group_in_epoch: 0,
        step: 0,
        epoch_loss_sum: 0.0,
        epoch_loss_steps: 0,
        examples_seen: 0,
        history: Vec::new(),
        wall_s: 0.0,
        train_s: 0.0,
    };
    let ckpt_dir = checkpoint::dir(&spec.run_dir);
    let resumed = match checkpoint::load(&ckpt_dir, &start.meta, &spec.device)? {
        Some(ck) => {
            if ck.state.fingerprint != spec.fingerprint {
                return Err(TrainError::Checkpoint {
                    path: ckpt_dir,
                    message: "was written by a different configuration or starting model; \
                              use another output_dir or delete it"
                        .into(),
                });
            }
            model = ck.model.fork(&ad).train();
            optimizer = checkpoint::load_optimizer(&ckpt_dir, optimizer)?;
            state = ck.state;
            meta = ck.meta;
            tracing::info!(phase = %phase.name, seed = spec.seed, epoch = state.next_epoch, step = state.step, "resuming from {}", ckpt_dir.display());
            true
        }
        None => {
            model = start.model.clone().fork(&ad).train();
            false
        }
    };
    if let Some(p) = recipe.dropout {
        model.set_dropout(p);
    }
    observer.run_start(&phase.name, spec.seed, recipe.epochs, state.next_epoch);
    let mut clock = Instant::now();
    let mut flush_clock = |state: &mut TrainState, train: bool| {
        let dt = clock.elapsed().as_secs_f64();
        state.wall_s += dt;
        if train {
            state.train_s += dt;
        }
        clock = Instant::now();
    };
    for epoch in state.next_epoch..recipe.epochs {
        let plan = plan_epoch(
            &lengths,
            recipe.batch_size,
            recipe.bucket_by_length,
            phase.sampler,
            spec.seed,
            epoch,
        );
        let groups: Vec<_> = plan.chunks(recipe.grad_accum_steps).collect();
        observer.epoch_start(epoch, groups.len() as u64, state.group_in_epoch as u64);
        for (g, group) in groups.iter().enumerate().skip(state.group_in_epoch) {
            let mut acc = GradientsAccumulator::<TaskModel>::new();
            let mut step_loss = 0.0f32;
            let mut examples = 0;
            for (k, batch) in group.iter().enumerate() {
                ad.seed(derive_seed(
                    spec.seed,
                    &[
                        "dropout".into(),
                        spec.phase_index.into(),
                        state.step.into(),
                        k.into(),
                    ],
                ));
                let data = &spec.data[batch.task];
                let input = collate(spec.tokenizer, &data.train.select(&batch.examples), &ad);
                let labels =
                    data.train
                        .labels(&batch.examples, data.task.target.is_regression(), &ad);
                let logits = model.forward(input, batch.task); // [batch, outputs]
                let l = loss(logits, labels).div_scalar(group.len() as f64); // [1]
                step_loss += scalar(l.clone());
                let grads = GradientsParams::from_grads(l.backward(), &model);
                acc.accumulate(&model, grads);
                examples += batch.examples.len();
            }
            if !step_loss.is_finite() {
                return Err(TrainError::Diverged {
                    phase: phase.name.clone(),
                    seed: spec.seed,
                    step: state.step,
                    loss: step_loss,
                });
            }
            let mut grads = acc.grads();
            if let (OptimizerKind::AdamW, Some(max)) = (recipe.optimizer, recipe.max_grad_norm) {
                clip_global_norm(&model, &mut grads, max); // BertAdam clips per parameter
            }
            let lr = schedule.lr(state.step);
            model = optimizer.step(lr, model, grads);
            state.step += 1;
            state.examples_seen += examples as u64;
            state.epoch_loss_sum += f64::from(step_loss);
            state.epoch_loss_steps += 1;
            state.group_in_epoch = g + 1;
            observer.step(&StepEvent {
                step: state.step,
                total_steps,
                step_in_epoch: (g + 1) as u64,
                steps_in_epoch: groups.len() as u64,
                loss: step_loss,
                lr,
                examples,
            });
            if let Some(k) = recipe.checkpoint_every_steps
                && state.step.is_multiple_of(k)
                && g + 1 < groups.len()
            {
                flush_clock(&mut state, true);
                checkpoint::save(&ckpt_dir, &model.valid(), &meta, &optimizer, &state)?;
            }
        }
        flush_clock(&mut state, true);
        let eval_model = model.valid();
        let dev_examples: usize = spec.data.iter().map(|d| d.dev.data.len()).sum();
        observer.eval_start(dev_examples);
        let mut dev = Vec::new();
        for (t, data) in spec.data.iter().enumerate() {
            let logits = predict(
                &eval_model,
                t,
                &data.dev,
                spec.tokenizer,
                recipe.eval_batch_size,
                &spec.device,
            );
            dev.push(score_split(&data.task, &data.dev, &logits)?);
        }
        let dev_score = phase.selection_score(&dev.iter().map(|d| d.score).collect::<Vec<_>>());
        let record = EpochRecord {
            epoch: epoch + 1,
            step: state.step,
            train_loss: state.epoch_loss_sum / state.epoch_loss_steps.max(1) as f64,
            dev,
            dev_score,
        };
        tracing::info!(phase = %phase.name, seed = spec.seed, epoch = epoch + 1, train_loss = record.train_loss, dev_score, "epoch done");
        state.history.push(record.clone());
        if recipe.keep == Keep::BestEpoch
            && first_best(state.history.iter().map(|r| r.dev_score)) == Some(epoch)
        {
            let best = Carried {
                model: eval_model.clone(),
                meta: meta.clone(),
            };
            checkpoint::save_best_epoch(&spec.run_dir, &best)?;
        }
        state.next_epoch = epoch + 1;
        state.group_in_epoch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_loss_steps = 0;
        flush_clock(&mut state, false);
        checkpoint::save(&ckpt_dir, &eval_model, &meta, &optimizer, &state)?;
        write_json(&spec.run_dir.join("val_history.json"), &state.history)?;
        observer.epoch_end(&record);
    }
    // Final predictions and outputs, from the kept epoch's model.
    let last = state.history.len();
    let kept_epoch = match recipe.keep {
        Keep::Last => last,
        Keep::BestEpoch => {
            first_best(state.history.iter().map(|r| r.dev_score)).map_or(last, |i| i + 1)
        }
    };
    let carried = if kept_epoch < last {
        tracing::info!(phase = %phase.name, seed = spec.seed, kept_epoch, "keeping the best epoch's model");
        checkpoint::load_best_epoch(&spec.run_dir, &spec.device)?
    } else {
        Carried {
            model: model.valid(),
            meta,
        }
    };
    let mut dev_predictions = Vec::new();
    let mut test_predictions = Vec::new();
    for (t, data) in spec.data.iter().enumerate() {
        let logits = predict(
            &carried.model,
            t,
            &data.dev,
            spec.tokenizer,
            recipe.eval_batch_size,
            &spec.device,
        );
        dev_predictions.push(named_predictions(data, &data.dev, logits));
        for test in data.test.iter().filter(|_| phase.predict_test) {
            let logits = predict(
                &carried.model,
                t,
                test,
                spec.tokenizer,
                recipe.eval_batch_size,
                &spec.device,
            );
            test_predictions.push(named_predictions(data, test, logits));
        }
    }
    let dir = model_dir(&spec.run_dir);
    save_model(&carried, &dir)?;
    flush_clock(&mut state, false);
    let task_baselines = task_baselines(spec.data)?;
    let baseline =
        phase.selection_score(&task_baselines.iter().map(|(_, b)| *b).collect::<Vec<_>>());
    let dev_score = kept_epoch
        .checked_sub(1)
        .and_then(|i| state.history.get(i))
        .map(|r| r.dev_score)
        .unwrap_or(f64::NAN);
    let result = RunResult {
        phase: phase.name.clone(),
        seed: spec.seed,
        history: state.history.clone(),
        kept_epoch,
        dev_score,
        baseline,
        task_baselines: task_baselines.into_iter().collect(),
        degenerate: is_degenerate(dev_score, baseline),
        data: spec.data.iter().flat_map(TaskData::files).collect(),
        manifests: spec
            .data
            .iter()
            .filter_map(|d| d.manifest.clone())
            .collect(),
        weights_sha256: weights_sha256(&carried.model),
        dev_predictions,
        test_predictions,
        steps: state.step,
        train_examples_seen: state.examples_seen,
        wall_s: state.wall_s,
        examples_per_s: state.examples_seen as f64 / state.train_s.max(1e-9),
        resumed,
    };
    write_json(&result_path, &result)?;
    checkpoint::remove(&ckpt_dir)?;
    checkpoint::remove(&checkpoint::best_epoch_dir(&spec.run_dir))?;
    observer.run_end(&result);
    Ok((result, carried))
}

/// Head outputs for every example of `split`, in order (batches sorted by length internally).
pub fn predict(
    model: &TaskModel,
    head: usize,
    split: &Split,
    tokenizer: &BertTokenizer,
    batch_size: usize,
    device: &Device,
) -> Vec<Vec<f32>> {
    let mut order: Vec<usize> = (0..split.encodings.len()).collect();
    order.sort_by_key(|&i| split.encodings[i].len());
    let mut out = vec![Vec::new(); order.len()];
    for chunk in order.chunks(batch_size) {
        let input = collate(tokenizer, &split.select(chunk), device);
        let logits = model.forward(input, head); // [batch, outputs]
        let [_, outputs] = logits.dims();
        let values: Vec<f32> = logits.into_data().iter::<f32>().collect();
        for (row, &i) in chunk.iter().enumerate() {
            out[i] = values[row * outputs..(row + 1) * outputs].to_vec();
        }
    }
    out
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

fn predictions<'a>(
    target: &Target,
    gold: &'a [Label],
    logits: &[Vec<f32>],
    classes: &'a mut Vec<(usize, usize)>,
    scores: &'a mut Vec<(f64, f64)>,
) {
    for (l, g) in logits.iter().zip(gold) {
        if target.is_regression() {
            scores.push((f64::from(l[0]), g.score().unwrap_or(f64::NAN)));
        } else {
            classes.push((argmax(l), g.class().unwrap_or(0)));
        }
    }
}

fn evaluate(task: &Task, split: &Split, logits: &[Vec<f32>]) -> Result<metrics::Scores> {
    let gold: Vec<Label> = split
        .data
        .examples
        .iter()
        .map(|e| e.label.unwrap_or(Label::Class(0)))
        .collect();
    let mut classes = Vec::new();
    let mut scores = Vec::new();
    predictions(&task.target, &gold, logits, &mut classes, &mut scores);
    let (cp, cg): (Vec<usize>, Vec<usize>) = classes.into_iter().unzip();
    let (sp, sg): (Vec<f64>, Vec<f64>) = scores.into_iter().unzip();
    let preds = if task.target.is_regression() {
        Predictions::Scores {
            pred: &sp,
            gold: &sg,
        }
    } else {
        Predictions::Classes {
            pred: &cp,
            gold: &cg,
            num_classes: task.target.num_outputs(),
        }
    };
    metrics::evaluate(&task.metrics, &preds).map_err(|source| TrainError::Metric {
        task: task.name.clone(),
        source,
    })
}

/// Scores head outputs against a labelled split with the task's metrics (constant
/// regression outputs score 0).
pub fn score_split(task: &Task, split: &Split, logits: &[Vec<f32>]) -> Result<TaskScores> {
    let scores = match evaluate(task, split, logits) {
        Ok(s) => s,
        Err(_) if task.target.is_regression() => {
            return Ok(TaskScores {
                task: task.name.clone(),
                split: split.data.split.clone(),
                metrics: task
                    .metrics
                    .iter()
                    .map(|m: &Metric| (m.name().to_owned(), 0.0))
                    .collect(),
                score: 0.0,
            });
        }
        Err(e) => return Err(e),
    };
    Ok(TaskScores {
        task: task.name.clone(),
        split: split.data.split.clone(),
        metrics: scores
            .iter()
            .map(|(m, v)| (m.name().to_owned(), v))
            .collect(),
        score: scores.task_score(),
    })
}

/// Each task's dev score of predicting its training set's majority class (classification; 0
/// for correlations of a constant), in task order.
pub fn task_baselines(data: &[TaskData]) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::with_capacity(data.len());
    for d in data {
        let outputs = d.task.target.num_outputs();
        let s = if d.task.target.is_regression() {
            0.0
        } else {
            let counts = d.train.data.label_counts(outputs);
            let majority = counts
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
                .unwrap_or(0);
            let mut row = vec![0.0f32; outputs];
            row[majority] = 1.0;
            let logits = vec![row; d.dev.data.len()];
            score_split(&d.task, &d.dev, &logits)?.score
        };
        out.push((d.task.name.clone(), s));
    }
    Ok(out)
}

fn named_predictions(data: &TaskData, split: &Split, logits: Vec<Vec<f32>>) -> SplitPredictions {
    let predictions = logits
        .iter()
        .map(|l| {
            if data.task.target.is_regression() {
                format!("{:.3}", l[0])
            } else {
                data.task
                    .labels()
                    .get(argmax(l))
                    .cloned()
                    .unwrap_or_default()
            }
        })
        .collect();
    SplitPredictions {
        task: data.task.name.clone(),
        split: split.data.split.clone(),
        ids: split.data.examples.iter().map(|e| e.id.clone()).collect(),
        predictions,
        logits,
    }
}

/// SHA-256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// Writes pretty JSON atomically (temporary file, then rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainError::json(path, e))?;
    checkpoint::write_atomic(path, text.as_bytes())
}

/// A run is degenerate when its dev score is at or below the baseline's (or not a number).
pub fn is_degenerate(dev_score: f64, baseline: f64) -> bool {
    dev_score.is_nan() || dev_score <= baseline + 1e-12
}

/// SHA-256 over every float parameter's shape and little-endian `f32` values, in module order:
/// equal for equal weights whatever the parameter ids or file layout.
pub fn weights_sha256<M: Module>(model: &M) -> String {
    struct Hasher(Sha256);
    impl ModuleVisitor for Hasher {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            for d in t.dims() {
                self.0.update((d as u64).to_le_bytes());
            }
            for v in t.into_data().iter::<f32>() {
                self.0.update(v.to_le_bytes());
            }
        }
    }
    let mut h = Hasher(Sha256::new());
    model.visit(&mut h);
    format!("{:x}", h.0.finalize())
}
