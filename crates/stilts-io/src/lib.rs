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
//! - [`cache`]: stilts' own cache (task data fetched on demand) and the variables that steer
//!   downloads (`STILTS_CACHE`, `STILTS_OFFLINE`, `STILTS_GLUE_MIRROR`).
//! - [`lock`]: advisory locks between processes, released when the holder dies.
//! - [`names`]: names from user files that become paths stay inside their directory.
//!
//! It links no tensor library and no tokenizer, so `stilts-data`, `stilts-models` and `xtask`
//! can all use it (see `ARCHITECTURE.md`).
//!
//! ```
//! use stilts_io::files::TokenizerFiles;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! // A reader sees no `vocab.txt` or all of it, never a part.
//! let vocab = dir.path().join("vocab.txt");
//! stilts_io::write_atomic(&vocab, b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")?;
//! // The directory's tokenizer: `tokenizer.json`, else `vocab.txt`, else BPE files.
//! let files = TokenizerFiles::at(dir.path())?;
//! assert_eq!(files, TokenizerFiles::WordPiece { vocab, config: None });
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod cache;
pub mod env;
pub mod files;
pub mod fs;
pub mod http;
pub mod hub;
pub mod lock;
pub mod names;
pub mod progress;

pub use fs::{FsError, write_atomic};
pub use progress::{NoProgress, Progress};
