//! `stilts data ...` as a user runs it: the real binary, real files, exit codes and messages.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stilts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stilts"))
        .args(args)
        .env("STILTS_LOG", "warn")
        .output()
        .expect("run stilts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn glue_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GLUE_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("GLUE_DIR is unset: skipping (see README.md)");
    }
    dir
}

#[test]
fn check_real_rte_as_json() {
    let Some(glue) = glue_dir() else { return };
    let glue = glue.to_str().expect("UTF-8 path");
    let out = stilts(&["data", "check", "--task", "RTE", "--dir", glue, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let rows: Vec<(String, u64)> = report["splits"]
        .as_array()
        .expect("splits")
        .iter()
        .map(|s| {
            (
                s["split"].as_str().unwrap().to_owned(),
                s["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [("train", 2490), ("dev", 277), ("test", 3000)];
    assert_eq!(rows, expected.map(|(s, n)| (s.to_owned(), n)));
    let dev_labels = &report["splits"][1]["labels"];
    assert_eq!(
        dev_labels,
        &serde_json::json!([["entailment", 146], ["not_entailment", 131]])
    );
}

#[test]
fn check_prints_a_table_of_rows_and_labels() {
    let Some(glue) = glue_dir() else { return };
    let out = stilts(&[
        "data",
        "check",
        "--task",
        "cola",
        "--dir",
        glue.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in ["CoLA", "8551", "1043", "1063", "1: 721 (69.1%)"] {
        assert!(stdout.contains(needle), "{needle:?} missing from\n{stdout}");
    }
}

#[test]
fn malformed_row_fails_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let rte = dir.path().join("RTE");
    std::fs::create_dir(&rte).unwrap();
    std::fs::write(
        rte.join("dev.tsv"),
        "index\tsentence1\tsentence2\tlabel\n\
         0\tA man.\tA person.\tentailment\n\
         1\tA dog.\tA cat.\tcontradiction\n",
    )
    .unwrap();
    let out = stilts(&["data", "check", "--task", "RTE", "--dir", root]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let expected = format!(
        "{}:3, field `label`: unknown label `contradiction`",
        rte.join("dev.tsv").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let args = [
        "data",
        "check",
        "--task",
        "RTE",
        "--dir",
        root,
        "--skip-malformed",
        "--json",
    ];
    let out = stilts(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["splits"][0]["rows"], 1);
    assert_eq!(report["splits"][0]["skipped_malformed"], 1);
}

#[test]
fn unknown_task_and_missing_dir_are_clear_errors() {
    let out = stilts(&["data", "check", "--task", "RTEE", "--dir", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("RTEE"), "{}", text(&out.stderr));
    let out = stilts(&["data", "check", "--task", "RTE", "--dir", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/no/such/dir: no such directory"));
}

#[test]
fn custom_task_config_typo_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("t.toml");
    let body = "name = \"T\"\ndir = \"T\"\ninput = \"single\"\nlabels = [\"a\"]\nlabelz = 1\n";
    std::fs::write(&toml, body).unwrap();
    let out = stilts(&[
        "data",
        "check",
        "--task-config",
        toml.to_str().unwrap(),
        "--dir",
        ".",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("t.toml") && stderr.contains("labelz"),
        "{stderr}"
    );
}

/// Serves `files` by name on 127.0.0.1 (404 for others) until 30 s pass without a request.
fn serve(files: Vec<(String, Vec<u8>)>) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let port = server.server_addr().to_ip().expect("IP listener").port();
    std::thread::spawn(move || {
        while let Ok(Some(request)) = server.recv_timeout(std::time::Duration::from_secs(30)) {
            let name = request.url().trim_start_matches('/').to_owned();
            let response = match files.iter().find(|(n, _)| *n == name) {
                Some((_, body)) => tiny_http::Response::from_data(body.clone()),
                None => tiny_http::Response::from_string("no such file").with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn download_from_a_local_mirror_into_the_official_layout() {
    let header = "index\tsentence1\tsentence2\tlabel\n";
    let rows = "0\tA man sleeps.\tA person rests.\tentailment\n\
                1\tA dog runs.\tA cat sits.\tnot_entailment\n";
    let labelled = format!("{header}{rows}");
    let zip = zip_of(&[
        ("RTE/train.tsv", &labelled),
        ("RTE/dev.tsv", &labelled),
        ("RTE/test.tsv", "index\tsentence1\tsentence2\n0\tA.\tB.\n"),
    ]);
    let base = serve(vec![("RTE.zip".to_owned(), zip)]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("glue_data");
    let data_str = data.to_str().unwrap();
    let args = [
        "data", "download", "--tasks", "RTE", "--dir", data_str, "--mirror", &base,
    ];
    let out = stilts(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("train 2") && stdout.contains("test 1"),
        "{stdout}"
    );
    // a mirror serving a subset differs from the official counts: reported, not fatal
    assert!(stdout.contains("2490"), "{stdout}");
    let check = stilts(&[
        "data", "check", "--task", "RTE", "--dir", data_str, "--json",
    ]);
    assert!(check.status.success(), "{}", text(&check.stderr));

    let strict = [&args[..], &["--force", "--strict"]].concat();
    let out = stilts(&strict);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("2490"), "{}", text(&out.stderr));
}

#[test]
fn realfake_and_sample_write_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    let lines: String = (0..50)
        .map(|i| format!("the quick brown fox number {i} jumps over the lazy dog .\n"))
        .collect();
    std::fs::write(&corpus, lines).unwrap();
    let out_dir = dir.path().join("RealFake");
    let out_str = out_dir.to_str().unwrap();
    let corpus_str = corpus.to_str().unwrap();
    let args = [
        "data", "realfake", "--corpus", corpus_str, "--out", out_str, "--seed", "3",
    ];
    let out = stilts(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("wrote 46 train and 4 dev examples"),
        "{stdout}"
    );

    let task = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tasks/realfake.toml");
    let manifest = dir.path().join("m.json");
    let out = stilts(&[
        "data",
        "sample",
        "--task-config",
        task.to_str().unwrap(),
        "--dir",
        out_str,
        "--n",
        "20",
        "--seed",
        "1",
        "--stream",
        "2",
        "--out",
        manifest.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(m["ids"].as_array().unwrap().len(), 20);
    assert_eq!(m["population"].as_u64(), Some(46));
    assert_eq!(m["stream"].as_u64(), Some(2));
}
