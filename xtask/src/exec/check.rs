//! Checking a plan's runs before any is submitted: the worker binary itself validates every
//! unfinished run's `experiment.toml` (`stilts run --check FILE...`, one `ok <file>` or
//! `error <file>: <why>` line per file), so a run the engine would refuse (a task file that
//! does not exist, a recipe value out of range) stops the driver before a queue of hundreds of
//! runs is started, instead of failing on a node hours later.
//!
//! A run that reads from a run not finished yet cannot be checked as it is: the model it
//! starts from, or the adapters it fuses, do not exist. It is checked with its encoder's
//! starting model in its place and without its fusion (everything else as the worker will read
//! it), from a file under `<grid out>/check/` that is removed afterwards.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::exec::WorkerCommand;
use crate::grid::{Plan, RunNode};

/// Experiment files per `stilts run --check` call: command lines stay far below `ARG_MAX`.
pub const FILES_PER_CALL: usize = 500;

/// A run the worker refuses.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRun {
    /// The run id.
    pub id: String,
    /// Its place in the grid (`encoder / condition / target / regime / restart`).
    pub label: String,
    /// Why, as `stilts run --check` says it (the key and the problem).
    pub message: String,
}

/// Errors of [`check_plan`].
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Some runs are invalid.
    #[error(
        "{} of {checked} runs are invalid (`stilts run --check`); nothing was submitted:{}",
        runs.len(),
        list(runs)
    )]
    Invalid {
        /// Runs checked.
        checked: usize,
        /// The invalid ones, in plan order.
        runs: Vec<InvalidRun>,
    },
    /// A stand-in file could not be written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The worker binary could not be started.
    #[error("cannot run `{command}`; nothing was submitted")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The worker binary failed without naming a file (too old for `--check` with several
    /// files, or it crashed).
    #[error(
        "`{command}` failed ({status}) without naming an invalid file; nothing was submitted:\n{output}"
    )]
    Command {
        command: String,
        status: String,
        output: String,
    },
}

fn list(runs: &[InvalidRun]) -> String {
    let mut s = String::new();
    for r in runs {
        let _ = write!(s, "\n  run {} ({}): {}", r.id, r.label, r.message);
    }
    s
}

/// One file to check and the run it belongs to.
struct Checked<'a> {
    node: &'a RunNode,
    file: PathBuf,
    /// Whether the file is a stand-in, removed after the check.
    stand_in: bool,
}

/// Checks every unfinished run of `plan` with `worker`'s binary, run with this process's
/// environment (which workers inherit) in `cwd` (where workers start; `None`: here). Returns
/// the number of runs checked.
pub fn check_plan(
    plan: &Plan,
    worker: &WorkerCommand,
    cwd: Option<&Path>,
) -> Result<usize, CheckError> {
    let stand_in_dir = plan.output_dir.join("check");
    let mut files = Vec::new();
    let result = files_to_check(plan, &stand_in_dir, &mut files).and_then(|()| {
        let mut invalid = Vec::new();
        for chunk in files.chunks(FILES_PER_CALL) {
            invalid.extend(check_chunk(chunk, worker, cwd)?);
        }
        if invalid.is_empty() {
            Ok(files.len())
        } else {
            Err(CheckError::Invalid {
                checked: files.len(),
                runs: invalid,
            })
        }
    });
    // Stand-ins are only for this check.
    for c in files.iter().filter(|c| c.stand_in) {
        let _ = std::fs::remove_file(&c.file);
    }
    let _ = std::fs::remove_dir(&stand_in_dir);
    result
}

/// Adds to `files` the file to check of every unfinished run: its `experiment.toml`, or a
/// stand-in (see the module documentation) written into `stand_in_dir`.
fn files_to_check<'a>(
    plan: &'a Plan,
    stand_in_dir: &Path,
    files: &mut Vec<Checked<'a>>,
) -> Result<(), CheckError> {
    for node in plan.nodes.iter().filter(|n| !plan.is_finished(&n.id)) {
        if plan.waiting_on(node).is_empty() {
            files.push(Checked {
                node,
                file: plan.run_dir(&node.id).join("experiment.toml"),
                stand_in: false,
            });
            continue;
        }
        let mut exp = plan.worker_experiment(node);
        exp.model = starting_model(plan, node).clone();
        for p in &mut exp.phases {
            p.recipe.fusion = None;
        }
        let file = stand_in_dir.join(format!("{}.toml", node.id));
        let text = toml::to_string(&exp.to_table()).unwrap_or_default();
        let io = |source| CheckError::Io {
            path: file.clone(),
            source,
        };
        std::fs::create_dir_all(stand_in_dir).map_err(io)?;
        std::fs::write(&file, text).map_err(io)?;
        files.push(Checked {
            node,
            file,
            stand_in: true,
        });
    }
    Ok(())
}

/// The `[model]` of the first run of `node`'s dependency chain (the encoder's).
fn starting_model<'a>(
    plan: &'a Plan,
    node: &'a RunNode,
) -> &'a stilts_schema::experiment::ModelFile {
    let mut root = node;
    // Dependencies come first in a plan, so the chain ends.
    while let Some(dep) = root.model_dependency().and_then(|d| plan.node(d)) {
        root = dep;
    }
    &root.experiment.model
}

/// One `stilts run --check` call; returns the invalid runs among `chunk`.
fn check_chunk(
    chunk: &[Checked],
    worker: &WorkerCommand,
    cwd: Option<&Path>,
) -> Result<Vec<InvalidRun>, CheckError> {
    let mut cmd = Command::new(&worker.stilts);
    cmd.args(["run", "--check"])
        .args(chunk.iter().map(|c| OsString::from(&c.file)))
        .stdin(Stdio::null());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let command = format!(
        "{} run --check <{} files>",
        worker.stilts.display(),
        chunk.len()
    );
    let out = cmd.output().map_err(|source| CheckError::Spawn {
        command: command.clone(),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut invalid = parse_lines(chunk, &stdout);
    if out.status.success() || !invalid.is_empty() {
        return Ok(invalid);
    }
    // One file: `stilts run --check` prints the resolved experiment, or fails with
    // `error: <file>: <why>` on stderr.
    if let [only] = chunk
        && let Some(message) = stderr.lines().rev().find_map(|l| l.strip_prefix("error: "))
    {
        invalid.push(invalid_run(only, strip_file(&only.file, message)));
        return Ok(invalid);
    }
    Err(CheckError::Command {
        command,
        status: out.status.to_string(),
        output: format!("{stdout}{stderr}").trim().to_string(),
    })
}

/// The `error <file>: <why>` lines of `stdout`, by run (lines that follow an error and are not
/// `ok`/`error` lines continue its message).
fn parse_lines(chunk: &[Checked], stdout: &str) -> Vec<InvalidRun> {
    let mut invalid: Vec<InvalidRun> = Vec::new();
    let mut continuing = false;
    for line in stdout.lines() {
        if line.starts_with("ok ") {
            continuing = false;
        } else if let Some(rest) = line.strip_prefix("error ") {
            // The longest file that fits: a path may hold `: ` itself.
            let found = chunk
                .iter()
                .filter(|c| starts_with_file(rest, &c.file))
                .max_by_key(|c| c.file.as_os_str().len());
            continuing = found.is_some();
            if let Some(c) = found {
                invalid.push(invalid_run(c, strip_file(&c.file, rest)));
            }
        } else if continuing && let Some(last) = invalid.last_mut() {
            last.message.push('\n');
            last.message.push_str(line);
        }
    }
    invalid
}

fn starts_with_file(text: &str, file: &Path) -> bool {
    text.strip_prefix(file.display().to_string().as_str())
        .is_some_and(|rest| rest.starts_with(':'))
}

/// `<file>: <why>` -> `<why>`.
fn strip_file<'t>(file: &Path, text: &'t str) -> &'t str {
    let name = file.display().to_string();
    text.strip_prefix(name.as_str())
        .and_then(|rest| rest.strip_prefix(':'))
        .map_or(text, str::trim_start)
}

fn invalid_run(c: &Checked, message: &str) -> InvalidRun {
    let m = &c.node.meta;
    InvalidRun {
        id: c.node.id.clone(),
        label: format!(
            "{} / {} / {} / {} / restart {}",
            m.encoder,
            m.condition,
            m.target.as_deref().unwrap_or("-"),
            m.regime.label(),
            m.restart
        ),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{Regime, RunKind, RunMeta};

    fn node(id: &str) -> RunNode {
        RunNode {
            id: id.into(),
            meta: RunMeta {
                grid: "g".into(),
                kind: RunKind::Target,
                method: "full".into(),
                encoder: "E".into(),
                condition: "none".into(),
                target: Some("RTE".into()),
                regime: Regime::Full,
                restart: 1,
                seed: 2,
                scale: None,
                phase: "rte".into(),
            },
            depends_on: Vec::new(),
            experiment: Default::default(),
        }
    }

    #[test]
    fn error_lines_are_matched_to_their_runs() {
        let (a, b, c, d) = (node("a"), node("b"), node("c"), node("d"));
        // A path that itself holds ": " (and starts with another file's path), and one that is
        // a prefix of another.
        let chunk = [
            Checked {
                node: &d,
                file: PathBuf::from("/g/x"),
                stand_in: false,
            },
            Checked {
                node: &a,
                file: PathBuf::from("/g/x: y/a.toml"),
                stand_in: false,
            },
            Checked {
                node: &b,
                file: PathBuf::from("/g/b.toml"),
                stand_in: false,
            },
            Checked {
                node: &c,
                file: PathBuf::from("/g/b.toml.c"),
                stand_in: true,
            },
        ];
        let stdout = "error /g/x: y/a.toml: TOML parse error at line 1\n  | detail\n\
                      ok /g/b.toml\n\
                      error /g/b.toml.c: `recipe.lr`: must be positive, got -1\n";
        let invalid = parse_lines(&chunk, stdout);
        assert_eq!(invalid.len(), 2);
        assert_eq!(invalid[0].id, "a");
        assert_eq!(invalid[0].message, "TOML parse error at line 1\n  | detail");
        assert_eq!(invalid[0].label, "E / none / RTE / full / restart 1");
        assert_eq!(invalid[1].id, "c");
        assert_eq!(invalid[1].message, "`recipe.lr`: must be positive, got -1");
    }
}
