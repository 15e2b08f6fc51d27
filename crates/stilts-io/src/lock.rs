//! Advisory file locks between processes: held while the [`FileLock`] lives, released by the
//! operating system when the holder exits or dies (`flock` on Unix, `LockFileEx` on Windows),
//! so a crash never leaves a stale lock behind. The lock file holds the holder's process id,
//! for the message of whoever waits.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::fs::FsError;

/// An exclusive lock on a file, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock on `path` (created when missing, with its parent folders), waiting for
    /// the current holder; `on_wait` is called once, with the holder's process id when the
    /// file names one, before waiting.
    pub fn acquire(path: &Path, on_wait: impl FnOnce(Option<u32>)) -> Result<FileLock, FsError> {
        let mut file = open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait(holder(&mut file));
                file.lock().map_err(|e| FsError::new("lock", path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(FsError::new("lock", path, e)),
        }
        record_holder(&mut file, path)?;
        Ok(FileLock {
            file,
            path: path.to_owned(),
        })
    }

    /// Takes the lock on `path` if no one holds it; otherwise `Ok(Err(pid))` with the holder's
    /// process id when the file names one.
    pub fn try_acquire(path: &Path) -> Result<Result<FileLock, Option<u32>>, FsError> {
        let mut file = open(path)?;
        match file.try_lock() {
            Ok(()) => {
                record_holder(&mut file, path)?;
                Ok(Ok(FileLock {
                    file,
                    path: path.to_owned(),
                }))
            }
            Err(TryLockError::WouldBlock) => Ok(Err(holder(&mut file))),
            Err(TryLockError::Error(e)) => Err(FsError::new("lock", path, e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// `" (process N)"` for a lock holder's pid when its lock file names one, else `""`: the one
/// wording of a holder in every "in use" message.
pub fn holder_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (process {p})")).unwrap_or_default()
}

fn open(path: &Path) -> Result<File, FsError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FsError::new("create directory", parent, e))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| FsError::new("open", path, e))
}

fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn record_holder(file: &mut File, path: &Path) -> Result<(), FsError> {
    let write = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()
    };
    write(file).map_err(|e| FsError::new("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.lock");
        let first = FileLock::acquire(&path, |_| panic!("nothing holds it")).unwrap();
        match FileLock::try_acquire(&path).unwrap() {
            Err(pid) => assert_eq!(pid, Some(std::process::id())),
            Ok(_) => panic!("taken twice"),
        }
        drop(first);
        assert!(FileLock::try_acquire(&path).unwrap().is_ok());
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = FileLock::acquire(&path, |_| {}).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let lock = FileLock::acquire(&path, |pid| tx.send(pid).unwrap()).unwrap();
                lock.path().to_owned()
            })
        };
        assert_eq!(rx.recv().unwrap(), Some(std::process::id()));
        drop(first);
        assert_eq!(waiter.join().unwrap(), path);
    }
}
