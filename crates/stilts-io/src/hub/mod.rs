//! Models named by a local directory or a Hugging Face hub id, and downloads into the standard
//! Hugging Face cache.
//!
//! A model name is either a directory holding `config.json` and the weights, or a hub id
//! `org/name` with an optional `@revision` (a branch, tag or commit hash; `main` when absent).
//! [`resolve_model`] turns either into a local directory; for a hub id it downloads
//! `config.json`, `model.safetensors` (or, when the repository has none, `pytorch_model.bin`) and
//! whichever of `vocab.txt`, `tokenizer.json` and `tokenizer_config.json` exist, into the cache
//! layout `huggingface_hub` uses, so the two share downloads:
//!
//! ```text
//! $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//! └── models--org--name
//!     ├── blobs/<etag>                      file contents, named by their ETag
//!     ├── refs/main                         the commit hash `main` pointed at
//!     └── snapshots/<commit>/config.json -> ../../blobs/<etag>
//! ```
//!
//! Environment (read by [`HubOptions::from_env`]): `HF_ENDPOINT` (default
//! `https://huggingface.co`; tests point it at a local server), `HF_HUB_OFFLINE=1` (use the
//! cache only), `HF_HUB_CACHE` / `HF_HOME` (where the cache is) and `HF_TOKEN` (sent as a bearer
//! token, for gated or private repositories).
//!
//! Every file is written to a temporary name in `blobs/` and renamed into place once complete
//! (and, for LFS files whose ETag is a SHA-256, once its digest matches), so an interrupted
//! download never leaves a truncated file under its final name.
//!
//! ```no_run
//! # fn main() -> Result<(), stilts_io::hub::HubError> {
//! let dir = stilts_io::hub::resolve_model("sentence-transformers/all-MiniLM-L6-v2")?;
//! assert!(dir.join("config.json").is_file());
//! # Ok(()) }
//! ```

mod cache;
mod protocol;

use std::io;
use std::path::{Path, PathBuf};

use crate::files::TOKENIZER_FILES;
use crate::fs::FsError;
use crate::http::{Http, HttpConfig, HttpError};
pub use crate::progress::{NoProgress, Progress};

use self::cache::{cached_commit, cached_snapshot, write_ref};
use self::protocol::{fetch_file, fetch_meta, resolve_url, status_error};

/// The public hub, used when `HF_ENDPOINT` is unset.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The revision used when a hub id has no `@revision`.
pub const DEFAULT_REVISION: &str = "main";
/// Weights files, in order of preference.
pub const WEIGHTS_FILES: &[&str] = &["model.safetensors", "pytorch_model.bin"];
/// Files fetched when the repository has them: the tokenizer files of every encoder
/// ([`TOKENIZER_FILES`]).
pub const OPTIONAL_FILES: &[&str] = TOKENIZER_FILES;

/// Everything that can go wrong while resolving or downloading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The name is neither an existing directory nor a hub id.
    #[error("{name:?} is not a model directory or a hub id (org/name[@revision]): {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A request failed before an HTTP status came back.
    #[error("request to {url} failed: {message}")]
    Request {
        /// The URL.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}{hint}")]
    Http {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// A hint for common statuses (401/403: gated or private repository).
        hint: String,
    },
    /// The server's answer lacks a header the hub protocol requires.
    #[error("{url}: the response has no {header} header (is HF_ENDPOINT a Hugging Face hub?)")]
    MissingHeader {
        /// The URL.
        url: String,
        /// The missing header.
        header: &'static str,
    },
    /// A download ended early or its contents do not match its ETag.
    #[error("{url}: corrupt download: {message}")]
    Corrupt {
        /// The URL.
        url: String,
        /// What differed.
        message: String,
    },
    /// A repository has none of [`WEIGHTS_FILES`].
    #[error("{repo_id}@{revision} has no weights: tried {}", WEIGHTS_FILES.join(", "))]
    NoWeights {
        /// The repository.
        repo_id: String,
        /// The revision.
        revision: String,
    },
    /// Offline (`HF_HUB_OFFLINE=1`, or the hub unreachable) and the cache lacks a file.
    #[error("{file} of {repo_id}@{revision} is not in the cache {} and downloads are off{}; \
        fetch it once with downloads on (run the same command online, or \
        `huggingface-cli download {repo_id}`: the cache is shared)",
        cache.display(), offline_reason(.cause))]
    NotCached {
        /// The repository.
        repo_id: String,
        /// The revision.
        revision: String,
        /// The missing file (or `refs/<revision>`).
        file: String,
        /// The cache folder of the repository.
        cache: PathBuf,
        /// Why downloading was not possible, when it was tried.
        cause: Option<Box<HubError>>,
    },
    /// No cache directory: none of `HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`, `HOME` is set.
    #[error(
        "cannot find the Hugging Face cache: set HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME or HOME"
    )]
    NoCacheDir,
    /// A file in the cache could not be read, written or linked.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn offline_reason(cause: &Option<Box<HubError>>) -> String {
    match cause {
        None if crate::cache::offline() => " (STILTS_OFFLINE=1)".to_owned(),
        None => " (HF_HUB_OFFLINE=1)".to_owned(),
        Some(cause) => format!(" (the hub is unreachable: {cause})"),
    }
}

impl From<FsError> for HubError {
    fn from(e: FsError) -> Self {
        HubError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl From<HttpError> for HubError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Transport { url, message, .. } => HubError::Request { url, message },
            HttpError::Status { url, status, .. } => status_error(&url, status),
            HttpError::Corrupt { url, message } => HubError::Corrupt { url, message },
            HttpError::Fs(e) => e.into(),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> HubError + '_ {
    move |source| HubError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where to download from, where to cache, and whether to go online.
#[derive(Clone)]
pub struct HubOptions {
    /// Base URL of the hub, without a trailing slash.
    pub endpoint: String,
    /// The hub cache (the folder holding `models--org--name`).
    pub cache_dir: PathBuf,
    /// Use the cache only.
    pub offline: bool,
    /// Bearer token for gated or private repositories.
    pub token: Option<String>,
    /// Timeouts and retries.
    pub http: HttpConfig,
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("http", &self.http)
            .finish()
    }
}

impl HubOptions {
    /// Options for `endpoint` and `cache_dir`: online, no token, 60 s timeouts, 2 retries
    /// from 1 s.
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        HubOptions {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            cache_dir: cache_dir.into(),
            offline: false,
            token: None,
            http: HttpConfig {
                retries: 2,
                ..HttpConfig::default()
            },
        }
    }

    /// Options from the environment, as `huggingface_hub` reads it: `HF_ENDPOINT`,
    /// `HF_HUB_CACHE` (else `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
    /// `~/.cache/huggingface/hub`), `HF_HUB_OFFLINE` (`1`, `true`, `yes`, `on`; stilts'
    /// `STILTS_OFFLINE` too) and `HF_TOKEN`.
    pub fn from_env() -> Result<Self, HubError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let cache_dir = if let Some(dir) = var("HF_HUB_CACHE") {
            PathBuf::from(dir)
        } else if let Some(home) = var("HF_HOME") {
            PathBuf::from(home).join("hub")
        } else if let Some(xdg) = var("XDG_CACHE_HOME") {
            PathBuf::from(xdg).join("huggingface/hub")
        } else if let Some(home) = var("HOME") {
            PathBuf::from(home).join(".cache/huggingface/hub")
        } else {
            return Err(HubError::NoCacheDir);
        };
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let mut options = HubOptions::new(endpoint, cache_dir);
        options.offline = crate::cache::flag("HF_HUB_OFFLINE") || crate::cache::offline();
        options.token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
        Ok(options)
    }

    fn client(&self) -> Http {
        Http::new(self.http)
    }
}

/// A repository on the hub at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubModel {
    /// `org/name`.
    pub repo_id: String,
    /// Branch, tag or commit hash.
    pub revision: String,
}

impl HubModel {
    /// The repository's folder in a hub cache: `models--org--name`.
    pub fn cache_dir(&self, cache: &Path) -> PathBuf {
        cache.join(format!("models--{}", self.repo_id.replace('/', "--")))
    }
}

/// How a model is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelName {
    /// A local directory.
    Dir(PathBuf),
    /// A hub repository.
    Hub(HubModel),
}

impl ModelName {
    /// An existing directory is [`ModelName::Dir`]; otherwise the name must be a hub id
    /// `org/name[@revision]` (letters, digits, `-`, `_`, `.`; no `..`).
    pub fn parse(name: &str) -> Result<Self, HubError> {
        let path = Path::new(name);
        if path.is_dir() {
            return Ok(ModelName::Dir(path.to_path_buf()));
        }
        let invalid = |reason: &str| HubError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let (repo_id, revision) = match name.split_once('@') {
            Some((repo, revision)) => (repo, revision),
            None => (name, DEFAULT_REVISION),
        };
        let parts: Vec<&str> = repo_id.split('/').collect();
        let part_ok = |p: &str| {
            !p.is_empty()
                && !p.starts_with(['.', '-'])
                && !p.contains("..")
                && p.len() <= 96
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if parts.len() != 2 || !parts.iter().all(|p| part_ok(p)) {
            return Err(invalid(
                "no such directory, and not of the form org/name with letters, digits, '-', '_', '.'",
            ));
        }
        let revision_ok = !revision.is_empty()
            && !revision.contains("..")
            && !revision.starts_with('/')
            && revision
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !revision_ok {
            return Err(invalid(
                "the revision must be a branch, tag or commit (letters, digits, '-', '_', '.', '/')",
            ));
        }
        Ok(ModelName::Hub(HubModel {
            repo_id: repo_id.to_owned(),
            revision: revision.to_owned(),
        }))
    }
}

/// Resolves a model name to a local directory with the options of [`HubOptions::from_env`] and
/// no progress display; see [`resolve_model_with`].
pub fn resolve_model(name: &str) -> Result<PathBuf, HubError> {
    let parsed = ModelName::parse(name)?;
    match parsed {
        ModelName::Dir(dir) => Ok(dir),
        ModelName::Hub(model) => download_model(&model, &HubOptions::from_env()?, &NoProgress),
    }
}

/// Resolves a model name to a local directory: a directory is returned as it is, a hub id is
/// downloaded (see [`download_model`]).
pub fn resolve_model_with(
    name: &str,
    options: &HubOptions,
    progress: &dyn Progress,
) -> Result<PathBuf, HubError> {
    match ModelName::parse(name)? {
        ModelName::Dir(dir) => Ok(dir),
        ModelName::Hub(model) => download_model(&model, options, progress),
    }
}

/// Downloads a BERT-style model into the cache and returns its snapshot directory: `config.json`,
/// `model.safetensors` or else `pytorch_model.bin`, and those of [`OPTIONAL_FILES`] the
/// repository has. Files already in the snapshot are not fetched again.
///
/// Offline ([`HubOptions::offline`]), the revision is looked up in `refs/` and every file must
/// already be cached. Online, when the hub cannot be reached at all, the cache is used if it
/// holds the revision, as `huggingface_hub` does.
pub fn download_model(
    model: &HubModel,
    options: &HubOptions,
    progress: &dyn Progress,
) -> Result<PathBuf, HubError> {
    if options.offline {
        return cached_snapshot(model, options, None);
    }
    let repo = model.cache_dir(&options.cache_dir);
    let config = match fetch_meta(model, &model.revision, "config.json", options) {
        Ok(Some(meta)) => meta,
        Ok(None) => {
            return Err(HubError::Http {
                url: resolve_url(options, model, &model.revision, "config.json"),
                status: 404,
                hint: " (no config.json: not a transformers model, or a wrong revision)".into(),
            });
        }
        Err(e @ HubError::Request { .. }) => {
            let snapshot = cached_snapshot(model, options, Some(Box::new(e)))?;
            progress.note(&format!(
                "{}: hub unreachable, using the cached snapshot {}",
                model.repo_id,
                snapshot.display()
            ));
            return Ok(snapshot);
        }
        Err(e) => return Err(e),
    };
    let commit = config.commit.clone();
    if commit != model.revision {
        write_ref(&repo, &model.revision, &commit)?;
    }
    let snapshot = repo.join("snapshots").join(&commit);
    fetch_file(model, &commit, "config.json", config, options, progress)?;

    let mut weights = false;
    for name in WEIGHTS_FILES {
        if snapshot.join(name).is_file() {
            weights = true;
            break;
        }
        if let Some(meta) = fetch_meta(model, &commit, name, options)? {
            fetch_file(model, &commit, name, meta, options, progress)?;
            weights = true;
            break;
        }
    }
    if !weights {
        return Err(HubError::NoWeights {
            repo_id: model.repo_id.clone(),
            revision: model.revision.clone(),
        });
    }
    for name in OPTIONAL_FILES {
        if snapshot.join(name).is_file() {
            continue;
        }
        if let Some(meta) = fetch_meta(model, &commit, name, options)? {
            fetch_file(model, &commit, name, meta, options, progress)?;
        }
    }
    Ok(snapshot)
}

/// Downloads one file of a repository at a revision into the cache and returns its path in the
/// snapshot (a symlink into `blobs/` on Unix). `Ok(None)` when the repository has no such file.
pub fn download_file(
    model: &HubModel,
    filename: &str,
    options: &HubOptions,
    progress: &dyn Progress,
) -> Result<Option<PathBuf>, HubError> {
    if options.offline {
        let commit = cached_commit(model, options, &mut None)?;
        let snapshot = model
            .cache_dir(&options.cache_dir)
            .join("snapshots")
            .join(commit);
        let path = snapshot.join(filename);
        return Ok(path.is_file().then_some(path));
    }
    let Some(meta) = fetch_meta(model, &model.revision, filename, options)? else {
        return Ok(None);
    };
    let commit = meta.commit.clone();
    if commit != model.revision {
        write_ref(
            &model.cache_dir(&options.cache_dir),
            &model.revision,
            &commit,
        )?;
    }
    fetch_file(model, &commit, filename, meta, options, progress).map(Some)
}

#[cfg(test)]
mod tests {
    use super::protocol::{absolute, normalize_etag, origin};
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(
            ModelName::parse("sentence-transformers/all-MiniLM-L6-v2").unwrap(),
            ModelName::Hub(HubModel {
                repo_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
                revision: "main".into()
            })
        );
        assert_eq!(
            ModelName::parse("google-bert/bert-base-uncased@refs/pr/3").unwrap(),
            ModelName::Hub(HubModel {
                repo_id: "google-bert/bert-base-uncased".into(),
                revision: "refs/pr/3".into()
            })
        );
        assert_eq!(
            ModelName::parse(".").unwrap(),
            ModelName::Dir(PathBuf::from("."))
        );
        for bad in [
            "no-such-dir",
            "a/b/c",
            "../x",
            "org/..",
            "org/name@",
            "org/name@../x",
            "org/na me",
            "/abs/missing",
        ] {
            assert!(
                matches!(ModelName::parse(bad), Err(HubError::InvalidName { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn urls() {
        assert_eq!(origin("http://127.0.0.1:8080/a/b"), "http://127.0.0.1:8080");
        assert_eq!(
            absolute("http://h:1/a/resolve/main/f", "/cdn/x"),
            "http://h:1/cdn/x"
        );
        assert_eq!(absolute("http://h/a/b", "https://cdn/x"), "https://cdn/x");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        let options = HubOptions::new("http://h/", "/tmp");
        let model = HubModel {
            repo_id: "o/n".into(),
            revision: "refs/pr/1".into(),
        };
        assert_eq!(
            resolve_url(&options, &model, &model.revision, "config.json"),
            "http://h/o/n/resolve/refs%2Fpr%2F1/config.json"
        );
        assert_eq!(
            model.cache_dir(Path::new("/c")),
            PathBuf::from("/c/models--o--n")
        );
    }
}
