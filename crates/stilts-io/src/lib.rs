//! The I/O layer every stilts crate stands on, and the only place each of these things is done:
//!
//! - [`fs`]: writing a file or a directory so that a reader (or a process killed midway) sees
//!   the old version or the new one, never a torn one: a temporary name, `fsync`, `rename`,
//!   `fsync` of the directory.
//! - [`http`]: one HTTP client (timeouts, a user agent, retries with backoff on transient
//!   failures) that streams a download to disk through [`fs`], with an optional SHA-256 check.
//! - [`progress`]: the progress trait long operations report through; front ends draw it.
//! - [`hub`]: models named by a directory or a Hugging Face hub id, downloaded into the standard
//!   Hugging Face cache.
//! - [`files`]: which files of a model directory hold its tokenizer and its weights.
//! - [`env`](mod@env): `${VAR}` expansion in the path strings of user files.
//!
//! It links no tensor library and no tokenizer, so `stilts-data`, `stilts-models` and `xtask`
//! can all use it (see `ARCHITECTURE.md`).
//!
//! ```no_run
//! # fn main() -> Result<(), stilts_io::fs::FsError> {
//! stilts_io::fs::write_atomic("out/result.json".as_ref(), b"{}")?;
//! # Ok(()) }
//! ```

pub mod env;
pub mod files;
pub mod fs;
pub mod http;
pub mod hub;
pub mod progress;

pub use fs::{FsError, write_atomic};
pub use progress::{NoProgress, Progress};
