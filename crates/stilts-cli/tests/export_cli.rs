//! `stilts export glue|validate` as a user runs them, on `result.json` files written by hand
//! (no training): a complete bundle at the official test sizes exports, zips and validates; a
//! missing AX, a corrupted file and partial exports give the errors a user needs.

use std::path::Path;
use std::process::{Command, Output};

use stilts_train::export::submission_specs;
use stilts_train::results::{RunResult, SplitPredictions, write_json};

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

fn run_result(test_predictions: Vec<SplitPredictions>) -> RunResult {
    RunResult {
        phase: "p".into(),
        seed: 1,
        history: vec![],
        kept_epoch: 0,
        dev_score: 0.5,
        baseline: 0.5,
        task_baselines: Default::default(),
        degenerate: false,
        data: vec![],
        manifests: vec![],
        weights_sha256: String::new(),
        dev_predictions: vec![],
        test_predictions,
        steps: 0,
        train_examples_seen: 0,
        wall_s: 0.0,
        examples_per_s: 0.0,
        resumed: false,
        loss_curve: Vec::new(),
        epoch_times: Vec::new(),
        sizes: None,
    }
}

/// Predictions for `rows` test examples, cycling through the task's labels.
fn predictions(task: &str, split: &str, labels: &[String], rows: usize) -> SplitPredictions {
    SplitPredictions {
        task: task.into(),
        split: split.into(),
        ids: (0..rows).map(|i| i.to_string()).collect(),
        predictions: (0..rows)
            .map(|i| {
                if labels.is_empty() {
                    format!("{:.3}", (i % 60) as f64 / 10.0) // up to 5.9: clipped to 5
                } else {
                    labels[i % labels.len()].clone()
                }
            })
            .collect(),
        logits: vec![],
    }
}

/// Two run directories: MNLI (with AX predictions) and everything else.
fn write_runs(root: &Path, with_ax: bool) -> (String, String) {
    let mut mnli = Vec::new();
    let mut rest = Vec::new();
    for s in submission_specs() {
        let p = predictions(&s.task.name, &s.split, s.task.labels(), s.rows);
        match s.task.name.as_str() {
            "MNLI" => mnli.push(p),
            "AX" if with_ax => mnli.push(p),
            "AX" => {}
            _ => rest.push(p),
        }
    }
    let a = root.join("mnli/seed-1");
    let b = root.join("rest/seed-1");
    for (dir, preds) in [(&a, mnli), (&b, rest)] {
        std::fs::create_dir_all(dir).unwrap();
        write_json(&dir.join("result.json"), &run_result(preds)).unwrap();
    }
    (a.display().to_string(), b.display().to_string())
}

#[test]
fn full_bundle_exports_zips_and_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = write_runs(tmp.path(), true);
    let out = tmp.path().join("sub");
    let zip_path = tmp.path().join("out/glue.zip");
    let o = stilts(&[
        "export",
        "glue",
        "--runs",
        &a,
        &b,
        "--out",
        out.to_str().unwrap(),
        "--zip",
        zip_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("QQP.tsv: 390965 rows"), "{stdout}");

    let o = stilts(&["export", "validate", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("valid GLUE submission"));

    let rte = std::fs::read_to_string(out.join("RTE.tsv")).unwrap();
    assert!(rte.starts_with("index\tprediction\n0\tentailment\n1\tnot_entailment\n"));
    let stsb = std::fs::read_to_string(out.join("STS-B.tsv")).unwrap();
    assert!(stsb.contains("\n59\t5.000\n"), "clipped");

    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(names.len(), 11);
    assert!(names.contains(&"AX.tsv".to_owned()));
    let mut ax = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("AX.tsv").unwrap(), &mut ax).unwrap();
    assert_eq!(ax, std::fs::read_to_string(out.join("AX.tsv")).unwrap());
}

#[test]
fn missing_ax_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = write_runs(tmp.path(), false);
    let out = tmp.path().join("sub");
    let o = stilts(&[
        "export",
        "glue",
        "--runs",
        &a,
        &b,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("AX.tsv"), "{err}");
    assert!(err.contains("with the MNLI model"), "{err}");
    assert!(err.contains("--mnli-model"), "{err}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn validate_names_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = write_runs(tmp.path(), true);
    let out = tmp.path().join("sub");
    let o = stilts(&[
        "export",
        "glue",
        "--runs",
        &a,
        &b,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let dir = out.to_str().unwrap();
    let edit = |file: &str, f: &dyn Fn(String) -> String| {
        let p = out.join(file);
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(t)).unwrap();
    };
    // A bad label on line 3 of RTE.tsv.
    edit("RTE.tsv", &|t| t.replacen("1\tnot_entailment", "1\t1", 1));
    // A duplicate index on line 4 of CoLA.tsv.
    edit("CoLA.tsv", &|t| t.replacen("\n2\t", "\n0\t", 1));
    // A wrong header in MNLI-m.tsv.
    edit("MNLI-m.tsv", &|t| {
        t.replacen("index\tprediction", "id\tlabel", 1)
    });
    // One row short in WNLI.tsv (145 rows: the file ends on line 146).
    edit("WNLI.tsv", &|t| {
        let mut lines: Vec<&str> = t.lines().collect();
        lines.pop();
        lines.join("\n") + "\n"
    });
    let o = stilts(&["export", "validate", dir]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    for want in [
        "RTE.tsv:3: prediction: `1` is not one of entailment, not_entailment",
        "CoLA.tsv:4: index: 0 already on line 2",
        "MNLI-m.tsv:1: header:",
        "WNLI.tsv:146: 145 rows, expected 146",
        "4 problem(s)",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

#[test]
fn partial_export_of_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rte/seed-3");
    std::fs::create_dir_all(&dir).unwrap();
    let labels = vec!["entailment".to_owned(), "not_entailment".to_owned()];
    let result = run_result(vec![predictions("RTE", "test", &labels, 3)]);
    write_json(&dir.join("result.json"), &result).unwrap();
    let out = tmp.path().join("sub");
    let result_json = dir.join("result.json");
    let args = [
        "export",
        "glue",
        "--runs",
        result_json.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--partial",
    ];
    // 3 rows is not the official 3000: the built-in validation refuses it...
    let o = stilts(&args);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("RTE.tsv:4: 3 rows, expected 3000"),
        "{}",
        text(&o.stderr)
    );
    // ... unless skipped.
    let o = stilts(&[&args[..], &["--no-validate"]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(out.join("RTE.tsv")).unwrap(),
        "index\tprediction\n0\tentailment\n1\tnot_entailment\n2\tentailment\n"
    );
    let only = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(only, 1);
}

/// The real path: a tiny random BERT trained on a synthetic MNLI with `predict_test = true`,
/// exported with MNLI-mm (runs record test_matched only) and AX predicted by that model.
#[test]
fn trained_mnli_run_exports_mnli_and_ax() {
    trained_mnli_run_exports(
        "random = { hidden_size = 16, num_hidden_layers = 1, num_attention_heads = 2, intermediate_size = 32, max_position_embeddings = 32 }",
        None,
    );
}

/// The same with a tiny random GPT over the BPE tables of the GPT fixture; the export reads
/// the saved model's own tokenizer (no `--tokenizer`).
#[test]
fn trained_gpt_mnli_run_exports_mnli_and_ax() {
    let bpe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures/tiny-gpt");
    trained_mnli_run_exports(
        "encoder = \"gpt\"\nrandom = { n_embd = 16, n_layer = 1, n_head = 2, n_positions = 32 }",
        Some(&bpe),
    );
}

/// The same with a tiny random ELMo: the tokenizer is an ELMo options file (its characters),
/// which travels with the saved model and is what the export's AX predictions read.
#[test]
fn trained_elmo_mnli_run_exports_mnli_and_ax() {
    let options = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../stilts-models/tests/fixtures/tiny-elmo/options.json");
    trained_mnli_run_exports(
        "encoder = \"elmo\"\nrandom = { projection_dim = 8, cell_size = 16, n_layers = 1, filters = [[1, 8], [2, 8]], pool_dim = 16 }",
        Some(&options),
    );
}

/// Trains `model` (the `[model]` keys but the tokenizer: the vocab.txt of the synthetic
/// world unless `tokenizer` names another) on MNLI and exports MNLI-m, MNLI-mm and AX.
fn trained_mnli_run_exports(model: &str, tokenizer: Option<&Path>) {
    use std::fmt::Write as _;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let words = [
        "the", "cat", "dog", "sat", "on", "mat", "yes", "no", "maybe",
    ];
    let mut vocab = String::from("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for w in words {
        writeln!(vocab, "{w}").unwrap();
    }
    std::fs::write(root.join("vocab.txt"), vocab).unwrap();
    let labels = ["contradiction", "entailment", "neutral"];
    let mnli = root.join("glue/MNLI");
    std::fs::create_dir_all(&mnli).unwrap();
    let row = |i: usize| format!("{} {}", words[i % 6], words[(i * 7) % 6]);
    for (name, n, labelled) in [
        ("train", 24, true),
        ("dev_matched", 6, true),
        ("dev_mismatched", 6, true),
        ("test_matched", 5, false),
        ("test_mismatched", 4, false),
    ] {
        let mut t = String::from("index\tsentence1\tsentence2");
        t.push_str(if labelled { "\tgold_label\n" } else { "\n" });
        for i in 0..n {
            write!(t, "{i}\t{}\t{} {}", row(i), row(i + 1), words[6 + i % 3]).unwrap();
            if labelled {
                write!(t, "\t{}", labels[i % 3]).unwrap();
            }
            t.push('\n');
        }
        std::fs::write(mnli.join(format!("{name}.tsv")), t).unwrap();
    }
    let diag = root.join("glue/diagnostic");
    std::fs::create_dir_all(&diag).unwrap();
    let mut t = String::from("index\tsentence1\tsentence2\n");
    for i in 0..7 {
        writeln!(t, "{i}\t{}\t{}", row(i + 2), row(i)).unwrap();
    }
    std::fs::write(diag.join("diagnostic.tsv"), t).unwrap();
    let toml = format!(
        r#"
name = "tiny_mnli"
seed = 3
output_dir = "{out}"
[model]
{model}
tokenizer = "{vocab}"
[data]
glue_dir = "{glue}"
[recipe]
batch_size = 8
epochs = 1
max_seq_len = 16
[[phases]]
name = "mnli"
tasks = ["MNLI"]
predict_test = true
"#,
        out = root.join("runs").display(),
        vocab = tokenizer.unwrap_or(&root.join("vocab.txt")).display(),
        glue = root.join("glue").display(),
    );
    std::fs::write(root.join("exp.toml"), toml).unwrap();
    let o = stilts(&["run", root.join("exp.toml").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = root.join("runs/00-mnli/seed-3");
    let out = root.join("sub");
    let vocab = root.join("vocab.txt");
    let tokenizer_args = match tokenizer {
        None => vec!["--tokenizer", vocab.to_str().unwrap()],
        Some(_) => vec![],
    };
    let o = stilts(
        &[
            &[
                "export",
                "glue",
                "--runs",
                run.to_str().unwrap(),
                "--mnli-model",
                run.to_str().unwrap(),
            ][..],
            &tokenizer_args,
            &[
                "--glue-dir",
                root.join("glue").to_str().unwrap(),
                "--max-seq-len",
                "16",
                "--out",
                out.to_str().unwrap(),
                "--partial",
                "--no-validate",
            ],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv"]);
    for (file, rows) in [("MNLI-m.tsv", 5), ("MNLI-mm.tsv", 4), ("AX.tsv", 7)] {
        let t = std::fs::read_to_string(out.join(file)).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "index\tprediction");
        assert_eq!(lines.len(), rows + 1, "{file}");
        for (i, l) in lines[1..].iter().enumerate() {
            let (idx, label) = l.split_once('\t').unwrap();
            assert_eq!(idx, i.to_string());
            assert!(labels.contains(&label), "{file}: {l}");
        }
    }
}
