//! A GLUE submission bundle from a grid: for each GLUE target, the best-on-dev run of one
//! encoder over every condition and restart (the paper's "Best of Each"), exported and
//! validated by `stilts export glue` (AX scored with the chosen MNLI model, which carries its
//! tokenizer and `max_seq_len`) and zipped.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use stilts_data::BuiltinTask;
use stilts_io::files::TokenizerFiles;

use crate::grid::{Regime, RunKind, RunRow};

/// The run chosen for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub task: String,
    pub condition: String,
    pub restart: usize,
    pub dev_score: f64,
    /// The run's seed directory (`.../00-<phase>/seed-<s>`, holding result.json and model/).
    pub seed_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("no runs to bundle: choose() found no finished GLUE target run")]
    NoRuns,
    #[error(
        "{path}: the run has no test predictions (its grid ran with `predict_test = false`); \
         set predict_test = true and re-run to bundle a submission"
    )]
    NoTestPredictions { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}):\n{output}")]
    Export {
        command: String,
        status: String,
        output: String,
    },
}

/// Picks, per GLUE task, the best finished run of `encoder` in `regime` (target and multitask
/// runs; ties go to the earlier row).
pub fn choose(rows: &[RunRow], encoder: &str, regime: Regime) -> Vec<Choice> {
    let mut best: BTreeMap<String, Choice> = BTreeMap::new();
    for r in rows {
        if r.meta.kind == RunKind::Intermediate
            || r.meta.encoder != encoder
            || r.meta.regime != regime
        {
            continue;
        }
        let (Some(task), Some(out)) = (&r.meta.target, &r.outcome) else {
            continue;
        };
        if BuiltinTask::parse(task).is_err() || out.dev_score.is_nan() {
            continue;
        }
        let better = best.get(task).is_none_or(|b| out.dev_score > b.dev_score);
        if better {
            let seed_dir = out
                .result_file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            best.insert(
                task.clone(),
                Choice {
                    task: task.clone(),
                    condition: r.meta.condition.clone(),
                    restart: r.meta.restart,
                    dev_score: out.dev_score,
                    seed_dir,
                },
            );
        }
    }
    best.into_values().collect()
}

/// Options of [`bundle`].
#[derive(Debug, Clone, PartialEq)]
pub struct BundleOptions {
    pub stilts: PathBuf,
    pub out_dir: PathBuf,
    /// Accept fewer than the eleven files.
    pub partial: bool,
    /// Skip the row-count check against the official test sets (subsets, synthetic data).
    pub no_validate: bool,
    /// `--device` for scoring AX with the MNLI model.
    pub device: Option<String>,
}

/// Exports the chosen runs into `out_dir` and `out_dir/glue-submission.zip`; returns the zip.
pub fn bundle(choices: &[Choice], opts: &BundleOptions) -> Result<PathBuf, BundleError> {
    if choices.is_empty() {
        return Err(BundleError::NoRuns);
    }
    // `stilts export glue --partial` would silently skip a run without test predictions; say
    // why instead. Only the split names are read, not the predictions.
    #[derive(serde::Deserialize)]
    struct TestSplits {
        #[serde(default)]
        test_predictions: Vec<serde::de::IgnoredAny>,
    }
    for c in choices {
        let result = c.seed_dir.join("result.json");
        let file = std::fs::File::open(&result).map_err(|e| BundleError::Io {
            path: result.clone(),
            source: e,
        })?;
        let has_test = serde_json::from_reader::<_, TestSplits>(std::io::BufReader::new(file))
            .is_ok_and(|t| !t.test_predictions.is_empty());
        if !has_test {
            return Err(BundleError::NoTestPredictions { path: result });
        }
    }
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| BundleError::Io {
        path: opts.out_dir.clone(),
        source: e,
    })?;
    let zip = opts.out_dir.join("glue-submission.zip");
    let mut args: Vec<OsString> = vec!["export".into(), "glue".into(), "--runs".into()];
    args.extend(choices.iter().map(|c| c.seed_dir.clone().into_os_string()));
    args.extend(["--out".into(), opts.out_dir.clone().into_os_string()]);
    args.extend(["--zip".into(), zip.clone().into_os_string()]);
    if opts.partial {
        args.push("--partial".into());
    }
    if opts.no_validate {
        args.push("--no-validate".into());
    }
    // AX is scored with the MNLI model, which reads its own tokenizer and trained
    // `max_seq_len`; a model saved without a tokenizer cannot score it and is left out.
    if let Some(mnli) = choices.iter().find(|c| c.task == "MNLI") {
        let model = mnli.seed_dir.join("model");
        if TokenizerFiles::find(&model).is_some() {
            args.extend(["--mnli-model".into(), model.into_os_string()]);
            if let Some(d) = &opts.device {
                args.extend(["--device".into(), d.into()]);
            }
        }
    }
    let output = Command::new(&opts.stilts)
        .args(&args)
        .output()
        .map_err(|e| BundleError::Io {
            path: opts.stilts.clone(),
            source: e,
        })?;
    if !output.status.success() {
        return Err(BundleError::Export {
            command: format!("{} export glue", opts.stilts.display()),
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(zip)
}
