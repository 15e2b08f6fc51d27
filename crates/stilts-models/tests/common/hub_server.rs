//! A local stand-in for the Hugging Face hub: a `tiny_http` server that speaks the `resolve`
//! protocol (`X-Repo-Commit`, `ETag`, LFS redirects with `X-Linked-Etag`). Shared by the hub
//! tests here and the CLI's first-hour test (`#[path]`-included there).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// One file of a served repository: its bytes, and whether it is an LFS file (served through a
/// redirect to `/cdn/<sha256>`, as the hub does for weights).
pub struct Served {
    pub bytes: Vec<u8>,
    pub lfs: bool,
}

/// A running server; stops when dropped.
pub struct Hub {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    /// `METHOD /path` of every request, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Lower-case hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

/// Serves `repos` (repo id -> file name -> contents) at revision `main` = [`COMMIT`] and at the
/// commit itself, and `plain` files at their own paths (`/glue/RTE.zip`: a GLUE mirror beside
/// the hub). `corrupt_cdn` serves LFS bodies with one byte flipped.
pub fn serve(
    repos: BTreeMap<String, BTreeMap<String, Served>>,
    plain: BTreeMap<String, Vec<u8>>,
    corrupt_cdn: bool,
) -> Hub {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
    let url = format!("http://{}", server.server_addr());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (srv, log) = (server.clone(), requests.clone());
    let thread = std::thread::spawn(move || {
        let mut cdn: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for files in repos.values() {
            for served in files.values().filter(|s| s.lfs) {
                cdn.insert(sha256(&served.bytes), served.bytes.clone());
            }
        }
        for request in srv.incoming_requests() {
            let path = request.url().to_owned();
            log.lock()
                .unwrap()
                .push(format!("{} {path}", request.method()));
            let not_found = || {
                tiny_http::Response::from_string("Entry not found")
                    .with_status_code(404)
                    .with_header(header("X-Error-Code", "EntryNotFound"))
            };
            if let Some(bytes) = plain.get(&path) {
                let _ = request.respond(tiny_http::Response::from_data(bytes.clone()));
                continue;
            }
            if let Some(sha) = path.strip_prefix("/cdn/") {
                let response = match cdn.get(sha) {
                    Some(bytes) => {
                        let mut bytes = bytes.clone();
                        if corrupt_cdn {
                            bytes[0] ^= 1;
                        }
                        tiny_http::Response::from_data(bytes)
                    }
                    None => not_found(),
                };
                let _ = request.respond(response);
                continue;
            }
            // /{org}/{name}/resolve/{revision}/{file}
            let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
            let found = match parts.as_slice() {
                [org, name, "resolve", revision, file]
                    if *revision == "main" || *revision == COMMIT =>
                {
                    repos
                        .get(&format!("{org}/{name}"))
                        .and_then(|files| files.get(*file))
                }
                _ => None,
            };
            let Some(served) = found else {
                let _ = request.respond(not_found());
                continue;
            };
            let response = if served.lfs {
                let sha = sha256(&served.bytes);
                tiny_http::Response::from_data(Vec::new())
                    .with_status_code(302)
                    .with_header(header("Location", &format!("/cdn/{sha}")))
                    .with_header(header("X-Linked-Etag", &format!("\"{sha}\"")))
                    .with_header(header("X-Linked-Size", &served.bytes.len().to_string()))
                    .with_header(header("X-Repo-Commit", COMMIT))
            } else {
                // tiny_http sends the headers of the full body but no body to a HEAD.
                let git_sha = &sha256(&served.bytes)[..40];
                tiny_http::Response::from_data(served.bytes.clone())
                    .with_header(header("ETag", &format!("\"{git_sha}\"")))
                    .with_header(header("X-Repo-Commit", COMMIT))
            };
            let _ = request.respond(response);
        }
    });
    Hub {
        url,
        server,
        thread: Some(thread),
        requests,
    }
}

/// The files of a model directory that a hub repository holds, `lfs` ones behind a CDN redirect.
pub fn repo_from(dir: &Path, lfs: &[&str]) -> BTreeMap<String, Served> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            // Only what a model repository holds: no test outputs.
            matches!(
                name,
                "config.json"
                    | "model.safetensors"
                    | "pytorch_model.bin"
                    | "vocab.txt"
                    | "vocab.json"
                    | "merges.txt"
                    | "tokenizer.json"
                    | "tokenizer_config.json"
                    | "special_tokens_map.json"
            )
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            let served = Served {
                bytes: std::fs::read(&p).unwrap(),
                lfs: lfs.contains(&name.as_str()),
            };
            (name, served)
        })
        .collect()
}
