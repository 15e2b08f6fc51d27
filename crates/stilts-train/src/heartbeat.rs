//! The heartbeat a process keeps in the directory of the run it trains
//! ([`stilts_schema::runs::Heartbeat`]): written when the run starts, rewritten by a thread
//! every [`HEARTBEAT_INTERVAL_S`] seconds (so slow steps and long evaluations do not look like
//! a dead process), removed when the run ends, fails or unwinds. A process killed outright
//! leaves it behind, which is how `stilts show` tells a dead run from a live one. Writing it
//! never fails a run.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use stilts_schema::runs::{HEARTBEAT_FILE, HEARTBEAT_INTERVAL_S, Heartbeat};

/// Keeps a run's heartbeat while it lives.
#[derive(Debug)]
pub struct HeartbeatGuard {
    path: PathBuf,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn beat(path: &Path) {
    let written = serde_json::to_vec(&Heartbeat::now())
        .map_err(|e| e.to_string())
        .and_then(|bytes| stilts_io::fs::write_atomic(path, &bytes).map_err(|e| e.to_string()));
    if let Err(e) = written {
        tracing::debug!("heartbeat {} not written: {e}", path.display());
    }
}

impl HeartbeatGuard {
    /// Writes the first heartbeat of `run_dir` and starts the thread that renews it.
    pub fn start(run_dir: &Path) -> HeartbeatGuard {
        let path = run_dir.join(HEARTBEAT_FILE);
        beat(&path);
        let (stop, stopped) = mpsc::channel::<()>();
        let renewed = path.clone();
        let thread = std::thread::Builder::new()
            .name("stilts-heartbeat".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_secs(HEARTBEAT_INTERVAL_S))
                {
                    beat(&renewed);
                }
            })
            .ok();
        HeartbeatGuard {
            path,
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for HeartbeatGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
