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

/// Bytes of the files under `dir`, its subdirectories included.
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let entry = entry.map_err(|e| TrainError::io(dir, e))?;
        let meta = entry
            .metadata()
            .map_err(|e| TrainError::io(&entry.path(), e))?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Writes pretty JSON atomically ([`stilts_io::fs::write_atomic`]).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainError::json(path, e))?;
    Ok(stilts_io::fs::write_atomic(path, text.as_bytes())?)
}
