//! stilts' own cache and the environment variables that steer downloads.
//!
//! ```text
//! $STILTS_CACHE (default $XDG_CACHE_HOME/stilts, default ~/.cache/stilts)
//! └── glue/              built-in tasks fetched on demand, in the official GLUE layout
//!     ├── RTE/
//!     └── .stilts-locks/RTE.lock   held while RTE is being fetched (see [`crate::lock`])
//! ```
//!
//! Models are not here: they go to the Hugging Face cache ([`crate::hub`]), shared with Python.
//! `STILTS_OFFLINE=1` forbids every download, of task data and of models alike;
//! `HF_HUB_OFFLINE=1` forbids model downloads only, as in `huggingface_hub`.
//! `STILTS_GLUE_MIRROR=<url>` fetches GLUE files from `<url>/<name>` instead of their official
//! locations (the environment form of `stilts data download --mirror`).

use std::path::PathBuf;

/// Names the stilts cache directory.
pub const CACHE_ENV: &str = "STILTS_CACHE";
/// `1`, `true`, `yes` or `on`: use the caches only, download nothing.
pub const OFFLINE_ENV: &str = "STILTS_OFFLINE";
/// A base URL that GLUE files are fetched from instead of their official locations.
pub const GLUE_MIRROR_ENV: &str = "STILTS_GLUE_MIRROR";

/// The value of `name` as a path, when set and not empty.
pub fn var_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Whether the variable `name` is set to `1`, `true`, `yes` or `on` (any case), as
/// `huggingface_hub` reads its boolean variables.
pub fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The stilts cache: `STILTS_CACHE`, else `$XDG_CACHE_HOME/stilts`, else `~/.cache/stilts`;
/// `None` when none of them is set.
pub fn stilts_cache_dir() -> Option<PathBuf> {
    var_dir(CACHE_ENV)
        .or_else(|| var_dir("XDG_CACHE_HOME").map(|d| d.join("stilts")))
        .or_else(|| var_dir("HOME").map(|d| d.join(".cache/stilts")))
}

/// Where built-in tasks are downloaded when no data root holds them: `<cache>/glue`.
pub fn glue_cache_dir() -> Option<PathBuf> {
    stilts_cache_dir().map(|d| d.join("glue"))
}

/// `STILTS_OFFLINE` is on: nothing may be downloaded.
pub fn offline() -> bool {
    flag(OFFLINE_ENV)
}

/// `STILTS_GLUE_MIRROR`, when set and not empty.
pub fn glue_mirror() -> Option<String> {
    std::env::var(GLUE_MIRROR_ENV)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}
