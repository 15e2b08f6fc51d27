//! The experiment file to the [`Experiment`] the engine runs: every key checked, with an
//! error naming the file and the key path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::source::{expand, resolve_model};
use super::tasks::{Roots, data_roots, resolve_task};
use super::{
    DeviceKind, Experiment, ExperimentFile, HeadKind, HeadPolicy, LoadMode, ModelSource, Phase,
    PhaseFile, Recipe, Sampler, SamplerKind,
};
use crate::error::{Result, TrainError};
use crate::model::store::check_max_seq_len;

/// Validates and resolves `file` (see [`Experiment::from_file`]).
pub(super) fn resolve(
    file: &ExperimentFile,
    origin: &Path,
    default_name: &str,
) -> Result<Experiment> {
    let name = file.name.clone().unwrap_or_else(|| default_name.to_owned());
    stilts_io::names::check_component(&name).map_err(|m| TrainError::config(origin, "name", m))?;
    let output_dir = match &file.output_dir {
        Some(d) => expand(origin, "output_dir", d)?,
        None => PathBuf::from("runs").join(&name),
    };
    let replicas: Vec<DeviceKind> = file
        .devices
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, d)| {
            DeviceKind::parse(d).map_err(|m| TrainError::config(origin, format!("devices[{i}]"), m))
        })
        .collect::<Result<_>>()?;
    let device = match (&file.device, replicas.first()) {
        (Some(_), Some(_)) => {
            return Err(TrainError::config(
                origin,
                "devices",
                "set `device` or `devices`, not both",
            ));
        }
        (None, None) if file.devices.is_some() => {
            return Err(TrainError::config(origin, "devices", "no devices listed"));
        }
        (None, None) => DeviceKind::default(),
        (None, Some(first)) => *first,
        (Some(d), None) => {
            DeviceKind::parse(d).map_err(|m| TrainError::config(origin, "device", m))?
        }
    };
    let seed = file.seed.unwrap_or(1);
    let model = resolve_model(origin, &file.model)?;
    let base = Recipe::preset(model.encoder).merged(&file.recipe);
    base.validate("recipe", model.encoder)
        .map_err(|(k, m)| TrainError::config(origin, k, m))?;
    if file.phases.is_empty() {
        return Err(TrainError::config(origin, "phases", "no phases"));
    }
    let roots = data_roots(origin, &file.data)?;
    let mut phases = Vec::new();
    let mut names = BTreeSet::new();
    for (i, p) in file.phases.iter().enumerate() {
        let defaults = PhaseDefaults {
            recipe: &base,
            seed,
            roots: &roots,
            encoder: model.encoder,
        };
        let phase = resolve_phase(p, origin, i, &defaults)?;
        if !names.insert(phase.name.clone()) {
            return Err(TrainError::config(
                origin,
                format!("phases[{i}].name"),
                format!("phase name `{}` is used twice", phase.name),
            ));
        }
        let first_without_head = i == 0
            && !matches!(
                model.source,
                ModelSource::Checkpoint {
                    load: LoadMode::EncoderHead,
                    ..
                }
            );
        if first_without_head && phase.head != HeadPolicy::New {
            return Err(TrainError::config(
                origin,
                format!("phases[{i}].head"),
                "the first phase has no previous head to reuse or map (load a checkpoint with `load = \"encoder_head\"`)",
            ));
        }
        if let Some(config) = &model.config {
            check_max_seq_len(config, phase.recipe.max_seq_len).map_err(|m| {
                TrainError::config(origin, format!("phases[{i}].recipe.max_seq_len"), m)
            })?;
        }
        phases.push(phase);
    }
    Ok(Experiment {
        name,
        source: origin.to_path_buf(),
        output_dir,
        device,
        replicas: if replicas.len() > 1 {
            replicas
        } else {
            Vec::new()
        },
        seed,
        encoder: model.encoder,
        model: model.source,
        tokenizer: model.tokenizer,
        phases,
    })
}

/// The most restarts a phase may have (the paper's protocol is 20).
const MAX_RESTARTS: usize = 10_000;

/// Resolves `[[phases]]` entry `index` over the experiment's recipe `base`.
/// What every phase of an experiment starts from.
struct PhaseDefaults<'a> {
    /// The experiment's recipe (the encoder's preset with `[recipe]`).
    recipe: &'a Recipe,
    /// The base seed.
    seed: u64,
    /// The data roots.
    roots: &'a Roots,
    /// The encoder family.
    encoder: stilts_models::EncoderKind,
}

fn resolve_phase(
    p: &PhaseFile,
    origin: &Path,
    index: usize,
    defaults: &PhaseDefaults<'_>,
) -> Result<Phase> {
    let PhaseDefaults {
        recipe: base,
        seed,
        roots,
        encoder,
    } = *defaults;
    let key = |k: &str| format!("phases[{index}].{k}");
    let err = |k: &str, m: String| TrainError::config(origin, key(k), m);
    if p.tasks.is_empty() {
        return Err(err("tasks", "no tasks".into()));
    }
    let mut tasks = Vec::new();
    for (t, entry) in p.tasks.iter().enumerate() {
        tasks.push(resolve_task(
            origin,
            &key(&format!("tasks[{t}]")),
            entry,
            roots,
            encoder,
        )?);
    }
    let mut seen = BTreeSet::new();
    for t in &tasks {
        if !seen.insert(t.task.name.clone()) {
            return Err(err(
                "tasks",
                format!("task {} is listed twice", t.task.name),
            ));
        }
    }
    let multi = tasks.len() > 1;
    let sampler = match (p.sampler, p.temperature) {
        (Some(_), _) if !multi => {
            return Err(err(
                "sampler",
                "a sampler applies to multitask phases only".into(),
            ));
        }
        (Some(SamplerKind::Temperature), Some(t)) if t.is_finite() && t > 0.0 => {
            Sampler::Temperature { temperature: t }
        }
        (Some(SamplerKind::Temperature), Some(t)) => {
            return Err(err("temperature", format!("must be positive, got {t}")));
        }
        (Some(SamplerKind::Temperature), None) => {
            return Err(err(
                "temperature",
                "`sampler = \"temperature\"` needs `temperature`".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(err(
                "temperature",
                "applies to `sampler = \"temperature\"` only".into(),
            ));
        }
        (Some(SamplerKind::Uniform), None) => Sampler::Uniform,
        (Some(SamplerKind::Proportional) | None, None) => Sampler::Proportional,
    };
    let head = match (p.head.unwrap_or(HeadKind::New), &p.label_map) {
        (HeadKind::Map, Some(map)) => {
            if multi {
                return Err(err(
                    "head",
                    "`map` applies to single-task phases only".into(),
                ));
            }
            let task = &tasks[0].task;
            if task.target.is_regression() {
                return Err(err(
                    "label_map",
                    format!(
                        "{} is a regression task; it has no labels to map",
                        task.name
                    ),
                ));
            }
            for label in task.labels() {
                if !map.contains_key(label) {
                    return Err(err(
                        "label_map",
                        format!("label `{label}` of {} is not mapped", task.name),
                    ));
                }
            }
            for label in map.keys() {
                if task.label_index(label).is_none() {
                    return Err(err(
                        "label_map",
                        format!(
                            "`{label}` is not a label of {} (labels: {})",
                            task.name,
                            task.labels().join(", ")
                        ),
                    ));
                }
            }
            HeadPolicy::Map {
                label_map: map.clone(),
            }
        }
        (HeadKind::Map, None) => {
            return Err(err(
                "label_map",
                "`head = \"map\"` needs `label_map`".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(err("label_map", "applies to `head = \"map\"` only".into()));
        }
        (HeadKind::New, None) => HeadPolicy::New,
        (HeadKind::Reuse, None) => HeadPolicy::Reuse,
    };
    let seeds = match (&p.seeds, p.restarts) {
        (Some(_), Some(_)) => {
            return Err(err("seeds", "give `seeds` or `restarts`, not both".into()));
        }
        (Some(s), None) if s.is_empty() => return Err(err("seeds", "no seeds".into())),
        (Some(s), None) => {
            let unique: BTreeSet<_> = s.iter().collect();
            if unique.len() != s.len() {
                return Err(err("seeds", "a seed is listed twice".into()));
            }
            s.clone()
        }
        (None, Some(0)) => return Err(err("restarts", "must be at least 1".into())),
        (None, Some(n)) if n > MAX_RESTARTS => {
            return Err(err(
                "restarts",
                format!("must be at most {MAX_RESTARTS}, got {n}"),
            ));
        }
        (None, n) => {
            let n = n.unwrap_or(1) as u64;
            if seed.checked_add(n).is_none() {
                return Err(err(
                    "restarts",
                    format!("seeds {seed} + 0..{n} run past the largest seed"),
                ));
            }
            (0..n).map(|i| seed + i).collect()
        }
    };
    let mut recipe = base.merged(&p.recipe);
    if let Some(f) = &mut recipe.fusion {
        for (j, dir) in f.adapters.iter_mut().enumerate() {
            let k = key(&format!("recipe.fusion.adapters[{j}]"));
            *dir = expand(origin, &k, dir)?.to_string_lossy().into_owned();
        }
    }
    recipe
        .validate(&key("recipe"), encoder)
        .map_err(|(k, m)| TrainError::config(origin, k, m))?;
    let name = p.name.clone().unwrap_or_else(|| {
        tasks
            .iter()
            .map(|t| t.task.name.clone())
            .collect::<Vec<_>>()
            .join("+")
    });
    stilts_io::names::check_component(&name).map_err(|m| err("name", m))?;
    let select_on = match &p.select_on {
        None => None,
        Some(wanted) => Some(
            tasks
                .iter()
                .position(|t| t.task.name == *wanted || t.reference == *wanted)
                .ok_or_else(|| {
                    let names: Vec<&str> = tasks.iter().map(|t| t.task.name.as_str()).collect();
                    err(
                        "select_on",
                        format!(
                            "`{wanted}` is not a task of this phase (tasks: {})",
                            names.join(", ")
                        ),
                    )
                })?,
        ),
    };
    Ok(Phase {
        name,
        tasks,
        sampler,
        head,
        seeds,
        recipe,
        predict_test: p.predict_test.unwrap_or(false),
        select_on,
    })
}
