//! What `stilts env` reports for a bug report: the build (version, commit, optional features),
//! the machine (CPU, SIMD, threads), the caches and data roots with their sizes and what they
//! hold, and the stilts, Hugging Face and backend environment variables in effect (secrets
//! hidden).

use std::path::{Path, PathBuf};

use serde::Serialize;
use stilts_io::cache::{glue_cache_dir, stilts_cache_dir, var_dir};
use stilts_io::hub::HubOptions;

/// Everything `stilts env` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// The stilts version.
    pub version: String,
    /// The git commit the binary was built from (`unknown` outside a checkout).
    pub commit: String,
    /// `release` or `debug`.
    pub profile: &'static str,
    /// Operating system and architecture.
    pub platform: String,
    /// Optional cargo features of `stilts-models`, compiled in or not.
    pub features: Vec<Feature>,
    /// The CPU.
    pub cpu: Cpu,
    /// CPU threads in use (`--threads`, else `STILTS_THREADS`, else `RAYON_NUM_THREADS`, else
    /// one per core).
    pub threads: usize,
    /// `RAYON_NUM_THREADS` as set (burn-flex's thread pool reads it).
    pub rayon_num_threads: Option<String>,
    /// Caches and data roots.
    pub locations: Vec<Location>,
    /// Environment variables that change what stilts does, secrets hidden.
    pub variables: Vec<(String, String)>,
}

/// A cargo feature.
#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    /// Its name.
    pub name: &'static str,
    /// Whether this binary has it.
    pub compiled: bool,
}

/// The CPU.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// Its model name (`/proc/cpuinfo`), when known.
    pub model: Option<String>,
    /// Logical cores this process may use.
    pub logical_cores: usize,
    /// SIMD extensions the matrix kernels can use.
    pub simd: Vec<&'static str>,
}

/// A cache or data root.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    /// What it is (`hf_hub_cache`, `glue_dir`, ...).
    pub name: &'static str,
    /// Where (`None`: not set and no default).
    pub path: Option<PathBuf>,
    /// Whether the directory exists.
    pub exists: bool,
    /// Total size of its files, in bytes.
    pub size_bytes: u64,
    /// What it holds: hub models as `org/name`, else the names of its entries.
    pub holds: Vec<String>,
}

/// The variables reported, by prefix or name.
const PREFIXES: &[&str] = &["STILTS_", "HF_"];
const NAMES: &[&str] = &[
    "GLUE_DIR",
    "SNLI_DIR",
    "BERT_LARGE_DIR",
    "BERT_BASE_DIR",
    "ELMO_DIR",
    "BOOKS_CORPUS",
    "RAYON_NUM_THREADS",
    "LIBTORCH",
    "LIBTORCH_USE_PYTORCH",
    "CUDA_VISIBLE_DEVICES",
    "XDG_CACHE_HOME",
];

fn secret(name: &str) -> bool {
    ["TOKEN", "SECRET", "PASSWORD", "KEY"]
        .iter()
        .any(|s| name.contains(s))
}

fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

fn location(name: &'static str, path: Option<PathBuf>) -> Location {
    let exists = path.as_deref().is_some_and(Path::is_dir);
    let mut holds: Vec<String> = path
        .as_deref()
        .filter(|_| exists)
        .and_then(|p| std::fs::read_dir(p).ok())
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .map(|n| match n.strip_prefix("models--") {
                    Some(repo) => repo.replacen("--", "/", 1),
                    None => n,
                })
                .collect()
        })
        .unwrap_or_default();
    holds.sort();
    Location {
        name,
        size_bytes: path.as_deref().filter(|_| exists).map_or(0, size_of),
        path,
        exists,
        holds,
    }
}

fn cpu() -> Cpu {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        });
    #[allow(unused_mut)]
    let mut simd = Vec::new();
    #[cfg(target_arch = "x86_64")]
    for (name, on) in [
        ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
    ] {
        if on {
            simd.push(name);
        }
    }
    #[cfg(target_arch = "aarch64")]
    simd.push("neon");
    Cpu {
        model,
        logical_cores: std::thread::available_parallelism().map_or(1, usize::from),
        simd,
    }
}

/// Gathers the report; `version` and `commit` are the binary's.
pub fn collect(version: &str, commit: &str) -> Environment {
    let mut variables: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| PREFIXES.iter().any(|p| k.starts_with(p)) || NAMES.contains(&k.as_str()))
        .map(|(k, v)| {
            let shown = if secret(&k) {
                "(set, hidden)".to_owned()
            } else {
                v
            };
            (k, shown)
        })
        .collect();
    variables.sort();
    let hub = HubOptions::from_env().ok().map(|o| o.cache_dir);
    Environment {
        version: version.to_owned(),
        commit: commit.to_owned(),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        platform: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        features: stilts_models::device::compiled_features()
            .into_iter()
            .map(|(name, compiled)| Feature { name, compiled })
            .collect(),
        cpu: cpu(),
        threads: stilts_models::device::threads(),
        rayon_num_threads: std::env::var("RAYON_NUM_THREADS").ok(),
        locations: vec![
            location("hf_hub_cache", hub),
            location("stilts_cache", stilts_cache_dir()),
            location("glue_cache", glue_cache_dir()),
            location("glue_dir", var_dir(crate::config::GLUE_DIR_ENV)),
            location("extra_dir", var_dir(crate::config::EXTRA_DIR_ENV)),
            location("models_dir", var_dir("STILTS_MODELS_DIR")),
        ],
        variables,
    }
}
