//! The hub's `resolve` protocol: `HEAD` for a file's commit, ETag and size (following the
//! hub's own redirects, not a CDN's), then the blob `GET`, linked into the snapshot.

use std::fs;
use std::path::{Path, PathBuf};

use super::cache::is_commit_hash;
use super::{HubError, HubModel, HubOptions, io_error};
use crate::fs::temp_path;
use crate::http::Expect;
use crate::progress::{NoProgress, Progress};

/// What a `HEAD` on a `resolve` URL tells.
#[derive(Debug, Clone)]
pub(super) struct FileMeta {
    pub(super) commit: String,
    etag: String,
    size: Option<u64>,
    /// Where to `GET` the contents (the CDN for LFS files).
    location: String,
}

pub(super) fn encode_revision(revision: &str) -> String {
    revision.replace('/', "%2F")
}

pub(super) fn resolve_url(
    options: &HubOptions,
    model: &HubModel,
    revision: &str,
    file: &str,
) -> String {
    format!(
        "{}/{}/resolve/{}/{}",
        options.endpoint,
        model.repo_id,
        encode_revision(revision),
        file
    )
}

/// `scheme://host[:port]` of a URL.
pub(super) fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

pub(super) fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let dir = base.rsplit_once('/').map_or(base, |(dir, _)| dir);
        format!("{dir}/{location}")
    }
}

pub(super) fn header(response: &crate::http::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(super) fn normalize_etag(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned()
}

/// The `Authorization` header, sent to the hub itself only (never to a CDN it redirects to).
pub(super) fn auth(url: &str, options: &HubOptions) -> Option<String> {
    let token = options.token.as_ref()?;
    (origin(url) == origin(&options.endpoint)).then(|| format!("Bearer {token}"))
}

/// The headers of a request to `url`: no compression (sizes and digests are of the file), and
/// the token where it may go.
pub(super) fn request_headers<'a>(
    url: &str,
    options: &HubOptions,
    auth_value: &'a mut Option<String>,
) -> Vec<(&'static str, &'a str)> {
    *auth_value = auth(url, options);
    let mut headers = vec![("Accept-Encoding", "identity")];
    if let Some(a) = auth_value.as_deref() {
        headers.push(("Authorization", a));
    }
    headers
}

pub(super) fn status_error(url: &str, status: u16) -> HubError {
    let hint = match status {
        401 | 403 => " (gated or private repository: set HF_TOKEN)".to_owned(),
        404 => " (no such repository, revision or file)".to_owned(),
        _ => String::new(),
    };
    HubError::Http {
        url: url.to_owned(),
        status,
        hint,
    }
}

/// `HEAD` of a file without following redirects, as `huggingface_hub` does: commit and ETag
/// come from the hub's own answer (`X-Linked-Etag` on an LFS redirect to the CDN); relative
/// redirects (renamed repositories) are followed. `Ok(None)` on 404.
pub(super) fn fetch_meta(
    model: &HubModel,
    revision: &str,
    file: &str,
    options: &HubOptions,
) -> Result<Option<FileMeta>, HubError> {
    let client = options.client();
    let mut url = resolve_url(options, model, revision, file);
    for _ in 0..5 {
        let mut auth_value = None;
        let headers = request_headers(&url, options, &mut auth_value);
        let response = client.send("HEAD", &url, &headers, false, &NoProgress)?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let location = header(&response, "location");
        let linked_etag = header(&response, "x-linked-etag");
        if (300..400).contains(&status) && linked_etag.is_none() {
            let Some(location) = location else {
                return Err(HubError::MissingHeader {
                    url,
                    header: "Location",
                });
            };
            let next = absolute(&url, &location);
            if origin(&next) != origin(&url) {
                // A redirect away from the hub without LFS headers: not something we know.
                return Err(status_error(&url, status));
            }
            url = next;
            continue;
        }
        if !(200..400).contains(&status) {
            return Err(status_error(&url, status));
        }
        let commit = header(&response, "x-repo-commit").ok_or_else(|| HubError::MissingHeader {
            url: url.clone(),
            header: "X-Repo-Commit",
        })?;
        if !is_commit_hash(&commit) {
            return Err(HubError::Corrupt {
                url,
                message: format!("X-Repo-Commit {commit:?} is not a commit hash"),
            });
        }
        let etag = linked_etag
            .or_else(|| header(&response, "etag"))
            .map(|e| normalize_etag(&e))
            .filter(|e| !e.is_empty())
            .ok_or_else(|| HubError::MissingHeader {
                url: url.clone(),
                header: "ETag",
            })?;
        if !etag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Err(HubError::Corrupt {
                url,
                message: format!("ETag {etag:?} cannot name a blob"),
            });
        }
        let size = header(&response, "x-linked-size")
            .or_else(|| header(&response, "content-length"))
            .and_then(|s| s.trim().parse().ok());
        let location = match (status, location) {
            (300..400, Some(location)) => absolute(&url, &location),
            _ => url.clone(),
        };
        return Ok(Some(FileMeta {
            commit: commit.to_ascii_lowercase(),
            etag,
            size,
            location,
        }));
    }
    Err(HubError::Request {
        url,
        message: "too many redirects".to_owned(),
    })
}

/// Fetches one file's blob (unless cached) and links it into `snapshots/<commit>/`.
pub(super) fn fetch_file(
    model: &HubModel,
    commit: &str,
    file: &str,
    meta: FileMeta,
    options: &HubOptions,
    progress: &dyn Progress,
) -> Result<PathBuf, HubError> {
    let repo = model.cache_dir(&options.cache_dir);
    let blob = repo.join("blobs").join(&meta.etag);
    let link = repo.join("snapshots").join(commit).join(file);
    if !blob.is_file() {
        download_blob(&meta, &blob, file, options, progress)?;
    } else {
        tracing::debug!("{file}: cached");
    }
    if !link.is_file() {
        link_blob(&blob, &link, file)?;
    }
    Ok(link)
}

pub(super) fn download_blob(
    meta: &FileMeta,
    blob: &Path,
    file: &str,
    options: &HubOptions,
    progress: &dyn Progress,
) -> Result<(), HubError> {
    let url = &meta.location;
    let verify_sha = meta.etag.len() == 64 && meta.etag.chars().all(|c| c.is_ascii_hexdigit());
    let expect = Expect {
        size: meta.size,
        sha256: verify_sha.then(|| meta.etag.clone()),
    };
    let mut auth_value = None;
    let headers = request_headers(url, options, &mut auth_value);
    options
        .client()
        .download(url, &headers, blob, file, &expect, progress)?;
    Ok(())
}

/// Points `snapshots/<commit>/<file>` at the blob: a relative symlink on Unix (through a
/// temporary name, then renamed over), a copy elsewhere.
pub(super) fn link_blob(blob: &Path, link: &Path, file: &str) -> Result<(), HubError> {
    let dir = link.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let tmp = temp_path(link);
    #[cfg(unix)]
    let made = {
        // snapshots/<commit>/<file...> -> ../../(../ per extra folder)blobs/<etag>
        let depth = file.split('/').count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(blob.file_name().unwrap_or_default());
        std::os::unix::fs::symlink(&target, &tmp)
    };
    #[cfg(not(unix))]
    let made = {
        let _ = file;
        fs::copy(blob, &tmp).map(|_| ())
    };
    made.and_then(|()| fs::rename(&tmp, link))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .map_err(io_error(link))
}
