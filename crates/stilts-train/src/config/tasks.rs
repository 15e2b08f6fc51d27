//! The tasks of a phase: a built-in name or a task file, its data root, its splits.

use std::path::{Path, PathBuf};

use stilts_data::custom::{TaskRef, load_task_file};
use stilts_data::download::{DownloadConfig, download};
use stilts_data::{BuiltinTask, DataError, SplitRole};
use stilts_io::progress::Progress;

use stilts_io::cache::{self, var_dir};

use super::source::{expand, must_exist};
use stilts_models::EncoderKind;

use super::{DataFile, EXTRA_DIR_ENV, GLUE_DIR_ENV, PairMode, TaskEntryFile, TaskSpec};
use crate::error::{Result, TrainError};

/// Where the data of tasks is looked for.
pub(super) struct Roots {
    /// The root of built-in tasks, with what named it (`data.glue_dir`, else `$GLUE_DIR`).
    glue: Option<(String, PathBuf)>,
    /// Where a built-in task that `glue` lacks is looked for, and else downloaded
    /// (`$STILTS_CACHE/glue`).
    glue_cache: Option<PathBuf>,
    /// `STILTS_OFFLINE`: a built-in task no root holds is an error instead of a download.
    offline: bool,
    /// The root of custom tasks.
    extra: Option<PathBuf>,
}

/// The data roots: for built-in tasks `data.glue_dir`, else `$GLUE_DIR`, then the stilts cache
/// for what that root lacks; for custom tasks `data.extra_dir`, else `$STILTS_EXTRA_DIR`.
pub(super) fn data_roots(origin: &Path, data: &DataFile) -> Result<Roots> {
    let glue = match &data.glue_dir {
        Some(d) => Some((
            "data.glue_dir".to_owned(),
            expand(origin, "data.glue_dir", d)?,
        )),
        None => var_dir(GLUE_DIR_ENV).map(|d| (format!("${GLUE_DIR_ENV}"), d)),
    };
    let extra = match &data.extra_dir {
        Some(d) => Some(expand(origin, "data.extra_dir", d)?),
        None => var_dir(EXTRA_DIR_ENV),
    };
    Ok(Roots {
        glue,
        glue_cache: cache::glue_cache_dir(),
        offline: cache::offline(),
        extra,
    })
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
    let splits = [train_split.as_str(), dev_split.as_str()];
    let (dir, download_root) = match (data_root, &task_ref) {
        (Some(r), _) => (
            task.dir_in(&expand(origin, &format!("{key}.data_root"), &r)?),
            None,
        ),
        (None, TaskRef::File(_)) => match &roots.extra {
            Some(root) => (task.dir_in(root), None),
            None => {
                return Err(TrainError::config(
                    origin,
                    key,
                    format!(
                        "no data root for {}: set `data.extra_dir` or ${EXTRA_DIR_ENV}",
                        task.name
                    ),
                ));
            }
        },
        (None, TaskRef::Builtin(_)) => builtin_dir(origin, key, &task, splits, roots)?,
    };
    if download_root.is_none() {
        for split in splits {
            if !has_split(&task, &dir, split) {
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
    let test_splits = present_test_splits(&task, &dir);
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
        download_root,
    })
}

fn has_split(task: &stilts_data::Task, dir: &Path, split: &str) -> bool {
    matches!(task.locate(dir, split), Ok(Some(_)))
}

fn present_test_splits(task: &stilts_data::Task, dir: &Path) -> Vec<String> {
    task.splits
        .iter()
        .filter(|s| s.role == SplitRole::Test && has_split(task, dir, &s.name))
        .map(|s| s.name.clone())
        .collect()
}

/// The directory of a built-in task: in the GLUE root when it holds its `splits`, else its
/// folder in the stilts cache, with the cache as the root to download it into (`None` when it
/// is there already).
fn builtin_dir(
    origin: &Path,
    key: &str,
    task: &stilts_data::Task,
    splits: [&str; 2],
    roots: &Roots,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let holds = |dir: &Path| splits.iter().all(|s| has_split(task, dir, s));
    let mut looked = Vec::new();
    if let Some((from, root)) = &roots.glue {
        let dir = task.dir_in(root);
        if holds(&dir) {
            return Ok((dir, None));
        }
        looked.push(format!("{from} ({})", dir.display()));
    }
    let Some(cache) = &roots.glue_cache else {
        return Err(TrainError::config(
            origin,
            key,
            format!(
                "{} is not in {}; set `data.glue_dir` or ${GLUE_DIR_ENV} (no download cache: \
                 none of {}, XDG_CACHE_HOME, HOME is set)",
                task.name,
                if looked.is_empty() {
                    "any data root".to_owned()
                } else {
                    looked.join(" or ")
                },
                cache::CACHE_ENV,
            ),
        ));
    };
    let dir = task.dir_in(cache);
    if holds(&dir) {
        return Ok((dir, None));
    }
    looked.push(format!("the stilts cache ({})", dir.display()));
    if roots.offline {
        return Err(TrainError::config(
            origin,
            key,
            format!(
                "{name} is not in {where_}, and {offline}=1 forbids downloading it: run \
                 `stilts data download --tasks {name}` (it fills the stilts cache) where there is \
                 a network, or point ${GLUE_DIR_ENV} at a copy",
                name = task.name,
                where_ = looked.join(" or "),
                offline = cache::OFFLINE_ENV,
            ),
        ));
    }
    tracing::info!(task = %task.name, "not in {}: it will be downloaded", looked.join(" or "));
    Ok((dir, Some(cache.clone())))
}

/// Downloads a built-in task that resolution found in no data root into the stilts cache
/// (`STILTS_GLUE_MIRROR` applies), checks its splits and fills in its test splits. A no-op for
/// a task on disk.
pub(super) fn fetch(spec: &mut TaskSpec, progress: &dyn Progress) -> Result<()> {
    let Some(root) = spec.download_root.clone() else {
        return Ok(());
    };
    let failed = |source: DataError| TrainError::Download {
        task: spec.task.name.clone(),
        root: root.clone(),
        source: Box::new(source),
    };
    let builtin = BuiltinTask::parse(&spec.reference).map_err(failed)?;
    let mut cfg = DownloadConfig::new(&root);
    cfg.tasks = vec![builtin];
    cfg.base_url = cache::glue_mirror();
    download(&cfg, progress).map_err(failed)?;
    for split in [&spec.train_split, &spec.dev_split] {
        if !has_split(&spec.task, &spec.dir, split) {
            return Err(failed(DataError::Invalid(format!(
                "split `{split}` not found under {} after the download",
                spec.dir.display()
            ))));
        }
    }
    spec.test_splits = present_test_splits(&spec.task, &spec.dir);
    spec.download_root = None;
    Ok(())
}
