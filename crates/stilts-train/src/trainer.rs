//! One run: one seed of one phase, as a [`Trainer`] that starts (or resumes from its
//! checkpoint), trains an epoch, evaluates, and finishes. Training runs on the autodiff device
//! (dropout active), evaluation on the plain device after every epoch; checkpoints are written
//! atomically at epoch ends (and every K steps if asked).

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, ModuleOptimizer};
use burn::tensor::Device;
use stilts_data::encoding::Tokenizer;
use stilts_data::rng::derive_seed;
use stilts_models::mixed;
use stilts_models::peft::PeftConfig;

use crate::batching::{PlannedBatch, plan_epoch};
use crate::checkpoint::{self, TrainState};
use crate::config::{Keep, OptimizerKind, Phase, Recipe};
use crate::curves::{self, curve_interval};
use crate::error::{Result, TrainError};
use crate::eval::{named_predictions, predict, score_split, task_baselines};
use crate::model::peft_file::{adapter_dir, save_adapter};
use crate::model::store::weights_sha256;
use crate::model::{Carried, ModelMeta, TaskModel, param_counts, write_model_dir};
use crate::observer::{Observer, StepEvent};
use crate::optim::{build_optimizer, clip_global_norm};
use crate::prepare::TaskData;
use crate::replicas::{micro_step, replicated_step};
use crate::results::{
    EpochRecord, EpochTime, LossPoint, RunResult, RunSizes, dir_bytes, first_best, is_degenerate,
    model_dir, result_file, write_json,
};
use crate::schedule::{LinearWarmupDecay, early_stop, rate_scale};

/// What a run needs.
pub struct RunSpec<'a> {
    /// The phase.
    pub phase: &'a Phase,
    /// Its position in the experiment (part of the dropout seeds).
    pub phase_index: usize,
    /// The restart seed.
    pub seed: u64,
    /// Each task's data for this seed.
    pub data: &'a [TaskData],
    /// The tokenizer (with the phase's `max_seq_len`).
    pub tokenizer: &'a Tokenizer,
    /// Where the run's files go.
    pub run_dir: PathBuf,
    /// The plain device (training uses its autodiff form).
    pub device: Device,
    /// Data-parallel replicas' plain devices, the first being `device` ([`crate::replicas`]);
    /// empty (or one) for training on `device` alone.
    pub replicas: Vec<Device>,
    /// Identifies the configuration and starting model; a checkpoint with another one is
    /// refused.
    pub fingerprint: String,
    /// The tokenizer's files, saved with the model.
    pub tokenizer_files: Option<&'a stilts_io::files::TokenizerFiles>,
}

/// Runs (or resumes, or finds finished) one run and returns its result; the final model is in
/// [`model_dir`].
pub fn run(
    spec: &RunSpec<'_>,
    start: &Carried,
    observer: &mut dyn Observer,
) -> Result<(RunResult, Carried)> {
    let result_path = result_file(&spec.run_dir);
    if result_path.exists() {
        let result = RunResult::read(&result_path)?;
        let carried = crate::model::load_model(&model_dir(&spec.run_dir), &spec.device)?;
        tracing::info!(phase = %spec.phase.name, seed = spec.seed, "run already finished; reusing {}", spec.run_dir.display());
        observer.run_end(&result);
        return Ok((result, carried));
    }
    let mut trainer = Trainer::start(spec, start)?;
    observer.run_start(
        &spec.phase.name,
        spec.seed,
        spec.phase.recipe.epochs,
        trainer.state.next_epoch,
    );
    while trainer.state.next_epoch < spec.phase.recipe.epochs {
        if let Some(why) = trainer.stop_reason() {
            tracing::info!(phase = %spec.phase.name, seed = spec.seed, epochs = trainer.state.next_epoch, "stopping early: {why}");
            break;
        }
        trainer.train_epoch(observer)?;
        trainer.evaluate(observer)?;
    }
    trainer.finish(observer)
}

/// Wall time, split into training and everything else.
struct Clock(Instant);

impl Clock {
    fn flush(&mut self, state: &mut TrainState, training: bool) {
        let dt = self.0.elapsed().as_secs_f64();
        state.wall_s += dt;
        if training {
            state.train_s += dt;
            state.epoch_train_s += dt;
        }
        self.0 = Instant::now();
    }
}

/// A run in progress.
pub struct Trainer<'s, 'a> {
    spec: &'s RunSpec<'a>,
    /// The autodiff form of the device.
    ad: Device,
    /// The autodiff forms of the data-parallel replicas' devices (empty: `ad` alone).
    replicas: Vec<Device>,
    /// Example lengths of each task's training set.
    lengths: Vec<Vec<usize>>,
    schedule: LinearWarmupDecay,
    optimizer: ModuleOptimizer,
    /// The model being trained (autodiff device).
    model: TaskModel,
    meta: ModelMeta,
    /// Everything besides weights and optimizer moments (checkpointed).
    pub state: TrainState,
    clock: Clock,
    resumed: bool,
    /// The plateau schedule's factor for the current epoch (a function of the dev history).
    rate_scale: f64,
    /// Trained and total parameter values.
    params: (usize, usize),
    /// The run directory's heartbeat, kept while this trainer lives.
    _heartbeat: crate::heartbeat::HeartbeatGuard,
}

impl<'s, 'a> Trainer<'s, 'a> {
    /// Starts the run from `start`, or resumes it from its checkpoint (refused when written by
    /// another configuration). The devices compute in the recipe's precision:
    /// [`crate::experiment::run_experiment`] refuses any other before a phase trains.
    pub fn start(spec: &'s RunSpec<'a>, start: &Carried) -> Result<Self> {
        let recipe = &spec.phase.recipe;
        std::fs::create_dir_all(&spec.run_dir).map_err(|e| TrainError::io(&spec.run_dir, e))?;
        let ad = spec.device.clone().autodiff();
        let lengths: Vec<Vec<usize>> = spec.data.iter().map(|d| d.train.lengths()).collect();
        let batches_per_epoch = plan_epoch(
            &lengths,
            recipe.batch_size,
            recipe.bucket_by_length,
            spec.phase.sampler,
            spec.seed,
            0,
        )
        .len();
        let steps_per_epoch = batches_per_epoch.div_ceil(recipe.grad_accum_steps) as u64;
        let total_steps = steps_per_epoch * recipe.epochs as u64;
        let schedule = LinearWarmupDecay::of_kind(
            recipe.schedule,
            recipe.lr,
            total_steps,
            recipe.warmup_proportion,
        );
        let ckpt_dir = checkpoint::dir(&spec.run_dir);
        let mut optimizer = build_optimizer(recipe);
        let (model, meta, state, resumed) = match checkpoint::load(&ckpt_dir, &spec.device)? {
            Some(ck) => {
                if ck.state.fingerprint != spec.fingerprint {
                    return Err(TrainError::Checkpoint {
                        path: ckpt_dir,
                        message: "was written by a different configuration or starting model; \
                                  use another output_dir or delete it"
                            .into(),
                    });
                }
                optimizer = checkpoint::load_optimizer(&ck.dir, optimizer)?;
                tracing::info!(phase = %spec.phase.name, seed = spec.seed, epoch = ck.state.next_epoch, step = ck.state.step, "resuming from {}", ckpt_dir.display());
                (ck.model, ck.meta, ck.state, true)
            }
            None => (
                start.model.clone(),
                start.meta.clone(),
                TrainState::new(spec.fingerprint.clone(), &spec.phase.name, spec.seed),
                false,
            ),
        };
        let mut model = model
            .freeze(
                &recipe.freeze,
                &trained_modules(recipe, &meta),
                &recipe.modules_to_save,
            )
            .map_err(|message| TrainError::Head {
                phase: spec.phase.name.clone(),
                message: format!("freeze: {message}"),
            })?
            .fork(&ad)
            .train();
        if let Some(p) = recipe.dropout {
            model.set_dropout(p);
        }
        let (trainable, total) = param_counts(&model);
        tracing::info!(
            phase = %spec.phase.name,
            seed = spec.seed,
            "trainable parameters: {trainable} of {total} ({:.2}%)",
            100.0 * trainable as f64 / total.max(1) as f64
        );
        Ok(Trainer {
            spec,
            ad,
            replicas: spec.replicas.iter().map(|d| d.clone().autodiff()).collect(),
            lengths,
            schedule,
            optimizer,
            model,
            meta,
            state,
            clock: Clock(Instant::now()),
            resumed,
            rate_scale: 1.0,
            params: (trainable, total),
            _heartbeat: crate::heartbeat::HeartbeatGuard::start(&spec.run_dir),
        })
    }

    fn dev_scores(&self) -> Vec<f64> {
        self.state.history.iter().map(|r| r.dev_score).collect()
    }

    /// Why the run stops before its last epoch (early stopping, or a plateau schedule's rate
    /// below its floor), judged on the dev scores so far.
    pub fn stop_reason(&self) -> Option<String> {
        let recipe = &self.spec.phase.recipe;
        early_stop(
            recipe.schedule,
            recipe.lr,
            recipe.early_stop_patience,
            &self.dev_scores(),
        )
    }

    /// The rate of optimizer step `step` in the current epoch: the schedule's, scaled by the
    /// plateau cuts the dev scores so far have made (fixed for the epoch).
    fn lr(&self, step: u64) -> f64 {
        self.schedule.lr(step) * self.rate_scale
    }

    /// Trains the rest of the current epoch (all of it, or what a mid-epoch checkpoint left).
    pub fn train_epoch(&mut self, observer: &mut dyn Observer) -> Result<()> {
        let recipe = &self.spec.phase.recipe;
        self.rate_scale = rate_scale(recipe.schedule, &self.dev_scores());
        let epoch = self.state.next_epoch;
        let plan = plan_epoch(
            &self.lengths,
            recipe.batch_size,
            recipe.bucket_by_length,
            self.spec.phase.sampler,
            self.spec.seed,
            epoch,
        );
        let groups: Vec<&[PlannedBatch]> = plan.chunks(recipe.grad_accum_steps).collect();
        observer.epoch_start(epoch, groups.len() as u64, self.state.group_in_epoch as u64);
        for g in self.state.group_in_epoch..groups.len() {
            let (step_loss, aux_loss, examples) = self.step(groups[g])?;
            self.state.examples_seen += examples as u64;
            self.state.epoch_examples += examples as u64;
            self.state.epoch_loss_sum += f64::from(step_loss);
            if let Some(aux) = aux_loss {
                self.state.epoch_aux_loss_sum += f64::from(aux);
            }
            self.state.epoch_loss_steps += 1;
            self.log_loss(step_loss, aux_loss, g + 1 == groups.len());
            self.state.group_in_epoch = g + 1;
            observer.step(&StepEvent {
                step: self.state.step,
                total_steps: self.schedule.total_steps(),
                step_in_epoch: (g + 1) as u64,
                steps_in_epoch: groups.len() as u64,
                loss: step_loss,
                lr: self.lr(self.state.step - 1),
                examples,
            });
            if let Some(k) = recipe.checkpoint_every_steps
                && self.state.step.is_multiple_of(k)
                && g + 1 < groups.len()
            {
                self.clock.flush(&mut self.state, true);
                self.checkpoint()?;
            }
        }
        self.clock.flush(&mut self.state, true);
        Ok(())
    }

    /// One optimizer step over a group of micro-batches: returns the step's (task) loss, its
    /// auxiliary loss when the encoder has one, and the number of examples.
    fn step(&mut self, group: &[PlannedBatch]) -> Result<(f32, Option<f32>, usize)> {
        let spec = self.spec;
        let recipe = &spec.phase.recipe;
        let mut acc = GradientsAccumulator::<TaskModel>::new();
        let mut step_loss = 0.0f32;
        let mut step_aux: Option<f32> = None;
        let mut examples = 0;
        for (k, batch) in group.iter().enumerate() {
            let parts = if spec.replicas.len() > 1 {
                replicated_step(
                    spec,
                    &self.model,
                    &self.replicas,
                    batch,
                    k,
                    self.state.step,
                    group.len(),
                )
            } else {
                self.ad.seed(derive_seed(
                    spec.seed,
                    &[
                        "dropout".into(),
                        spec.phase_index.into(),
                        self.state.step.into(),
                        k.into(),
                    ],
                ));
                vec![micro_step(
                    spec,
                    &self.model,
                    &self.ad,
                    batch.task,
                    &batch.examples,
                    group.len(),
                    None,
                )]
            };
            for part in parts {
                step_loss += part.task_loss;
                if let Some(aux) = part.aux_loss {
                    *step_aux.get_or_insert(0.0) += aux;
                }
                acc.accumulate(&self.model, part.grads);
            }
            examples += batch.examples.len();
        }
        if !step_loss.is_finite() {
            return Err(TrainError::Diverged {
                phase: spec.phase.name.clone(),
                seed: spec.seed,
                step: self.state.step,
                loss: step_loss,
            });
        }
        let mut grads = acc.grads();
        if let (OptimizerKind::AdamW, Some(max)) = (recipe.optimizer, recipe.max_grad_norm) {
            clip_global_norm(&self.model, &mut grads, max); // BertAdam clips per parameter
        }
        let lr = self.lr(self.state.step);
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        self.state.step += 1;
        Ok((step_loss, step_aux, examples))
    }

    fn checkpoint(&self) -> Result<()> {
        checkpoint::save(
            &checkpoint::dir(&self.spec.run_dir),
            &self.model.valid(),
            &self.meta,
            &self.optimizer,
            &self.state,
        )
    }

    /// Adds a step's losses to the curve's open window, and closes the window into a point every
    /// [`curve_interval`] steps and at the end of an epoch.
    fn log_loss(&mut self, loss: f32, aux: Option<f32>, epoch_end: bool) {
        let window = &mut self.state.loss_window;
        window.0 += f64::from(loss);
        window.1 += f64::from(aux.unwrap_or(0.0));
        window.2 += 1;
        let every = curve_interval(self.schedule.total_steps());
        if epoch_end || self.state.step.is_multiple_of(every) {
            let (sum, aux_sum, steps) = std::mem::take(window);
            let steps = steps as f64;
            self.state.loss_curve.push(LossPoint {
                step: self.state.step,
                loss: sum / steps,
                aux_loss: aux.map(|_| aux_sum / steps),
            });
        }
    }

    /// Evaluates the epoch just trained on every task's dev split, holds the model when it is
    /// the best so far (`keep = "best_epoch"`), and checkpoints the end of the epoch.
    pub fn evaluate(&mut self, observer: &mut dyn Observer) -> Result<EpochRecord> {
        let spec = self.spec;
        let recipe = &spec.phase.recipe;
        let epoch = self.state.next_epoch;
        let eval_model = mixed::compute_copy(self.model.valid(), recipe.compute_dtype());
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
        let dev_score = spec
            .phase
            .selection_score(&dev.iter().map(|d| d.score).collect::<Vec<_>>());
        let steps = self.state.epoch_loss_steps.max(1) as f64;
        let record = EpochRecord {
            epoch: epoch + 1,
            step: self.state.step,
            train_loss: self.state.epoch_loss_sum / steps,
            aux_loss: (recipe.aux_lm_weight > 0.0).then(|| self.state.epoch_aux_loss_sum / steps),
            dev,
            dev_score,
        };
        let time = EpochTime {
            epoch: epoch + 1,
            train_s: self.state.epoch_train_s,
            examples: self.state.epoch_examples,
            examples_per_s: self.state.epoch_examples as f64 / self.state.epoch_train_s.max(1e-9),
            threads: stilts_models::device::threads(),
        };
        tracing::info!(phase = %spec.phase.name, seed = spec.seed, epoch = epoch + 1, train_loss = record.train_loss, dev_score, train_s = time.train_s, examples_per_s = time.examples_per_s, "epoch done");
        self.state.history.push(record.clone());
        self.state.epoch_times.push(time);
        self.state.epoch_train_s = 0.0;
        self.state.epoch_examples = 0;
        if recipe.keep == Keep::BestEpoch
            && first_best(self.state.history.iter().map(|r| r.dev_score)) == Some(epoch)
        {
            let best = Carried {
                model: eval_model.clone(),
                meta: self.saved_meta(),
            };
            checkpoint::save_best_epoch(&spec.run_dir, &best)?;
        }
        self.state.next_epoch = epoch + 1;
        self.state.group_in_epoch = 0;
        self.state.epoch_loss_sum = 0.0;
        self.state.epoch_aux_loss_sum = 0.0;
        self.state.epoch_loss_steps = 0;
        self.clock.flush(&mut self.state, false);
        checkpoint::save(
            &checkpoint::dir(&spec.run_dir),
            &eval_model,
            &self.meta,
            &self.optimizer,
            &self.state,
        )?;
        write_json(&spec.run_dir.join("val_history.json"), &self.state.history)?;
        curves::write(
            &spec.run_dir,
            &format!("{} · seed {}", spec.phase.name, spec.seed),
            &self.state.loss_curve,
            &self.state.history,
        )?;
        observer.epoch_end(&record);
        Ok(record)
    }

    /// The metadata a saved model of this run carries (with the phase's `max_seq_len`).
    fn saved_meta(&self) -> ModelMeta {
        ModelMeta {
            max_seq_len: Some(self.spec.phase.recipe.max_seq_len),
            ..self.meta.clone()
        }
    }

    /// Predicts with the kept epoch's model, saves it, writes `result.json` and removes the
    /// checkpoint.
    pub fn finish(mut self, observer: &mut dyn Observer) -> Result<(RunResult, Carried)> {
        let spec = self.spec;
        let phase = spec.phase;
        let recipe = &phase.recipe;
        let last = self.state.history.len();
        let kept_epoch = match recipe.keep {
            Keep::Last => last,
            Keep::BestEpoch => {
                first_best(self.state.history.iter().map(|r| r.dev_score)).map_or(last, |i| i + 1)
            }
        };
        let carried = if kept_epoch < last {
            tracing::info!(phase = %phase.name, seed = spec.seed, kept_epoch, "keeping the best epoch's model");
            checkpoint::load_best_epoch(&spec.run_dir, &spec.device)?
        } else {
            Carried {
                model: self.model.valid(),
                meta: self.saved_meta(),
            }
        };
        let mut dev_predictions = Vec::new();
        let mut test_predictions = Vec::new();
        for (t, data) in spec.data.iter().enumerate() {
            let run = |split| {
                predict(
                    &carried.model,
                    t,
                    split,
                    spec.tokenizer,
                    recipe.eval_batch_size,
                    &spec.device,
                )
            };
            dev_predictions.push(named_predictions(&data.task, &data.dev, run(&data.dev)));
            for test in data.test.iter().filter(|_| phase.predict_test) {
                test_predictions.push(named_predictions(&data.task, test, run(test)));
            }
        }
        let saved_model = model_dir(&spec.run_dir);
        write_model_dir(&carried, &saved_model, spec.tokenizer_files)?;
        let mut adapter_bytes = None;
        if !trained_modules(recipe, &carried.meta).is_empty() {
            let dir = adapter_dir(&spec.run_dir);
            save_adapter(&carried, &dir, &recipe.modules_to_save)?;
            adapter_bytes = Some(dir_bytes(&dir)?);
        }
        let sizes = RunSizes {
            trained_params: self.params.0 as u64,
            total_params: self.params.1 as u64,
            model_bytes: dir_bytes(&saved_model)?,
            adapter_bytes,
        };
        self.clock.flush(&mut self.state, false);
        let task_baselines = task_baselines(spec.data)?;
        let baseline =
            phase.selection_score(&task_baselines.iter().map(|(_, b)| *b).collect::<Vec<_>>());
        let state = &self.state;
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
            resumed: self.resumed,
            loss_curve: state.loss_curve.clone(),
            epoch_times: state.epoch_times.clone(),
            sizes: Some(sizes),
        };
        write_json(&result_file(&spec.run_dir), &result)?;
        checkpoint::remove(&checkpoint::dir(&spec.run_dir))?;
        checkpoint::remove(&checkpoint::best_epoch_dir(&spec.run_dir))?;
        observer.run_end(&result);
        Ok((result, carried))
    }
}

/// The parameter-efficient modules a phase trains (empty: the encoder trains): the recipe's
/// LoRA and adapters, and the fusion the model carries when the recipe asks for one.
fn trained_modules(recipe: &Recipe, meta: &ModelMeta) -> PeftConfig {
    let mut which = recipe.peft();
    if recipe.fusion.is_some() {
        which.fusion = meta.peft.fusion.clone();
    }
    which
}
