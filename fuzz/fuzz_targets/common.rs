//! One temporary directory per fuzzing process; each input is written to a file in it and
//! handed to a parser by path, as a user's file is.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The process's scratch directory (removed when the process ends normally).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

/// Writes `data` to `name` under `dir` (created) and returns the path.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, data).expect("write the input");
    path
}

/// The committed model fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/stilts-models/tests/fixtures")
}
