//! Experiment grids: a grid TOML expands into runs, each a `stilts run` experiment with an
//! identity derived from its resolved configuration; executors run them; the registry ingests
//! their result files; reports query the registry.
//!
//! Layout under a grid's output directory:
//!
//! ```text
//! grid.json                 the loaded grid (scale, overrides) and its plan
//! driver.lock               held (OS lock) by the driver running this grid
//! registry.sqlite           results ingested by the driver (workers never write it)
//! runs/<run-id>/experiment.toml   what the worker runs: `stilts run experiment.toml --output-dir .`
//! runs/<run-id>/run.json          the run's place in the grid (RunMeta)
//! runs/<run-id>/summary.json      written atomically by `stilts run` when the run is finished:
//!                                 the run's result file
//! runs/<run-id>/attempts.log      one line per worker start (local or Slurm)
//! runs/<run-id>/worker.log        the worker's stdout/stderr
//! reports/                        tables, figures, bootstrap intervals
//! submission/                     `cargo xtask bundle`: GLUE files and their zip
//! slurm/job.sh, slurm/aNNNN.list  the Slurm executor's job script and array-task -> run lists
//! slurm/events.tsv, slurm/logs/   its submissions, losses and cancellations; array logs
//! ```

pub mod plan;
pub mod registry;
pub mod spec;

use std::path::{Path, PathBuf};

pub use plan::{Plan, RunKind, RunMeta, RunNode};
pub use registry::{Registry, RunRow};
pub use spec::{FULL_METHOD, LoadedGrid, Regime};

/// Errors of grid loading, planning and the registry.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Toml {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{path}: `{key}`: {message}")]
    Config {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("registry {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

impl GridError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        GridError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn config(path: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        GridError::Config {
            path: path.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }
    pub fn json(path: &Path, source: serde_json::Error) -> Self {
        GridError::Json {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<stilts_schema::SchemaError> for GridError {
    fn from(e: stilts_schema::SchemaError) -> Self {
        use stilts_schema::SchemaError;
        match e {
            SchemaError::Io { path, source } => GridError::Io { path, source },
            SchemaError::Toml { path, source } => GridError::Toml { path, source },
            SchemaError::Json { path, source } => GridError::Json { path, source },
            SchemaError::Override { path, key, message } => GridError::Config {
                path,
                key: format!("--set {key}"),
                message,
            },
            other => GridError::Config {
                path: PathBuf::new(),
                key: String::new(),
                message: other.to_string(),
            },
        }
    }
}

/// Writes `bytes` to `path` atomically ([`stilts_io::fs::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), GridError> {
    stilts_io::fs::write_atomic(path, bytes).map_err(|e| GridError::io(&e.path, e.source))
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), GridError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| GridError::json(path, e))?;
    write_atomic(path, text.as_bytes())
}
