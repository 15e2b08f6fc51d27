//! What runs write, and where: the types are `stilts-schema`'s (the grid registry reads the
//! same ones); this module names the files of a run directory and writes them atomically.

use std::path::{Path, PathBuf};

use serde::Serialize;
pub use stilts_schema::results::*;

use crate::error::{Result, TrainError};

/// The output directory of a run's final model.
pub fn model_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("model")
}

/// The result file of a run.
pub fn result_file(run_dir: &Path) -> PathBuf {
    run_dir.join("result.json")
}

/// Writes pretty JSON atomically ([`stilts_io::fs::write_atomic`]).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainError::json(path, e))?;
    Ok(stilts_io::fs::write_atomic(path, text.as_bytes())?)
}
