//! The first hour, as a new user meets it: `stilts run` on the quick-start file with nothing
//! set, from an empty `HOME`. The model comes by hub id from a local stand-in for the Hugging
//! Face hub and RTE from a local GLUE mirror (`HF_ENDPOINT`, `STILTS_GLUE_MIRROR`), into the
//! caches; a second run offline (`STILTS_OFFLINE=1`, the servers gone) trains from the caches to
//! the same scores; an offline run with an empty cache names what is missing and the command
//! that fetches it. Needs the real all-MiniLM-L6-v2 (`STILTS_MINILM_DIR`) and real RTE
//! (`GLUE_DIR`), which the servers serve; skipped when either is unset.

#[path = "../../stilts-models/tests/common/hub_server.rs"]
mod hub_server;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// A small share of the quick start: the command and the file stay as the README gives them.
const SMALL: &[&str] = &[
    "--set",
    "recipe.epochs=1",
    "--set",
    "recipe.max_seq_len=48",
    "--set",
    "phases.0.tasks.0={ task = \"RTE\", train_examples = 32 }",
];

fn var(name: &str) -> Option<PathBuf> {
    let value = std::env::var_os(name).filter(|v| !v.is_empty())?;
    Some(PathBuf::from(value))
}

fn rte_zip(rte: &Path) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.add_directory("RTE/", options).unwrap();
    for split in ["train", "dev", "test"] {
        zip.start_file(format!("RTE/{split}.tsv"), options).unwrap();
        zip.write_all(&std::fs::read(rte.join(format!("{split}.tsv"))).unwrap())
            .unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// `stilts run` of the quick-start file from the workspace root, with only `env` set of the
/// variables that steer data and models.
fn quickstart(out: &Path, env: &[(&str, &Path)]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stilts"));
    cmd.current_dir(&root)
        .args([
            "run",
            "configs/experiments/quickstart_minilm_rte.toml",
            "--quiet",
        ])
        .args(SMALL)
        .arg("--output-dir")
        .arg(out)
        .env("STILTS_LOG", "warn");
    for name in [
        "GLUE_DIR",
        "STILTS_EXTRA_DIR",
        "STILTS_MINILM_DIR",
        "STILTS_CACHE",
        "STILTS_OFFLINE",
        "STILTS_GLUE_MIRROR",
        "XDG_CACHE_HOME",
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "HF_TOKEN",
    ] {
        cmd.env_remove(name);
    }
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().expect("run stilts")
}

/// The dev score and the training loss per epoch of the run.
fn scores(run: &Path) -> (f64, Vec<f64>) {
    let text = std::fs::read_to_string(run.join("00-rte/seed-1/result.json")).unwrap();
    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
    let losses = result["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    (result["dev_score"].as_f64().unwrap(), losses)
}

#[test]
fn one_command_from_an_empty_home_then_offline() {
    let (Some(minilm), Some(glue)) = (var("STILTS_MINILM_DIR"), var("GLUE_DIR")) else {
        eprintln!("skipped: STILTS_MINILM_DIR and GLUE_DIR are needed");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut repos = BTreeMap::new();
    repos.insert(
        REPO.to_owned(),
        hub_server::repo_from(&minilm, &["model.safetensors"]),
    );
    let mut plain = BTreeMap::new();
    plain.insert("/glue/RTE.zip".to_owned(), rte_zip(&glue.join("RTE")));
    let hub = hub_server::serve(repos, plain, false);
    let mirror = PathBuf::from(format!("{}/glue", hub.url));
    let endpoint = PathBuf::from(&hub.url);

    let online = quickstart(
        &tmp.path().join("runs-online"),
        &[
            ("HOME", &home),
            ("HF_ENDPOINT", &endpoint),
            ("STILTS_GLUE_MIRROR", &mirror),
        ],
    );
    let stderr = String::from_utf8_lossy(&online.stderr);
    assert!(online.status.success(), "{stderr}");
    let cached_rte = home.join(".cache/stilts/glue/RTE");
    for split in ["train", "dev", "test"] {
        let file = format!("{split}.tsv");
        assert_eq!(
            std::fs::read(cached_rte.join(&file)).unwrap(),
            std::fs::read(glue.join("RTE").join(&file)).unwrap(),
            "{file}"
        );
    }
    let snapshot = home
        .join(".cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots")
        .join(hub_server::COMMIT);
    assert!(snapshot.join("model.safetensors").is_file());
    let requests = hub.requests.lock().unwrap().clone();
    assert_eq!(
        requests
            .iter()
            .filter(|r| *r == "GET /glue/RTE.zip")
            .count(),
        1,
        "{requests:?}"
    );
    let experiment =
        std::fs::read_to_string(tmp.path().join("runs-online/experiment.json")).unwrap();
    assert!(
        experiment.contains(".cache/stilts/glue/RTE"),
        "{experiment}"
    );
    let online_scores = scores(&tmp.path().join("runs-online"));
    drop(hub);

    let on = Path::new("1");
    let offline = quickstart(
        &tmp.path().join("runs-offline"),
        &[("HOME", &home), ("STILTS_OFFLINE", on)],
    );
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert_eq!(scores(&tmp.path().join("runs-offline")), online_scores);

    // Offline with the model cached but no data: the error names the task, where it was
    // looked for and the command that fetches it.
    let empty = tmp.path().join("empty-cache");
    let no_data = quickstart(
        &tmp.path().join("runs-no-data"),
        &[
            ("HOME", &home),
            ("STILTS_CACHE", &empty),
            ("STILTS_OFFLINE", on),
        ],
    );
    let stderr = String::from_utf8_lossy(&no_data.stderr);
    assert!(!no_data.status.success());
    assert!(stderr.contains("phases[0].tasks[0]"), "{stderr}");
    assert!(
        stderr.contains("RTE is not in the stilts cache"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stilts data download --tasks RTE"),
        "{stderr}"
    );
    assert!(!empty.join("glue/RTE").exists());

    // Offline from an empty home: the model is missing, named with how to fetch it.
    let bare = tmp.path().join("bare-home");
    std::fs::create_dir(&bare).unwrap();
    let no_model = quickstart(
        &tmp.path().join("runs-no-model"),
        &[("HOME", &bare), ("STILTS_OFFLINE", on)],
    );
    let stderr = String::from_utf8_lossy(&no_model.stderr);
    assert!(!no_model.status.success());
    assert!(
        stderr.contains("of sentence-transformers/all-MiniLM-L6-v2@main is not in the cache"),
        "{stderr}"
    );
    assert!(stderr.contains("STILTS_OFFLINE=1"), "{stderr}");
    assert!(
        stderr.contains("huggingface-cli download sentence-transformers/all-MiniLM-L6-v2"),
        "{stderr}"
    );
}
