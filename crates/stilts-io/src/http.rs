//! One HTTP client for every download of stilts (GLUE data, hub models): timeouts, a
//! `stilts/<version>` user agent, and retries with exponential backoff on transient failures
//! (connection errors, timeouts, a body cut short, HTTP 408, 429 and 5xx). A download streams
//! to a temporary file that is synced and renamed into place ([`crate::fs::persist_with`]), so
//! an interrupted download never leaves a truncated file under its final name.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::fs::{FsError, persist_with};
use crate::progress::Progress;

/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Timeouts and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Limit for connecting, for the response to start and for each read of the body.
    pub timeout: Duration,
    /// Extra attempts after a transient failure.
    pub retries: u32,
    /// Wait before the first retry; doubled after each, up to [`MAX_RETRY_DELAY`].
    pub retry_delay: Duration,
}

impl Default for HttpConfig {
    /// 60 s timeouts, 3 retries from 1 s.
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(60),
            retries: 3,
            retry_delay: Duration::from_secs(1),
        }
    }
}

/// Why a request or download failed (after its retries). Displays as `{url}: {detail}`.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// No HTTP status came back (connection refused, timeout, a body cut short).
    Transport {
        /// The URL.
        url: String,
        /// The transport error.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The server answered with an error status.
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// Its reason phrase (empty when unknown).
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The body does not match its announced size or SHA-256.
    Corrupt {
        /// The URL.
        url: String,
        /// What differed.
        message: String,
    },
    /// Writing the download failed.
    Fs(FsError),
}

impl From<FsError> for HttpError {
    fn from(e: FsError) -> Self {
        HttpError::Fs(e)
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Fs(e) => write!(f, "{e}"),
            _ => write!(f, "{}: {}", self.url().unwrap_or_default(), self.detail()),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Fs(e) => Some(e),
            _ => None,
        }
    }
}

fn gave_up(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (gave up after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl HttpError {
    /// The URL the error concerns, when it has one.
    pub fn url(&self) -> Option<&str> {
        match self {
            HttpError::Transport { url, .. }
            | HttpError::Status { url, .. }
            | HttpError::Corrupt { url, .. } => Some(url),
            HttpError::Fs(_) => None,
        }
    }

    /// What went wrong, without the URL: `HTTP 404 Not Found`, `request failed: ...`.
    pub fn detail(&self) -> String {
        match self {
            HttpError::Transport {
                message, attempts, ..
            } => format!("request failed: {message}{}", gave_up(*attempts)),
            HttpError::Status {
                status,
                reason,
                attempts,
                ..
            } => {
                let reason = if reason.is_empty() {
                    String::new()
                } else {
                    format!(" {reason}")
                };
                format!("HTTP {status}{reason}{}", gave_up(*attempts))
            }
            HttpError::Corrupt { message, .. } => format!("corrupt download: {message}"),
            HttpError::Fs(e) => e.to_string(),
        }
    }

    /// The HTTP status, for [`HttpError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What a download must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Its size in bytes (else the `Content-Length`, when the server sends one).
    pub size: Option<u64>,
    /// Its SHA-256, hex.
    pub sha256: Option<String>,
}

/// A response (any status) of [`Http::send`].
pub type Response = ureq::http::Response<ureq::Body>;

/// The HTTP client.
#[derive(Debug, Clone)]
pub struct Http {
    follow: ureq::Agent,
    manual: ureq::Agent,
    config: HttpConfig,
}

enum Attempt<T> {
    Done(T),
    Retry(String, HttpError),
    Fail(HttpError),
}

fn transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

fn transient_error(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
    )
}

fn status_error(url: &str, response: &Response, attempts: u32) -> HttpError {
    let status = response.status();
    HttpError::Status {
        url: url.to_owned(),
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_owned(),
        attempts,
    }
}

impl Http {
    /// A client with `config`.
    pub fn new(config: HttpConfig) -> Self {
        let agent = |redirects: u32| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(redirects)
                .timeout_connect(Some(config.timeout))
                .timeout_recv_response(Some(config.timeout))
                .timeout_per_read(Some(config.timeout))
                .user_agent(format!("stilts/{}", env!("CARGO_PKG_VERSION")))
                .build()
                .into()
        };
        Http {
            follow: agent(10),
            manual: agent(0),
            config,
        }
    }

    /// The timeouts and retries.
    pub fn config(&self) -> HttpConfig {
        self.config
    }

    /// Runs `attempt` until it is done or fails for good, sleeping between transient failures;
    /// each retry is announced through `progress` as `"{label}: {message}; retrying in ..."`.
    fn with_retries<T>(
        &self,
        label: &str,
        progress: &dyn Progress,
        mut attempt: impl FnMut(u32) -> Attempt<T>,
    ) -> Result<T, HttpError> {
        let mut delay = self.config.retry_delay;
        let mut n = 0u32;
        loop {
            n += 1;
            match attempt(n) {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(message, _) if n <= self.config.retries => {
                    tracing::warn!(label, attempt = n, "{message}; retrying in {delay:?}");
                    progress.note(&format!("{label}: {message}; retrying in {delay:?}"));
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2).min(MAX_RETRY_DELAY);
                }
                Attempt::Retry(_, e) => return Err(e),
            }
        }
    }

    /// Sends a `method` (`GET`, `HEAD`) request with `headers`, following redirects when
    /// `follow_redirects`, and returns the response of any status that is not transient;
    /// transport failures and transient statuses are retried.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        follow_redirects: bool,
        progress: &dyn Progress,
    ) -> Result<Response, HttpError> {
        let agent = if follow_redirects {
            &self.follow
        } else {
            &self.manual
        };
        self.with_retries(url, progress, |n| {
            let mut request = match method {
                "HEAD" => agent.head(url),
                _ => agent.get(url),
            };
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            match request.call() {
                Ok(response) if transient_status(response.status().as_u16()) => {
                    let e = status_error(url, &response, n);
                    Attempt::Retry(format!("HTTP {}", response.status().as_u16()), e)
                }
                Ok(response) => Attempt::Done(response),
                Err(e) => {
                    let err = HttpError::Transport {
                        url: url.to_owned(),
                        message: e.to_string(),
                        attempts: n,
                    };
                    if transient_error(&e) {
                        Attempt::Retry(e.to_string(), err)
                    } else {
                        Attempt::Fail(err)
                    }
                }
            }
        })
    }

    /// Downloads `url` (following redirects) to `dest` atomically, checking [`Expect`], and
    /// returns the number of bytes. Progress is reported under `label`. A non-success status is
    /// an error ([`HttpError::Status`]); transient failures, a body cut short included, are
    /// retried from the start.
    pub fn download(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        dest: &Path,
        label: &str,
        expect: &Expect,
        progress: &dyn Progress,
    ) -> Result<u64, HttpError> {
        self.with_retries(label, progress, |n| {
            let mut request = self.follow.get(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let mut response = match request.call() {
                Ok(r) => r,
                Err(e) => {
                    let err = HttpError::Transport {
                        url: url.to_owned(),
                        message: e.to_string(),
                        attempts: n,
                    };
                    return if transient_error(&e) {
                        Attempt::Retry(e.to_string(), err)
                    } else {
                        Attempt::Fail(err)
                    };
                }
            };
            let status = response.status();
            if !status.is_success() {
                let err = status_error(url, &response, n);
                let message = format!(
                    "HTTP {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .trim_end()
                .to_owned();
                return if transient_status(status.as_u16()) {
                    Attempt::Retry(message, err)
                } else {
                    Attempt::Fail(err)
                };
            }
            let total = expect.size.or(response.body().content_length());
            progress.start(label, total);
            let mut bytes = 0;
            let copied = persist_with(dest, |tmp| {
                let reader = &mut response.body_mut().as_reader();
                bytes = copy_body(reader, tmp, url, total, expect, progress)?;
                Ok(())
            });
            progress.finish();
            match copied {
                Ok(()) => Attempt::Done(bytes),
                Err(Copy::Read(message)) => {
                    let err = HttpError::Transport {
                        url: url.to_owned(),
                        message: message.clone(),
                        attempts: n,
                    };
                    Attempt::Retry(message, err)
                }
                Err(Copy::Fail(e)) => Attempt::Fail(e),
            }
        })
    }
}

/// How a body copy failed: a read (transient) or anything else.
enum Copy {
    Read(String),
    Fail(HttpError),
}

impl From<FsError> for Copy {
    fn from(e: FsError) -> Self {
        Copy::Fail(HttpError::Fs(e))
    }
}

fn copy_body(
    reader: &mut dyn Read,
    tmp: &Path,
    url: &str,
    total: Option<u64>,
    expect: &Expect,
    progress: &dyn Progress,
) -> Result<u64, Copy> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(FsError::on("create", tmp))?;
    let mut hasher = expect.sha256.as_ref().map(|_| Sha256::new());
    let mut buf = vec![0u8; 1 << 16];
    let mut copied = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(format!("reading the response: {e}"))),
        };
        out.write_all(&buf[..n])
            .map_err(FsError::on("write", tmp))?;
        if let Some(h) = hasher.as_mut() {
            h.update(&buf[..n]);
        }
        copied += n as u64;
        progress.advance(n as u64);
    }
    out.flush().map_err(FsError::on("write", tmp))?;
    if let Some(total) = total
        && total != copied
    {
        return Err(Copy::Read(format!("received {copied} of {total} bytes")));
    }
    if let (Some(h), Some(want)) = (hasher, &expect.sha256) {
        let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if !digest.eq_ignore_ascii_case(want) {
            return Err(Copy::Fail(HttpError::Corrupt {
                url: url.to_owned(),
                message: format!("SHA-256 {digest} differs from the expected {want}"),
            }));
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::progress::NoProgress;

    /// Serves `body` at every path; the first `fail` requests get 503, and with `short` the
    /// first successful answer announces more bytes than it sends.
    fn server(body: &'static [u8], fail: usize, short: bool) -> (String, Arc<AtomicUsize>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}", server.server_addr());
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = hits.clone();
        let short = Mutex::new(short);
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                if n < fail {
                    let _ = request.respond(tiny_http::Response::empty(503));
                } else if std::mem::take(&mut *short.lock().unwrap()) {
                    let response = tiny_http::Response::new(
                        200.into(),
                        vec![],
                        &body[..body.len() / 2],
                        Some(body.len()),
                        None,
                    );
                    let _ = request.respond(response);
                } else {
                    let _ = request.respond(tiny_http::Response::from_data(body));
                }
            }
        });
        (url, hits)
    }

    /// Short timeouts: the cut-short body is only noticed when the read times out.
    fn quick(retries: u32) -> Http {
        Http::new(HttpConfig {
            timeout: Duration::from_millis(500),
            retries,
            retry_delay: Duration::from_millis(5),
        })
    }

    #[test]
    fn download_retries_transient_failures_and_checks_the_digest() {
        let (url, hits) = server(b"hello world", 2, true);
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("f.txt");
        let sha = format!("{:x}", Sha256::digest(b"hello world"));
        let expect = Expect {
            size: None,
            sha256: Some(sha),
        };
        let n = quick(3)
            .download(&format!("{url}/f"), &[], &dest, "f", &expect, &NoProgress)
            .unwrap();
        assert_eq!(n, 11);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello world");
        // 503, 503, a short body, then the file.
        assert_eq!(hits.load(Ordering::SeqCst), 4);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

        let bad = Expect {
            size: None,
            sha256: Some("00".repeat(32)),
        };
        let err = quick(3)
            .download(&format!("{url}/f"), &[], &dest, "f", &bad, &NoProgress)
            .unwrap_err();
        assert!(matches!(err, HttpError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello world");
    }

    #[test]
    fn gives_up_after_its_retries_and_says_so() {
        let (url, hits) = server(b"x", 100, false);
        let tmp = tempfile::tempdir().unwrap();
        let err = quick(2)
            .download(
                &format!("{url}/f"),
                &[],
                &tmp.path().join("f"),
                "f",
                &Expect::default(),
                &NoProgress,
            )
            .unwrap_err();
        assert_eq!(err.status(), Some(503));
        assert!(
            err.to_string().contains("gave up after 3 attempts"),
            "{err}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
