//! Unpacking a task's zip archive, refusing unsafe entries.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use stilts_io::Progress;

use crate::error::{DataError, Result};

/// The components of a zip entry name, or `None` when it is unsafe to extract: absolute, with a
/// drive prefix or a `..` component, or containing NUL.
fn safe_components(name: &str) -> Option<Vec<&str>> {
    if name.is_empty() || name.contains('\0') || name.starts_with(['/', '\\']) {
        return None;
    }
    let parts: Vec<&str> = name
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") || parts.first().is_some_and(|p| p.contains(':')) {
        return None;
    }
    Some(parts)
}

/// Unpack the entries of `archive` under `folder/` into `dest`. The whole archive is rejected,
/// before anything is written, when any entry has an unsafe path or is a symbolic link.
pub(super) fn extract_folder(
    archive: &Path,
    folder: &str,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let archive_error = |message: String| DataError::Archive {
        path: archive.to_owned(),
        message,
    };
    let reader = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(reader))
        .map_err(|e| archive_error(format!("not a readable zip archive: {e}")))?;
    let mut wanted: Vec<(usize, PathBuf, bool)> = Vec::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| archive_error(format!("entry {i}: {e}")))?;
        let name = entry.name().to_owned();
        let parts = safe_components(&name)
            .filter(|_| entry.enclosed_name().is_some())
            .ok_or_else(|| {
                archive_error(format!(
                    "entry `{name}` has an unsafe path (absolute or with `..`); refusing to unpack"
                ))
            })?;
        if entry.is_symlink() {
            return Err(archive_error(format!(
                "entry `{name}` is a symbolic link; refusing to unpack"
            )));
        }
        if parts.first() != Some(&folder) {
            continue;
        }
        let rel: PathBuf = parts[1..].iter().collect();
        if !entry.is_dir() {
            total += entry.size();
        }
        wanted.push((i, rel, entry.is_dir()));
    }
    if wanted.is_empty() {
        return Err(archive_error(format!("has no folder `{folder}/`")));
    }
    fs::create_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
    let what = format!(
        "unpacking {}",
        archive.file_name().unwrap_or_default().to_string_lossy()
    );
    progress.start(&what, Some(total));
    let result = (|| {
        for (i, rel, is_dir) in wanted {
            let out_path = dest.join(&rel);
            if is_dir {
                fs::create_dir_all(&out_path).map_err(|e| DataError::io(&out_path, e))?;
                continue;
            }
            if let Some(parent) = out_path.parent() {
                fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
            }
            let mut entry = zip
                .by_index(i)
                .map_err(|e| archive_error(format!("entry {i}: {e}")))?;
            let mut out = File::create(&out_path).map_err(|e| DataError::io(&out_path, e))?;
            copy_counting(&mut entry, &mut out, progress).map_err(|e| match e {
                Copy::Read(e) => archive_error(format!("entry `{}`: {e}", rel.display())),
                Copy::Write(e) => DataError::io(&out_path, e),
            })?;
        }
        Ok(())
    })();
    progress.finish();
    result
}

/// Copies `reader` into `writer`, reporting bytes to `progress`.
fn copy_counting(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    progress: &dyn Progress,
) -> std::result::Result<u64, Copy> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        writer.write_all(&buf[..n]).map_err(Copy::Write)?;
        total += n as u64;
        progress.advance(n as u64);
    }
    writer.flush().map_err(Copy::Write)?;
    Ok(total)
}

enum Copy {
    Read(io::Error),
    Write(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_entry_names_are_refused() {
        for name in [
            "../evil",
            "RTE/../../evil",
            "/etc/passwd",
            "\\evil",
            "C:/evil",
            "RTE\\..\\..\\x",
            "",
            "a\0b",
        ] {
            assert_eq!(safe_components(name), None, "{name:?}");
        }
        assert_eq!(
            safe_components("RTE/./train.tsv"),
            Some(vec!["RTE", "train.tsv"])
        );
        assert_eq!(safe_components("RTE/"), Some(vec!["RTE"]));
    }
}
