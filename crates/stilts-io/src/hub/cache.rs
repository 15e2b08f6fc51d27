//! The Hugging Face cache on disk: `refs/<revision>` and `snapshots/<commit>/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{HubError, HubModel, HubOptions, WEIGHTS_FILES, io_error};

pub(super) fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

pub(super) fn cached_commit(
    model: &HubModel,
    options: &HubOptions,
    cause: &mut Option<Box<HubError>>,
) -> Result<String, HubError> {
    if is_commit_hash(&model.revision) {
        return Ok(model.revision.clone());
    }
    let repo = model.cache_dir(&options.cache_dir);
    let ref_path = repo.join("refs").join(&model.revision);
    match fs::read_to_string(&ref_path) {
        Ok(commit) if is_commit_hash(commit.trim()) => Ok(commit.trim().to_owned()),
        Ok(_) => Err(HubError::Corrupt {
            url: ref_path.display().to_string(),
            message: "not a commit hash".to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(HubError::NotCached {
            repo_id: model.repo_id.clone(),
            revision: model.revision.clone(),
            file: format!("refs/{}", model.revision),
            cache: repo,
            cause: cause.take(),
        }),
        Err(e) => Err(io_error(&ref_path)(e)),
    }
}

pub(super) fn cached_snapshot(
    model: &HubModel,
    options: &HubOptions,
    cause: Option<Box<HubError>>,
) -> Result<PathBuf, HubError> {
    let mut cause = cause;
    let commit = cached_commit(model, options, &mut cause)?;
    let repo = model.cache_dir(&options.cache_dir);
    let snapshot = repo.join("snapshots").join(&commit);
    let missing = if !snapshot.join("config.json").is_file() {
        Some("config.json".to_owned())
    } else if !WEIGHTS_FILES.iter().any(|f| snapshot.join(f).is_file()) {
        Some(WEIGHTS_FILES.join(" or "))
    } else {
        None
    };
    match missing {
        Some(file) => Err(HubError::NotCached {
            repo_id: model.repo_id.clone(),
            revision: model.revision.clone(),
            file,
            cache: repo,
            cause,
        }),
        None => Ok(snapshot),
    }
}

pub(super) fn write_ref(repo: &Path, revision: &str, commit: &str) -> Result<(), HubError> {
    let path = repo.join("refs").join(revision);
    if fs::read_to_string(&path).is_ok_and(|c| c.trim() == commit) {
        return Ok(());
    }
    Ok(crate::fs::write_atomic(&path, commit.as_bytes())?)
}
