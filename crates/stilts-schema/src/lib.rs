//! The files stilts reads and writes, as plain serde types that link no tensor library, so the
//! training engine (`stilts-train`) and the grid driver (`xtask`) share one definition of each:
//!
//! - [`experiment`]: the experiment TOML a user writes (and a grid generates): every key,
//!   unknown keys rejected. Validation and resolution into what the engine runs are
//!   `stilts-train`'s (`stilts run --check`).
//! - [`results`]: what a run writes: `result.json` per restart, `summary.json` per experiment.
//! - [`transfer`]: a grid's transfer matrix (`transfer.csv`), which `stilts rank` is judged on.
//!
//! ```no_run
//! use stilts_schema::results::ExperimentSummary;
//! # fn main() -> Result<(), stilts_schema::SchemaError> {
//! let summary = ExperimentSummary::read("runs/quickstart/summary.json".as_ref())?;
//! println!("best dev score {}", summary.phases[0].best_dev_score);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod experiment;
pub mod overrides;
pub mod peft;
pub mod results;
pub mod runs;
pub mod transfer;

use std::path::{Path, PathBuf};

/// A schema file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("{}: {source}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's error (names the key and line).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A `--set key.path=value` override does not fit the file.
    #[error("{}: --set {key}: {message}", path.display())]
    Override {
        /// The file.
        path: PathBuf,
        /// The override's key path.
        key: String,
        /// What does not fit.
        message: String,
    },
    /// A CSV file has a malformed line.
    #[error("{}:{line}: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: the file as a whole).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The file is not the JSON this version writes.
    #[error("invalid JSON in {}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SchemaError> {
    let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| SchemaError::Json {
        path: path.to_path_buf(),
        source,
    })
}
