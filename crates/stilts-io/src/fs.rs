//! Files and directories that are never half-written.
//!
//! [`write_atomic`] and [`persist_with`] write to a fresh temporary name beside the target
//! (`.<name>.<pid>.<n>.tmp`), `fsync` it, rename it over the target and `fsync` the directory,
//! so a reader sees the old contents or the new ones and a crash at any moment leaves one of
//! the two. [`replace_dir`] does the same for a whole directory (a checkpoint, a saved model):
//! it is built in `<dir>.tmp/`, synced, and swapped in with the previous version kept as
//! `<dir>.old/` for the moment of the swap; [`complete_dir`] finds whichever of the two a crash
//! left complete.
//!
//! Test seam: `STILTS_FAIL_WRITE=<suffix>[@<n>]` makes the `n`-th (default: first) call of
//! [`persist_with`] or [`replace_dir`] in the process whose target path ends with `suffix` fail
//! after writing, before anything is renamed, with the error a full disk gives (`ENOSPC`). Tests
//! use it to check that a failed write leaves the previous file or directory in place and the
//! run resumable (`docs/reliability.md`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file-system operation failed on a path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct FsError {
    /// What was being done (`write`, `rename`, `create directory`, ...).
    pub action: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The operating system's error.
    #[source]
    pub source: io::Error,
}

impl FsError {
    /// An error of `action` on `path`.
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FsError {
            action,
            path: path.into(),
            source,
        }
    }

    /// A closure for `map_err`.
    pub fn on<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
        move |source| FsError::new(action, path, source)
    }
}

static INJECTED_CALLS: AtomicU64 = AtomicU64::new(0);

/// The failure `STILTS_FAIL_WRITE` asks for at this write of `path`, if any.
fn injected_failure(path: &Path) -> Option<io::Error> {
    let spec = std::env::var("STILTS_FAIL_WRITE").ok()?;
    let (pattern, nth) = match spec.rsplit_once('@') {
        Some((p, n)) => (p.to_owned(), n.parse::<u64>().ok()?),
        None => (spec, 1),
    };
    if pattern.is_empty() || !path.to_string_lossy().ends_with(&pattern) {
        return None;
    }
    let call = INJECTED_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    (call == nth).then(|| {
        tracing::warn!("STILTS_FAIL_WRITE: failing the write of {}", path.display());
        io::Error::from_raw_os_error(28) // ENOSPC
    })
}

/// `path` with `suffix` appended to its file name (`checkpoint` -> `checkpoint.old`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temporary name beside `path` that no other writer (thread or process) uses; it keeps the
/// extension (`.fig.png.<pid>.<n>.tmp.png`) for writers that choose a format by it.
pub fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    parent_of(path).join(format!(
        ".{name}.{}.{}.tmp{ext}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Whether `name` is one of [`temp_path`]'s names (`.<file>.<pid>.<n>.tmp[.<ext>]`).
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((stem, _)) = rest.split_once(".tmp") else {
        return false;
    };
    let mut parts = stem.rsplitn(3, '.');
    let (n, pid) = (parts.next(), parts.next());
    let digits =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    digits(n) && digits(pid) && parts.next().is_some_and(|f| !f.is_empty())
}

/// Removes the temporary files a killed writer left under `dir` (recursively; [`is_temp_name`]
/// names them) and returns how many. Only for a directory this process holds the lock of
/// (no other writer can be using one of them).
pub fn remove_stale_temps(dir: &Path) -> Result<usize, FsError> {
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(FsError::new("list", &d, e)),
        };
        for entry in entries {
            let entry = entry.map_err(FsError::on("list", &d))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(FsError::on("inspect", &path))?;
            if kind.is_dir() {
                pending.push(path);
            } else if is_temp_name(&entry.file_name().to_string_lossy()) {
                fs::remove_file(&path).map_err(FsError::on("remove", &path))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Flushes a directory's entries (a rename into it) to disk; a no-op where directories cannot
/// be opened (not Unix).
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(FsError::on("sync", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// `fsync`s a file already written.
pub fn sync_file(path: &Path) -> Result<(), FsError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(FsError::on("sync", path))
}

/// Creates `dir` and its parents.
pub fn create_dir_all(dir: &Path) -> Result<(), FsError> {
    fs::create_dir_all(dir).map_err(FsError::on("create directory", dir))
}

/// Writes `bytes` to `path` atomically (see the module doc); creates the parent directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    persist_with(path, |tmp| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(FsError::on("create", tmp))?;
        file.write_all(bytes).map_err(FsError::on("write", tmp))
    })
}

/// Lets `write` fill a temporary file (by its path: it may be created by a library that only
/// takes paths), then syncs it and renames it to `path` atomically. On error the temporary file
/// is removed and `path` is left as it was.
pub fn persist_with<E: From<FsError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let dir = parent_of(path);
    create_dir_all(dir)?;
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| {
        if let Some(e) = injected_failure(path) {
            return Err(FsError::new("write", path, e).into());
        }
        sync_file(&tmp)?;
        fs::rename(&tmp, path).map_err(FsError::on("rename into", path))?;
        sync_dir(dir)?;
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Syncs every file below `dir`, then `dir` itself.
pub fn sync_tree(dir: &Path) -> Result<(), FsError> {
    for entry in fs::read_dir(dir).map_err(FsError::on("read directory", dir))? {
        let path = entry.map_err(FsError::on("read directory", dir))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            sync_file(&path)?;
        }
    }
    sync_dir(dir)
}

fn remove_dir_if_present(dir: &Path) -> Result<(), FsError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(FsError::new("remove directory", dir, e))
        }
        _ => Ok(()),
    }
}

/// Replaces the directory `dir` with what `write` puts into a fresh `<dir>.tmp/`: the files are
/// synced, the previous `dir` is kept as `<dir>.old/` during the swap and removed after, so a
/// process killed at any moment leaves a complete `dir` or `<dir>.old/` (see [`complete_dir`]).
pub fn replace_dir<E: From<FsError>>(
    dir: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = sibling(dir, ".tmp");
    let old = sibling(dir, ".old");
    remove_dir_if_present(&tmp)?;
    create_dir_all(&tmp)?;
    write(&tmp)?;
    if let Some(e) = injected_failure(dir) {
        return Err(FsError::new("write", dir, e).into());
    }
    sync_tree(&tmp)?;
    remove_dir_if_present(&old)?;
    if dir.exists() {
        fs::rename(dir, &old).map_err(FsError::on("rename", dir))?;
    }
    fs::rename(&tmp, dir).map_err(FsError::on("rename into", dir))?;
    remove_dir_if_present(&old)?;
    sync_dir(parent_of(dir))?;
    Ok(())
}

/// `dir` if it is complete (holds `marker`), else the `<dir>.old/` a crash left mid-swap of
/// [`replace_dir`]; `None` when neither is.
pub fn complete_dir(dir: &Path, marker: &str) -> Option<PathBuf> {
    let old = sibling(dir, ".old");
    if dir.join(marker).exists() {
        Some(dir.to_path_buf())
    } else if old.join(marker).exists() {
        Some(old)
    } else {
        None
    }
}

/// Removes a directory written by [`replace_dir`] with its `.old` and `.tmp` siblings.
pub fn remove_replaced_dir(dir: &Path) -> Result<(), FsError> {
    for d in [
        dir.to_path_buf(),
        sibling(dir, ".old"),
        sibling(dir, ".tmp"),
    ] {
        remove_dir_if_present(&d)?;
    }
    Ok(())
}

/// The manifest of a directory written whole (a checkpoint, a saved model).
pub const MANIFEST_FILE: &str = "manifest.json";

/// `manifest.json`: files of a directory with their size and SHA-256.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Manifest {
    /// File name -> (bytes, SHA-256 hex).
    files: std::collections::BTreeMap<String, (u64, String)>,
}

/// The size and SHA-256 (hex) of a file, read in one streaming pass.
pub fn file_digest(path: &Path) -> Result<(u64, String), FsError> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path).map_err(FsError::on("read", path))?;
    let mut hash = Sha256::new();
    let bytes = io::copy(&mut file, &mut hash).map_err(FsError::on("read", path))?;
    Ok((bytes, format!("{:x}", hash.finalize())))
}

/// Writes `dir/manifest.json` for `files` (names in `dir`), to be checked by
/// [`verify_manifest`] when the directory is read back.
pub fn write_manifest<S: AsRef<str>>(dir: &Path, files: &[S]) -> Result<(), FsError> {
    let mut entries = std::collections::BTreeMap::new();
    for name in files {
        let name = name.as_ref();
        entries.insert(name.to_owned(), file_digest(&dir.join(name))?);
    }
    let path = dir.join(MANIFEST_FILE);
    let bytes = serde_json::to_vec_pretty(&Manifest { files: entries })
        .map_err(|e| FsError::new("serialize", &path, io::Error::other(e)))?;
    write_atomic(&path, &bytes)
}

/// Checks the files of `dir` against its manifest; `Err` names the first that does not match
/// (its size, or its SHA-256). A directory without a manifest (written before manifests) passes.
pub fn verify_manifest(dir: &Path) -> Result<(), String> {
    let path = dir.join(MANIFEST_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (name, (bytes, sha)) in &manifest.files {
        let file = dir.join(name);
        let (b, s) = file_digest(&file).map_err(|e| format!("{e}: {}", e.source))?;
        if b != *bytes {
            return Err(format!(
                "{}: {b} bytes, the manifest says {bytes}",
                file.display()
            ));
        }
        if s != *sha {
            return Err(format!(
                "{}: its SHA-256 does not match the manifest",
                file.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stale_temps_are_named_and_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("sub/summary.json");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let temp = temp_path(&target);
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_temp_name(&name), "{name}");
        for other in [
            "summary.json",
            ".summary.json",
            ".x.tmp",
            ".a.b.tmp.json",
            ".x.1.tmp",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
        std::fs::write(&temp, b"{").unwrap();
        std::fs::write(&target, b"{}").unwrap();
        assert_eq!(remove_stale_temps(tmp.path()).unwrap(), 1);
        assert!(!temp.exists() && target.exists());
    }

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporaries() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub/a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(&tmp.path().join("sub")), ["a.json"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.txt");
        write_atomic(&path, b"old").unwrap();
        let err = persist_with(&path, |t| -> Result<(), FsError> {
            fs::write(t, b"half").unwrap();
            Err(FsError::new("write", t, io::Error::other("disk full")))
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("cannot write "), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(tmp.path()), ["a.txt"]);
    }

    #[test]
    fn replace_dir_swaps_and_complete_dir_finds_the_survivor() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ckpt");
        for v in ["1", "2"] {
            replace_dir(&dir, |t| -> Result<(), FsError> {
                write_atomic(&t.join("state"), v.as_bytes())
            })
            .unwrap();
        }
        assert_eq!(fs::read(dir.join("state")).unwrap(), b"2");
        assert_eq!(names(tmp.path()), ["ckpt"]);
        // A crash between the two renames leaves only `ckpt.old`.
        fs::rename(&dir, sibling(&dir, ".old")).unwrap();
        assert_eq!(complete_dir(&dir, "state"), Some(sibling(&dir, ".old")));
        remove_replaced_dir(&dir).unwrap();
        assert_eq!(complete_dir(&dir, "state"), None);
        assert!(names(tmp.path()).is_empty());
    }
}
