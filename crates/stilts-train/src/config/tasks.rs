//! The tasks of a phase: a built-in name or a task file, its data root, its splits.

use std::path::{Path, PathBuf};

use stilts_data::custom::{TaskRef, load_task_file};
use stilts_data::{BuiltinTask, SplitRole};

use super::source::{expand, must_exist};
use stilts_models::EncoderKind;

use super::{DataFile, EXTRA_DIR_ENV, GLUE_DIR_ENV, PairMode, TaskEntryFile, TaskSpec};
use crate::error::{Result, TrainError};

/// The data roots of built-in (GLUE) and custom tasks.
pub(super) type Roots = (Option<PathBuf>, Option<PathBuf>);

/// `[data]` roots, else `$GLUE_DIR` and `$STILTS_EXTRA_DIR`.
pub(super) fn data_roots(origin: &Path, data: &DataFile) -> Result<Roots> {
    let root = |value: &Option<String>, key: &str, env: &str| -> Result<Option<PathBuf>> {
        Ok(value
            .as_deref()
            .map(|d| expand(origin, key, d))
            .transpose()?
            .or_else(|| std::env::var_os(env).map(PathBuf::from)))
    };
    Ok((
        root(&data.glue_dir, "data.glue_dir", GLUE_DIR_ENV)?,
        root(&data.extra_dir, "data.extra_dir", EXTRA_DIR_ENV)?,
    ))
}

/// A task named on a command line (`RTE` or a task file), its data found under `data`'s roots
/// as in an experiment; errors name `origin` and `key` (`<flags>`, `--task`).
pub fn resolve_named_task(
    origin: &Path,
    key: &str,
    task: &str,
    data: &DataFile,
) -> Result<TaskSpec> {
    let roots = data_roots(origin, data)?;
    resolve_task(
        origin,
        key,
        &TaskEntryFile::Name(task.to_owned()),
        &roots,
        EncoderKind::Bert,
    )
}

/// How a task's pairs reach an encoder unless the task entry says: GPT reads the pairs of a
/// symmetric task (paraphrase, similarity) in both orders and sums the two representations,
/// as Radford et al. did for STS-B, MRPC and QQP; ELMo reads each sentence of a pair alone and
/// the head reads `[u; v; |u-v|; u*v]` (the paper's Appendix A); everything else is read
/// jointly.
pub fn default_pair(encoder: EncoderKind, task: &stilts_data::Task) -> PairMode {
    match encoder {
        EncoderKind::Elmo if task.input == stilts_data::InputKind::Pair => PairMode::Separate,
        EncoderKind::Gpt if task.symmetric && task.input == stilts_data::InputKind::Pair => {
            PairMode::BothOrders
        }
        _ => PairMode::Joint,
    }
}

/// Resolves one task entry of a phase; `key` is its key path (`phases[0].tasks[1]`).
pub(super) fn resolve_task(
    origin: &Path,
    key: &str,
    entry: &TaskEntryFile,
    roots: &Roots,
    encoder: EncoderKind,
) -> Result<TaskSpec> {
    let (reference, data_root, train_examples, dev_split, pair) = match entry {
        TaskEntryFile::Name(n) => (n.clone(), None, None, None, None),
        TaskEntryFile::Table(t) => (
            t.task.clone(),
            t.data_root.clone(),
            t.train_examples,
            t.dev_split.clone(),
            t.pair,
        ),
    };
    let task_ref = if reference.ends_with(".toml") {
        let path = expand(origin, key, &reference)?;
        must_exist(origin, key, &path, "task file")?;
        TaskRef::File(path)
    } else {
        TaskRef::Builtin(
            BuiltinTask::parse(&reference)
                .map_err(|e| TrainError::config(origin, key, e.to_string()))?,
        )
    };
    let task = match &task_ref {
        TaskRef::Builtin(b) => b.task(),
        TaskRef::File(p) => load_task_file(p)
            .map_err(|e| TrainError::config_cause(origin, key, "cannot load the task file", e))?,
    };
    let root = match data_root {
        Some(r) => Some(expand(origin, &format!("{key}.data_root"), &r)?),
        None => match task_ref {
            TaskRef::Builtin(_) => roots.0.clone(),
            TaskRef::File(_) => roots.1.clone(),
        },
    };
    let Some(root) = root else {
        let (k, env) = match task_ref {
            TaskRef::Builtin(_) => ("data.glue_dir", GLUE_DIR_ENV),
            TaskRef::File(_) => ("data.extra_dir", EXTRA_DIR_ENV),
        };
        return Err(TrainError::config(
            origin,
            key,
            format!("no data root for {}: set `{k}` or ${env}", task.name),
        ));
    };
    let dir = task.dir_in(&root);
    let train_split = task.train_split().map(|s| s.name.clone()).ok_or_else(|| {
        TrainError::config(origin, key, format!("{} has no train split", task.name))
    })?;
    let dev_split = match dev_split {
        Some(d) => {
            if task.split(&d).is_none() {
                return Err(TrainError::config(
                    origin,
                    format!("{key}.dev_split"),
                    format!(
                        "{} has no split `{d}` (splits: {})",
                        task.name,
                        task.split_names().join(", ")
                    ),
                ));
            }
            d
        }
        None => task
            .dev_splits()
            .next()
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                TrainError::config(origin, key, format!("{} has no dev split", task.name))
            })?,
    };
    for split in [&train_split, &dev_split] {
        match task.locate(&dir, split) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err(TrainError::config(
                    origin,
                    key,
                    format!(
                        "{}: split `{split}` not found under {}",
                        task.name,
                        dir.display()
                    ),
                ));
            }
        }
    }
    if train_examples == Some(0) {
        return Err(TrainError::config(
            origin,
            format!("{key}.train_examples"),
            "must be at least 1",
        ));
    }
    let test_splits = task
        .splits
        .iter()
        .filter(|s| s.role == SplitRole::Test && matches!(task.locate(&dir, &s.name), Ok(Some(_))))
        .map(|s| s.name.clone())
        .collect();
    let pair = pair.unwrap_or_else(|| default_pair(encoder, &task));
    if !pair.is_joint() && task.input != stilts_data::InputKind::Pair {
        return Err(TrainError::config(
            origin,
            format!("{key}.pair"),
            format!(
                "{} is a single-sentence task; `pair` applies to pair tasks",
                task.name
            ),
        ));
    }
    Ok(TaskSpec {
        reference,
        task,
        dir,
        train_examples,
        dev_split,
        train_split,
        test_splits,
        pair,
    })
}
