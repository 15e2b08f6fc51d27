//! Hub downloads against a local `tiny_http` server that speaks the Hugging Face `resolve`
//! protocol (`X-Repo-Commit`, `ETag`, LFS redirects with `X-Linked-Etag`), serving the committed
//! random tiny BERTs. No network.

mod common;
#[path = "common/hub_server.rs"]
mod hub_server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::Device;
use common::{Fixture, fixtures, max_abs_diff};
use hub_server::{COMMIT, Hub, repo_from, serve, sha256};
use stilts_models::bert::{BertForSequenceClassification, BertInput, BertModel};
use stilts_models::gpt::{GptConfig, GptModel};
use stilts_models::hub::{
    HubError, HubModel, HubOptions, ModelName, NoProgress, Progress, download_model,
    resolve_model_with,
};
use stilts_models::{EncoderConfig, EncoderKind};

fn tiny_hub(corrupt_cdn: bool) -> Hub {
    let mut repos = BTreeMap::new();
    repos.insert(
        "stilts-test/tiny-bert".to_owned(),
        repo_from(&fixtures().join("tiny-bert"), &["model.safetensors"]),
    );
    repos.insert(
        "stilts-test/tiny-bert-legacy".to_owned(),
        repo_from(&fixtures().join("tiny-bert-legacy"), &["pytorch_model.bin"]),
    );
    serve(repos, BTreeMap::new(), corrupt_cdn)
}

#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<(String, Option<u64>)>>,
    bytes: AtomicUsize,
    finished: AtomicUsize,
}

impl Progress for Recorder {
    fn start(&self, file: &str, total: Option<u64>) {
        self.started.lock().unwrap().push((file.to_owned(), total));
    }
    fn advance(&self, bytes: u64) {
        self.bytes.fetch_add(bytes as usize, Ordering::Relaxed);
    }
    fn finish(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}

fn hub_model(repo: &str) -> HubModel {
    HubModel {
        repo_id: repo.to_owned(),
        revision: "main".to_owned(),
    }
}

#[test]
fn downloads_into_the_hf_cache_layout_and_loads() {
    let hub = tiny_hub(false);
    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions::new(&hub.url, cache.path());
    let progress = Recorder::default();
    let snapshot = resolve_model_with("stilts-test/tiny-bert", &options, &progress)
        .expect("download succeeds");

    let repo = cache.path().join("models--stilts-test--tiny-bert");
    assert_eq!(snapshot, repo.join("snapshots").join(COMMIT));
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT
    );
    let src = fixtures().join("tiny-bert");
    for file in ["config.json", "model.safetensors", "vocab.txt"] {
        let link = snapshot.join(file);
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_symlink(), "{file} is a symlink");
        let target = std::fs::read_link(&link).unwrap();
        assert!(target.starts_with("../../blobs"), "{}", target.display());
        assert_eq!(
            std::fs::read(&link).unwrap(),
            std::fs::read(src.join(file)).unwrap(),
            "{file}"
        );
    }
    let weights = std::fs::read(src.join("model.safetensors")).unwrap();
    assert!(repo.join("blobs").join(sha256(&weights)).is_file());
    assert!(!snapshot.join("tokenizer.json").exists());
    // No temporary files left behind.
    for entry in std::fs::read_dir(repo.join("blobs")).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(!name.to_string_lossy().contains("incomplete"), "{name:?}");
    }
    let started = progress.started.lock().unwrap().clone();
    let names: Vec<&str> = started.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(names, ["config.json", "model.safetensors", "vocab.txt"]);
    assert_eq!(started[1].1, Some(weights.len() as u64));
    assert_eq!(progress.finished.load(Ordering::Relaxed), 3);

    // The downloaded model is the fixture model: HF's logits.
    let device = Device::flex();
    let fixture = Fixture::open(src.join("forward.safetensors"));
    let (model, report) = BertForSequenceClassification::from_pretrained(&snapshot, 3, &device)
        .expect("loads from the snapshot");
    assert!(report.initialized.is_empty(), "{report}");
    let input = BertInput::new(
        fixture.int("input_ids", &device),
        fixture.int("token_type_ids", &device),
        fixture.int("attention_mask", &device),
    );
    let diff = max_abs_diff(model.forward(input), &fixture.f32("logits"), "logits");
    assert!(diff < 1e-5, "logits differ by {diff:e}");

    // A second resolution finds everything cached: only HEADs, no GET.
    hub.requests.lock().unwrap().clear();
    let again = resolve_model_with("stilts-test/tiny-bert", &options, &NoProgress).unwrap();
    assert_eq!(again, snapshot);
    let requests = hub.requests.lock().unwrap().clone();
    assert!(
        requests.iter().all(|r| !r.starts_with("GET")),
        "{requests:?}"
    );

    // Offline: served from the cache without a server.
    let mut offline = HubOptions::new("http://127.0.0.1:9", cache.path());
    offline.offline = true;
    let cached =
        download_model(&hub_model("stilts-test/tiny-bert"), &offline, &NoProgress).unwrap();
    assert_eq!(cached, snapshot);
    // Pinned to the commit, also offline.
    let pinned = resolve_model_with(
        &format!("stilts-test/tiny-bert@{COMMIT}"),
        &offline,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(pinned, snapshot);
}

/// The hub id of OpenAI GPT, served from the tiny GPT fixture under that name: its BPE tables
/// come with it, its family is read from the snapshot's `config.json`, and it loads as the
/// fixture model (transformers' hidden states).
#[test]
fn openai_gpt_downloads_with_its_bpe_tables_and_loads() {
    let mut repos = BTreeMap::new();
    repos.insert(
        "openai-community/openai-gpt".to_owned(),
        repo_from(&fixtures().join("tiny-gpt"), &["model.safetensors"]),
    );
    let hub = serve(repos, BTreeMap::new(), false);
    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions::new(&hub.url, cache.path());
    let snapshot = resolve_model_with("openai-community/openai-gpt", &options, &NoProgress)
        .expect("download succeeds");
    for file in [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "merges.txt",
    ] {
        assert!(snapshot.join(file).is_file(), "{file}");
    }
    assert!(matches!(
        stilts_io::files::TokenizerFiles::find(&snapshot),
        Some(stilts_io::files::TokenizerFiles::Bpe { .. })
    ));
    let config = EncoderConfig::from_hf_dir(&snapshot).unwrap();
    assert_eq!(config.kind(), EncoderKind::Gpt);

    let device = Device::flex();
    let gpt_config = GptConfig::from_hf_file(snapshot.join("config.json")).unwrap();
    let (model, report) =
        GptModel::from_hf_weights(&gpt_config, snapshot.join("model.safetensors"), &device)
            .unwrap();
    assert!(
        report.missing.is_empty() && report.unused.is_empty(),
        "{report}"
    );
    let fixture = Fixture::open(fixtures().join("tiny-gpt/forward.safetensors"));
    let out = model.forward(
        fixture.int("input_ids", &device),
        fixture.int("attention_mask", &device),
    );
    let d = max_abs_diff(
        out.last_hidden_state,
        &fixture.f32("last_hidden_state"),
        "hidden",
    );
    assert!(d < 1e-5, "hidden states differ by {d:e}");
}

#[test]
fn falls_back_to_pytorch_model_bin() {
    let hub = tiny_hub(false);
    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions::new(&hub.url, cache.path());
    let snapshot = download_model(
        &hub_model("stilts-test/tiny-bert-legacy"),
        &options,
        &NoProgress,
    )
    .expect("download succeeds");
    assert!(snapshot.join("pytorch_model.bin").is_file());
    assert!(!snapshot.join("model.safetensors").exists());
    let requests = hub.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r
                .ends_with("/resolve/0123456789abcdef0123456789abcdef01234567/model.safetensors")),
        "asked for model.safetensors first (at the resolved commit): {requests:?}"
    );

    let device = Device::flex();
    let fixture = Fixture::open(fixtures().join("tiny-bert-legacy/forward.safetensors"));
    let (encoder, _) = BertModel::from_pretrained(&snapshot, &device).expect("loads");
    let input = BertInput::new(
        fixture.int("input_ids", &device),
        fixture.int("token_type_ids", &device),
        fixture.int("attention_mask", &device),
    );
    let diff = max_abs_diff(
        encoder.forward(input).last_hidden_state,
        &fixture.f32("last_hidden_state"),
        "hidden",
    );
    assert!(diff < 1e-5, "hidden differs by {diff:e}");
}

#[test]
fn errors_name_the_url_or_file() {
    let hub = tiny_hub(false);
    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions::new(&hub.url, cache.path());

    let err = download_model(&hub_model("stilts-test/missing"), &options, &NoProgress).unwrap_err();
    match &err {
        HubError::Http { url, status, .. } => {
            assert_eq!(*status, 404);
            assert!(
                url.ends_with("/stilts-test/missing/resolve/main/config.json"),
                "{url}"
            );
        }
        other => panic!("expected HTTP 404, got {other:?}"),
    }
    assert!(err.to_string().contains(&hub.url), "{err}");

    let mut offline = options.clone();
    offline.offline = true;
    let err =
        download_model(&hub_model("stilts-test/tiny-bert"), &offline, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, HubError::NotCached { file, .. } if file == "refs/main"),
        "{err:?}"
    );
    assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");

    // Unreachable hub and nothing cached: the error says both.
    let mut dead = HubOptions::new("http://127.0.0.1:9", cache.path());
    dead.http.retries = 0;
    let err = download_model(&hub_model("stilts-test/tiny-bert"), &dead, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, HubError::NotCached { cause: Some(_), .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");

    let err = ModelName::parse("not a model").unwrap_err();
    assert!(err.to_string().contains("not a model"), "{err}");
}

#[test]
fn corrupt_download_leaves_no_blob() {
    let hub = tiny_hub(true);
    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions::new(&hub.url, cache.path());
    let err =
        download_model(&hub_model("stilts-test/tiny-bert"), &options, &NoProgress).unwrap_err();
    assert!(
        matches!(&err, HubError::Corrupt { url, .. } if url.contains("/cdn/")),
        "{err:?}"
    );
    let blobs: Vec<PathBuf> =
        std::fs::read_dir(cache.path().join("models--stilts-test--tiny-bert/blobs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    // config.json made it; the weights neither under their name nor as a temporary file.
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(
        !cache
            .path()
            .join("models--stilts-test--tiny-bert/snapshots")
            .join(COMMIT)
            .join("model.safetensors")
            .exists()
    );
}
