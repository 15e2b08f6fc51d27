//! Progress of long operations (downloads, unpacking). Libraries report through [`Progress`] and
//! draw nothing; the CLI draws bars ([`NoProgress`] shows nothing, [`LogProgress`] writes log
//! lines).

/// Progress of a sequence of items (files downloaded, archives unpacked). Each item is
/// announced by `start`, grows by `advance` and ends with `finish` (also when it failed).
pub trait Progress {
    /// A new item (`RTE.zip`, `model.safetensors`); `total` in bytes when known.
    fn start(&self, what: &str, total: Option<u64>);
    /// `bytes` more of the current item are done.
    fn advance(&self, bytes: u64);
    /// The current item is over.
    fn finish(&self);
    /// A one-line status message (a retry, a skipped task, a fallback to the cache).
    fn note(&self, _message: &str) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// A [`Progress`] that writes a log line per item and per note (for runs without a terminal).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogProgress;

impl Progress for LogProgress {
    fn start(&self, what: &str, total: Option<u64>) {
        match total {
            Some(bytes) => tracing::info!("downloading {what} ({bytes} bytes)"),
            None => tracing::info!("downloading {what}"),
        }
    }
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
    fn note(&self, message: &str) {
        tracing::warn!("{message}");
    }
}
