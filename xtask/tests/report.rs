//! `cargo xtask report`: tables, figure, degenerate counts and the paired bootstrap, on a
//! synthetic grid whose runs are made up here (no training).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stilts_data::{BuiltinTask, LoadOptions, Metric};
use xtask::grid::plan::{RunKind, RunMeta};
use xtask::grid::registry::Outcome;
use xtask::grid::spec::{LoadedGrid, parse};
use xtask::grid::{Regime, RunRow};
use xtask::report::bootstrap::{Outputs, ScoreSpec, paired_bootstrap};
use xtask::report::{ReportError, ReportOptions, figure, render_all, render_all_with};

const GRID: &str = r#"
name = "toy"
seed = 7
# Run order; the report orders columns as the paper (GLUE) does.
targets = ["RTE", "QQP", "CoLA", "STS-B", "MRPC"]
regimes = ["full", "1k"]
restarts = 3

[[encoders]]
name = "BERT"
pretrained = "bert-base-uncased"

[[intermediates]]
name = "MNLI"
task = "MNLI"

[[intermediates]]
name = "QQP"
task = "QQP"

[[multitask]]
a = "MNLI"
b = "RTE"
"#;

fn grid(text: &str) -> LoadedGrid {
    parse(Path::new("configs/grids/toy.toml"), text, None).unwrap()
}

/// The made-up score of a run: a per-target base, a per-condition bonus, 0.1 less in the 1k
/// regime, and restart offsets 0, +0.03, -0.03 (so restart 1 is always best, the mean is the
/// restart-0 score and the sample std is 0.03).
fn score(condition: &str, target: &str, regime: Regime, restart: usize) -> f64 {
    let targets = ["CoLA", "MRPC", "QQP", "STS-B", "RTE"];
    let t = targets.iter().position(|x| *x == target).unwrap() as f64;
    let bonus = match condition {
        "none" => 0.0,
        "MNLI" => 0.04,
        "QQP" => 0.02,
        "{MNLI,RTE}" => 0.01,
        "{MNLI,RTE}->RTE" => 0.03,
        other => panic!("{other}"),
    };
    let regime = if regime == Regime::Full { 0.0 } else { -0.1 };
    0.5 + 0.05 * t + bonus + regime + [0.0, 0.03, -0.03][restart]
}

/// Metrics of a task around its score: the first metric 0.02 above, the second 0.02 below.
fn metrics(target: &str, score: f64) -> BTreeMap<String, f64> {
    let task = BuiltinTask::parse(target).unwrap().task();
    let mut m = BTreeMap::new();
    match task.metrics.as_slice() {
        [one] => {
            m.insert(one.name().to_string(), score);
        }
        [a, b] => {
            m.insert(a.name().to_string(), score + 0.02);
            m.insert(b.name().to_string(), score - 0.02);
        }
        other => panic!("{other:?}"),
    }
    m
}

#[allow(clippy::too_many_arguments)]
fn row(
    kind: RunKind,
    condition: &str,
    target: Option<&str>,
    regime: Regime,
    restart: usize,
    dev_score: f64,
    degenerate: bool,
    result_file: PathBuf,
) -> RunRow {
    let id = format!(
        "{}-{}-{}-{restart}",
        condition,
        target.unwrap_or("-"),
        regime.label()
    );
    RunRow {
        run_id: id.clone(),
        meta: RunMeta {
            grid: "toy".into(),
            kind,
            method: "full".into(),
            encoder: "BERT".into(),
            condition: condition.into(),
            target: target.map(str::to_string),
            regime,
            restart,
            seed: 7 + restart as u64,
            scale: None,
            phase: target.unwrap_or(condition).into(),
        },
        depends_on: Vec::new(),
        run_dir: PathBuf::from("runs").join(&id),
        outcome: Some(Outcome {
            dev_score,
            metrics: target.map(|t| metrics(t, dev_score)).unwrap_or_default(),
            baseline: 0.5,
            degenerate,
            train_examples: target.map(|t| match regime {
                Regime::Full => 1000 * (t.len() + 1),
                Regime::Examples(n) => n,
            }),
            wall_s: 1.0,
            examples_per_s: 10.0,
            epoch_times: Vec::new(),
            sizes: None,
            result_file,
        }),
    }
}

/// Every run of the toy grid, except: CoLA × MNLI (full) never finished, RTE × QQP (full)
/// restart 2 never finished. Degenerate: CoLA baseline 1k restarts 0 and 2, RTE baseline 1k
/// restart 2.
fn toy_rows() -> Vec<RunRow> {
    let mut rows = Vec::new();
    for m in ["MNLI", "QQP"] {
        rows.push(row(
            RunKind::Intermediate,
            m,
            None,
            Regime::Full,
            0,
            0.8,
            false,
            PathBuf::from("nowhere.json"),
        ));
    }
    for regime in [Regime::Full, Regime::Examples(1000)] {
        for target in ["CoLA", "MRPC", "QQP", "STS-B", "RTE"] {
            let mut conds = vec![("none", RunKind::Target), ("MNLI", RunKind::Target)];
            if target != "QQP" {
                conds.push(("QQP", RunKind::Target));
            }
            if target == "RTE" {
                conds.push(("{MNLI,RTE}", RunKind::Multitask));
                conds.push(("{MNLI,RTE}->RTE", RunKind::Target));
            }
            for (c, kind) in conds {
                for restart in 0..3 {
                    let full = regime == Regime::Full;
                    if full && target == "CoLA" && c == "MNLI" {
                        continue;
                    }
                    if full && target == "RTE" && c == "QQP" && restart == 2 {
                        continue;
                    }
                    let degenerate = !full
                        && c == "none"
                        && ((target == "CoLA" && restart != 1)
                            || (target == "RTE" && restart == 2));
                    rows.push(row(
                        kind,
                        c,
                        Some(target),
                        regime,
                        restart,
                        score(c, target, regime, restart),
                        degenerate,
                        PathBuf::from("nowhere.json"),
                    ));
                }
            }
        }
    }
    rows
}

fn no_bootstrap(g: &LoadedGrid) -> ReportOptions {
    ReportOptions {
        bootstrap: 0,
        ..ReportOptions::from_grid(g)
    }
}

/// The cells of the markdown table row whose label is `label`.
fn md_row(md: &str, label: &str) -> Vec<String> {
    let line = md
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row `{label}` in\n{md}"));
    line.trim_matches('|')
        .split(" | ")
        .map(|c| c.trim().to_string())
        .collect()
}

fn p(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

#[test]
fn tables_follow_the_paper() {
    let g = grid(GRID);
    let rows = toy_rows();
    let dir = tempfile::tempdir().unwrap();
    let summary = render_all_with(&g, &rows, dir.path(), &no_bootstrap(&g)).unwrap();
    let md = std::fs::read_to_string(dir.path().join("table-full.md")).unwrap();

    // Header: Avg, A.Ex, then the targets in the paper's order with the paper's metrics.
    let header = md.lines().find(|l| l.starts_with("| Model |")).unwrap();
    assert_eq!(
        header,
        "| Model | Avg | A.Ex | CoLA MCC | MRPC F1/acc | QQP acc/F1 | STS-B P/S | RTE acc |"
    );
    // Rows in grid order: size, baseline, intermediates, multitask, Best of Each.
    let labels: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Model"))
        .map(|l| l[2..].split(" | ").next().unwrap())
        .collect();
    assert_eq!(
        &labels[..7],
        [
            "*Training set size*",
            "BERT",
            "BERT → MNLI",
            "BERT → QQP",
            "BERT → {MNLI,RTE}",
            "BERT → {MNLI,RTE} → RTE",
            "*Best of Each*"
        ]
    );

    let full = Regime::Full;
    // Best restart (1) on dev; two-metric tasks show both metrics in the task's order.
    let base = md_row(&md, "BERT");
    assert_eq!(base[3], p(score("none", "CoLA", full, 1)));
    let mrpc = score("none", "MRPC", full, 1);
    assert_eq!(base[4], format!("{}/{}", p(mrpc + 0.02), p(mrpc - 0.02)));
    assert_eq!(base[7], p(score("none", "RTE", full, 1)));
    // Avg over the five task scores; A.Ex without QQP.
    let best: Vec<f64> = ["CoLA", "MRPC", "QQP", "STS-B", "RTE"]
        .iter()
        .map(|t| score("none", t, full, 1))
        .collect();
    assert_eq!(base[1], p(best.iter().sum::<f64>() / 5.0));
    assert_eq!(base[2], p((best.iter().sum::<f64>() - best[2]) / 4.0));

    // The QQP intermediate on the QQP target: the baseline's number, struck through; the Avg
    // uses it.
    let qqp = md_row(&md, "BERT → QQP");
    let q = score("none", "QQP", full, 1);
    assert_eq!(qqp[5], format!("~~{}/{}~~", p(q + 0.02), p(q - 0.02)));
    // Missing: CoLA × MNLI never ran -> a dash, and MNLI's Avg is missing too.
    let mnli = md_row(&md, "BERT → MNLI");
    assert_eq!(mnli[3], "—");
    assert_eq!(mnli[1], "—");
    assert_eq!(mnli[7], p(score("MNLI", "RTE", full, 1)));
    // Multitask rows only have the RTE column.
    let multi = md_row(&md, "BERT → {MNLI,RTE} → RTE");
    assert_eq!(multi[1..7], ["", "", "", "", "", ""]);
    assert_eq!(multi[7], p(score("{MNLI,RTE}->RTE", "RTE", full, 1)));
    assert!(md.contains("4 of 48 target runs missing"), "{md}");

    // Best of Each: per column the best condition (CoLA: QQP, since MNLI is missing; RTE:
    // MNLI over {MNLI,RTE}->RTE), never struck through.
    let boe = md_row(&md, "*Best of Each*");
    assert_eq!(boe[3], p(score("QQP", "CoLA", full, 1)));
    assert_eq!(boe[7], p(score("MNLI", "RTE", full, 1)));
    let q_best = score("MNLI", "QQP", full, 1);
    assert_eq!(boe[5], format!("{}/{}", p(q_best + 0.02), p(q_best - 0.02)));
    assert!(!boe.iter().any(|c| c.contains("~~")));

    // Training-set sizes from the runs.
    let size = md_row(&md, "*Training set size*");
    assert_eq!(size[3..], ["5k", "5k", "4k", "6k", "4k"]);
    let md1k = std::fs::read_to_string(dir.path().join("table-1k.md")).unwrap();
    assert_eq!(md_row(&md1k, "*Training set size*")[3], "1k");

    // Restart statistics: mean ± sample std (min–max, n).
    let stats_part = &md[md.find("## Across restarts").unwrap()..];
    let rte_none = md_row(stats_part, "BERT");
    let m = score("none", "RTE", full, 0);
    assert_eq!(
        rte_none[5],
        format!("{} ± 3.0 ({}–{}, n=3)", p(m), p(m - 0.03), p(m + 0.03))
    );
    let rte_qqp = md_row(stats_part, "BERT → QQP");
    assert!(rte_qqp[5].ends_with("n=2)"), "{rte_qqp:?}");
    assert!(md_row(stats_part, "BERT → QQP")[3].starts_with("~~"));

    // LaTeX: booktabs, struck through with \sout, escaped braces.
    let tex = std::fs::read_to_string(dir.path().join("table-full.tex")).unwrap();
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule"));
    assert!(tex.contains(&format!("\\sout{{{}/{}}}", p(q + 0.02), p(q - 0.02))));
    assert!(tex.contains("BERT $\\rightarrow$ \\{MNLI,RTE\\} $\\rightarrow$ RTE"));
    assert!(tex.contains(" & --- & "));

    // CSV: one line per encoder × condition × target with a cell × (metrics + score).
    let csv = std::fs::read_to_string(dir.path().join("table-full.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    // none, MNLI, QQP over all five targets: (2 + 3 + 3 + 3 + 2) each; multitask: RTE (2).
    assert_eq!(lines.len(), 1 + 3 * 13 + 2 * 2, "{csv}");
    assert!(lines[0].starts_with("regime,encoder,condition,target,metric,best,mean,std"));
    let rte_base: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("full,BERT,none,RTE,accuracy,"))
        .unwrap()
        .split(',')
        .collect();
    let best_rte = score("none", "RTE", full, 1);
    assert!((rte_base[5].parse::<f64>().unwrap() - best_rte).abs() < 1e-12);
    assert!((rte_base[6].parse::<f64>().unwrap() - (best_rte - 0.03)).abs() < 1e-12);
    assert!((rte_base[7].parse::<f64>().unwrap() - 0.03).abs() < 1e-12);
    assert_eq!(rte_base[10..], ["3", "3", "false"]);
    let missing = lines
        .iter()
        .find(|l| l.starts_with("full,BERT,MNLI,CoLA,mcc,"))
        .unwrap();
    assert_eq!(*missing, "full,BERT,MNLI,CoLA,mcc,,,,,,0,3,false");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("full,BERT,\"{MNLI,RTE}->RTE\",RTE,score,"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("full,BERT,QQP,QQP,f1,") && l.ends_with(",3,3,true"))
    );

    // Summary.
    assert_eq!((summary.planned, summary.finished), (96, 92));
    assert!(
        summary
            .markdown
            .contains("92 of 96 target runs finished (4 missing)")
    );
    for f in [
        "table-full.md",
        "table-full.tex",
        "table-full.csv",
        "table-1k.md",
        "figure1.svg",
        "degenerate.md",
        "degenerate.csv",
        "bootstrap.md",
        "bootstrap.csv",
    ] {
        assert!(
            summary.files.contains(&dir.path().join(f)),
            "{f} not in {:?}",
            summary.files
        );
    }
    // Nothing temporary left behind.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name}");
    }
}

#[test]
fn degenerate_counts() {
    let g = grid(GRID);
    let rows = toy_rows();
    let dir = tempfile::tempdir().unwrap();
    render_all_with(&g, &rows, dir.path(), &no_bootstrap(&g)).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("degenerate.csv")).unwrap();
    assert!(csv.contains("target,1k,BERT,none,CoLA,2,3,3\n"), "{csv}");
    assert!(csv.contains("target,1k,BERT,none,RTE,1,3,3\n"));
    assert!(csv.contains("target,1k,BERT,MNLI,RTE,0,3,3\n"));
    assert!(csv.contains("target,full,BERT,QQP,RTE,0,2,3\n"));
    assert!(csv.contains("intermediate,full,BERT,MNLI,,0,1,1\n"));
    // Substituted cells are the baseline's runs, not counted twice.
    assert!(!csv.contains("BERT,QQP,QQP"));
    let md = std::fs::read_to_string(dir.path().join("degenerate.md")).unwrap();
    assert!(md.contains("3 of 92 finished target runs"), "{md}");
    let part = &md[md.find("## `1k`").unwrap()..];
    assert_eq!(md_row(part, "BERT")[1], "2/3");
    let full = &md[md.find("## `full`").unwrap()..];
    assert_eq!(md_row(full, "BERT → QQP")[5], "0/2 (of 3)");
    assert_eq!(md_row(full, "BERT → MNLI")[1], "0/0 (of 3)");
}

#[test]
fn figure_svg_and_png() {
    let g = grid(GRID);
    let rows = toy_rows();
    let dir = tempfile::tempdir().unwrap();
    let summary = render_all_with(&g, &rows, dir.path(), &no_bootstrap(&g)).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("figure1.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for t in [
        "CoLA",
        "STS-B",
        "RTE",
        "BERT: full training data",
        "BERT: 1k training examples",
    ] {
        assert!(svg.contains(t), "{t} missing from the SVG");
    }
    assert!(svg.contains("STILTs: MNLI"));
    let png = dir.path().join("figure1.png");
    match figure::register_font(&figure::font_candidates()) {
        Ok(_) => {
            let bytes = std::fs::read(&png).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
        }
        Err(e) => {
            assert!(e.to_string().contains("fonts-dejavu-core"));
            assert!(!png.exists());
        }
    }
    // Without a font the SVG is still written and the PNG is a warning naming the package.
    let dir2 = tempfile::tempdir().unwrap();
    let opts = ReportOptions {
        fonts: Vec::new(),
        ..no_bootstrap(&g)
    };
    let summary = render_all_with(&g, &rows, dir2.path(), &opts).unwrap();
    assert!(dir2.path().join("figure1.svg").exists());
    assert!(!dir2.path().join("figure1.png").exists());
    assert_eq!(summary.warnings.len(), 1);
    assert!(summary.warnings[0].contains("apt-get install fonts-dejavu-core"));
    assert!(matches!(
        figure::register_font(&[]),
        Err(ReportError::NoFont { .. })
    ));
}

#[test]
fn partial_and_empty_grids_render() {
    let g = grid(GRID);
    let dir = tempfile::tempdir().unwrap();
    let summary = render_all_with(&g, &[], dir.path(), &no_bootstrap(&g)).unwrap();
    assert_eq!(summary.finished, 0);
    let md = std::fs::read_to_string(dir.path().join("table-full.md")).unwrap();
    assert!(md.contains("48 of 48 target runs missing"));
    assert_eq!(md_row(&md, "BERT")[3], "—");
    assert_eq!(md_row(&md, "*Training set size*")[3], "—");
    let md1k = std::fs::read_to_string(dir.path().join("table-1k.md")).unwrap();
    assert_eq!(md_row(&md1k, "*Training set size*")[3], "≤1k");
    assert!(
        std::fs::read_to_string(dir.path().join("figure1.svg"))
            .unwrap()
            .contains("no finished runs")
    );
}

// ---------------------------------------------------------------------------------------------
// Bootstrap.

/// A `Metric` from its serialized name.
fn metric(name: &str) -> Metric {
    serde_json::from_value(serde_json::Value::String(name.into())).unwrap()
}

fn outputs(v: &serde_json::Value, k: usize) -> Outputs {
    let a = v.as_array().unwrap();
    if k == 0 {
        Outputs::Scores(
            a.iter()
                .map(|x| x.as_str().unwrap().parse::<f64>().unwrap())
                .collect(),
        )
    } else {
        Outputs::Classes(a.iter().map(|x| x.as_u64().unwrap() as usize).collect())
    }
}

/// Against `scripts/bootstrap_reference.py`: point estimates exactly, the bootstrap statistics
/// within a few Monte Carlo standard errors (different generators, so different resamples).
#[test]
fn bootstrap_matches_the_numpy_reference() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bootstrap.json"),
    )
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let k = case["num_classes"].as_u64().unwrap() as usize;
        let spec = ScoreSpec {
            metrics: case["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| metric(m.as_str().unwrap()))
                .collect(),
            num_classes: k,
        };
        let gold = outputs(&case["gold"], k);
        let base = outputs(&case["baseline"], k);
        let stilts = outputs(&case["stilts"], k);
        let f = |key: &str| case[key].as_f64().unwrap();
        let i = paired_bootstrap(&spec, &gold, &base, &stilts, 3000, 11).unwrap();
        assert!((i.baseline - f("baseline_score")).abs() < 1e-12, "{name}");
        assert!((i.stilts - f("stilts_score")).abs() < 1e-12, "{name}");
        assert!((i.diff - f("diff")).abs() < 1e-12, "{name}");
        let sd = f("sd");
        // Standard errors with 3000 resamples: mean ~0.02 sd, percentiles ~0.05 sd.
        assert!(
            (i.mean - f("mean")).abs() < 0.1 * sd,
            "{name}: mean {} vs {}",
            i.mean,
            f("mean")
        );
        assert!(
            (i.low - f("low")).abs() < 0.25 * sd,
            "{name}: low {} vs {}",
            i.low,
            f("low")
        );
        assert!(
            (i.high - f("high")).abs() < 0.25 * sd,
            "{name}: high {} vs {}",
            i.high,
            f("high")
        );
        assert!(
            (i.win - f("win")).abs() < 0.04,
            "{name}: win {} vs {}",
            i.win,
            f("win")
        );
        assert!(i.low <= i.diff.max(i.mean) && i.mean.min(i.diff) <= i.high);
        // The same seed gives the same interval, another seed another one; identical systems
        // give exactly zero.
        let small = |seed| paired_bootstrap(&spec, &gold, &base, &stilts, 100, seed).unwrap();
        assert_eq!(small(5), small(5));
        assert_ne!(small(5), small(6));
        let same = paired_bootstrap(&spec, &gold, &base, &base, 200, 3).unwrap();
        assert_eq!(
            (same.diff, same.mean, same.low, same.high, same.win),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
    }
}

const RTE_GRID: &str = r#"
name = "rte"
seed = 3
targets = ["RTE"]
restarts = 2

[[encoders]]
name = "BERT"
pretrained = "bert-base-uncased"

[[intermediates]]
name = "MNLI"
task = "MNLI"

[[intermediates]]
name = "QQP"
task = "QQP"

[[intermediates]]
name = "SNLI"
task = "SNLI"

[report]
bootstrap = 300
"#;

const LABELS: [&str; 2] = ["entailment", "not_entailment"];

/// Writes `<dir>/glue/RTE/dev.tsv` with `n` examples (ids `100..`), gold label `i % 3 == 0`.
fn rte_dev(dir: &Path, n: usize) -> (PathBuf, Vec<String>, Vec<usize>) {
    let task_dir = dir.join("glue/RTE");
    std::fs::create_dir_all(&task_dir).unwrap();
    let mut text = "index\tsentence1\tsentence2\tlabel\n".to_string();
    let mut ids = Vec::new();
    let mut gold = Vec::new();
    for i in 0..n {
        let g = usize::from(i % 3 == 0);
        text.push_str(&format!("{}\tA {i}.\tB {i}.\t{}\n", 100 + i, LABELS[g]));
        ids.push((100 + i).to_string());
        gold.push(g);
    }
    let path = task_dir.join("dev.tsv");
    std::fs::write(&path, text).unwrap();
    (path, ids, gold)
}

/// A `result.json` with RTE dev predictions `pred` for `ids` (as logits, or as label names only).
fn result_file(path: &Path, dev: &Path, sha: &str, ids: &[String], pred: &[usize], logits: bool) {
    let preds: Vec<&str> = pred.iter().map(|&p| LABELS[p]).collect();
    let lg: Vec<Vec<f32>> = if logits {
        pred.iter()
            .map(|&p| {
                if p == 0 {
                    vec![0.9, -0.2]
                } else {
                    vec![-0.1, 0.4]
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    use stilts_schema::results::{DataFileInfo, RunResult, SplitPredictions};
    let file = |split: &str, path: String, sha256: &str, examples| DataFileInfo {
        task: "RTE".into(),
        split: split.into(),
        path,
        sha256: sha256.into(),
        examples,
    };
    let doc = RunResult {
        phase: "rte".into(),
        seed: 3,
        history: Vec::new(),
        kept_epoch: 0,
        dev_score: 0.0,
        baseline: 0.0,
        task_baselines: Default::default(),
        degenerate: false,
        data: vec![
            file("train", "/nonexistent/RTE/train.tsv".into(), "x", 10),
            file("dev", dev.display().to_string(), sha, ids.len()),
        ],
        manifests: Vec::new(),
        weights_sha256: String::new(),
        dev_predictions: vec![SplitPredictions {
            task: "RTE".into(),
            split: "dev".into(),
            ids: ids.to_vec(),
            predictions: preds.iter().map(|p| p.to_string()).collect(),
            logits: lg,
        }],
        test_predictions: Vec::new(),
        steps: 0,
        train_examples_seen: 0,
        wall_s: 0.0,
        examples_per_s: 0.0,
        resumed: false,
        loss_curve: Vec::new(),
        epoch_times: Vec::new(),
        sizes: None,
    };
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string(&doc).unwrap()).unwrap();
}

fn acc(pred: &[usize], gold: &[usize]) -> f64 {
    pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / gold.len() as f64
}

#[test]
fn bootstrap_from_result_files() {
    let g = grid(RTE_GRID);
    let tmp = tempfile::tempdir().unwrap();
    let (dev, ids, gold) = rte_dev(tmp.path(), 60);
    let sha = BuiltinTask::Rte
        .task()
        .load(dev.parent().unwrap(), "dev", LoadOptions::default())
        .unwrap()
        .sha256;
    // Baseline: wrong on every 4th example. MNLI: wrong on every 10th. QQP: the baseline's
    // predictions (given as label names, ids in reverse order). SNLI: the dev file's hash
    // differs from the one recorded.
    let base_pred: Vec<usize> = gold
        .iter()
        .enumerate()
        .map(|(i, &g)| if i % 4 == 0 { 1 - g } else { g })
        .collect();
    let mnli_pred: Vec<usize> = gold
        .iter()
        .enumerate()
        .map(|(i, &g)| if i % 10 == 0 { 1 - g } else { g })
        .collect();
    let runs = tmp.path().join("runs");
    let mut rows = Vec::new();
    for (cond, pred, logits, sha) in [
        ("none", &base_pred, true, sha.as_str()),
        ("MNLI", &mnli_pred, true, sha.as_str()),
        ("QQP", &base_pred, false, sha.as_str()),
        ("SNLI", &mnli_pred, true, "0000"),
    ] {
        for restart in 0..2 {
            let file = runs.join(format!("{cond}-{restart}/result.json"));
            // Restart 1 is the best on dev; restart 0's file holds garbage predictions, so
            // reading it would show.
            if restart == 1 {
                if cond == "QQP" {
                    let rev_ids: Vec<String> = ids.iter().rev().cloned().collect();
                    let rev_pred: Vec<usize> = pred.iter().rev().copied().collect();
                    result_file(&file, &dev, sha, &rev_ids, &rev_pred, logits);
                } else {
                    result_file(&file, &dev, sha, &ids, pred, logits);
                }
            } else {
                result_file(&file, &dev, sha, &ids, &vec![0; ids.len()], true);
            }
            let s = acc(pred, &gold) - if restart == 0 { 0.2 } else { 0.0 };
            let mut r = row(
                RunKind::Target,
                cond,
                Some("RTE"),
                Regime::Full,
                restart,
                s,
                false,
                file,
            );
            r.meta.grid = "rte".into();
            rows.push(r);
        }
    }
    let out = tmp.path().join("reports");
    let summary = render_all(&g, &rows, &out).unwrap();
    let csv = std::fs::read_to_string(out.join("bootstrap.csv")).unwrap();
    let line = |cond: &str| -> Vec<String> {
        csv.lines()
            .find(|l| l.starts_with(&format!("full,BERT,RTE,{cond},")))
            .unwrap_or_else(|| panic!("{cond} not in {csv}"))
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let mnli = line("MNLI");
    assert_eq!(mnli[4], "none-RTE-full-1");
    assert_eq!(mnli[5], "MNLI-RTE-full-1");
    assert_eq!(mnli[6..8], ["60", "300"]);
    let v = |s: &str| s.parse::<f64>().unwrap();
    assert!((v(&mnli[8]) - acc(&base_pred, &gold)).abs() < 1e-12);
    assert!((v(&mnli[9]) - acc(&mnli_pred, &gold)).abs() < 1e-12);
    assert!((v(&mnli[10]) - (acc(&mnli_pred, &gold) - acc(&base_pred, &gold))).abs() < 1e-12);
    assert!(v(&mnli[12]) <= v(&mnli[10]) && v(&mnli[10]) <= v(&mnli[13]));
    assert!(v(&mnli[14]) > 0.9, "{mnli:?}");
    assert_eq!(mnli[15], "ok");
    // Identical predictions: a zero interval, whatever the order and form of the file.
    let qqp = line("QQP");
    assert_eq!(qqp[10..15], ["0", "0", "0", "0", "0"], "{qqp:?}");
    // A changed dev file is refused, by name, and reported as a warning.
    let snli = csv.lines().find(|l| l.contains(",SNLI,")).unwrap();
    assert!(
        snli.contains("failed: ") && snli.contains("changed since the run"),
        "{snli}"
    );
    let no_font = figure::register_font(&figure::font_candidates()).is_err();
    // Without a font: figure1.png and the transfer PNGs.
    assert_eq!(summary.warnings.len(), 1 + 2 * usize::from(no_font));
    assert!(summary.warnings.iter().any(|w| w.contains("SNLI")));
    let md = std::fs::read_to_string(out.join("bootstrap.md")).unwrap();
    assert!(md.contains("300 resamples"));
    let r = md_row(&md, "BERT → MNLI");
    assert_eq!(r[1], "RTE");
    assert_eq!(r[2], "60");

    // The transfer matrix: the same comparisons, one row per intermediate. MNLI gains 15
    // points (0.90 vs 0.75 accuracy); QQP's predictions are the baseline's; SNLI failed.
    let matrix = std::fs::read_to_string(out.join("transfer-full.md")).unwrap();
    let mnli = md_row(&matrix, "MNLI");
    assert!(mnli[1].starts_with("+15.0 ["), "{mnli:?}");
    let (low, high) = (v(&line("MNLI")[12]), v(&line("MNLI")[13]));
    let signed = |x: f64| {
        let t = format!("{:.1}", x * 100.0);
        if t.starts_with('-') || t == "0.0" {
            t
        } else {
            format!("+{t}")
        }
    };
    assert_eq!(
        mnli[1],
        format!("+15.0 [{}, {}]", signed(low), signed(high))
    );
    assert_eq!(md_row(&matrix, "QQP")[1], "0.0 [0.0, 0.0]");
    assert_eq!(md_row(&matrix, "SNLI")[1], "…");
    assert!(matrix.contains("2 of 3 cells"), "{matrix}");
    let cells = std::fs::read_to_string(out.join("transfer.csv")).unwrap();
    assert!(cells.starts_with(
        "encoder,regime,intermediate,intermediate_task,target,gain,ci_low,ci_high,p_win,baseline,stilts,restart_scores,status\n"
    ));
    // What `stilts rank --matrix` reads back.
    let read = stilts_schema::transfer::read_csv(&out.join("transfer.csv")).unwrap();
    assert_eq!(read.len(), 3);
    let base = acc(&base_pred, &gold);
    assert_eq!(read[0].intermediate, "MNLI");
    assert_eq!(read[0].baseline, Some(base));
    let (gain, stilts) = read[0].result().unwrap();
    assert!((gain - 0.15).abs() < 1e-12 && (stilts - 0.9).abs() < 1e-12);
    assert_eq!(read[1].result(), Some((0.0, base)));
    // Both restarts of MNLI -> RTE: the garbage-predicting restart 0 and the best, restart 1.
    let restarts = read[0].restarts().unwrap();
    assert_eq!(restarts.len(), 2);
    assert!(restarts.contains(&stilts) && restarts.iter().any(|&r| r < stilts));
    assert_eq!(read[2].intermediate, "SNLI");
    assert!(read[2].result().is_none() && read[2].status.contains("changed since the run"));
    let svg = std::fs::read_to_string(out.join("transfer-full.svg")).unwrap();
    assert!(
        svg.contains("+15.0") && svg.contains("MNLI") && svg.contains("SNLI"),
        "{svg}"
    );
    assert_eq!(out.join("transfer-full.png").is_file(), !no_font);
}

/// A transfer matrix marks the cell whose intermediate is the target, and cells without a
/// comparison.
#[test]
fn transfer_matrix_cells() {
    use xtask::report::ReportModel;
    use xtask::report::matrix::{self, Cell};
    let g = grid(GRID);
    let rows = toy_rows();
    let model = ReportModel::new(&g, &rows);
    let matrices = matrix::build(&model, &[]);
    // One per encoder and regime.
    assert_eq!(matrices.len(), 2);
    let m = &matrices[0];
    assert_eq!(m.rows, ["MNLI", "QQP"]);
    assert_eq!(m.cols, ["CoLA", "MRPC", "QQP", "STS-B", "RTE"]);
    assert_eq!(m.cells[1][2], Cell::Same);
    assert_eq!(m.cells[0][2], Cell::Missing("no comparison".into()));
    assert_eq!(m.progress(), (0, 9));
    let svg = matrix::svg(m).unwrap();
    assert!(svg.contains("same task"), "{svg}");
    // No intermediate, no matrix.
    let plain = grid(
        r#"
name = "plain"
targets = ["RTE"]
restarts = 1
[[encoders]]
name = "BERT"
pretrained = "bert-base-uncased"
"#,
    );
    assert!(matrix::build(&ReportModel::new(&plain, &[]), &[]).is_empty());
}

/// The paper's Table 3: multitask rows of several targets share a row each.
#[test]
fn multitask_rows_group_by_intermediate() {
    let g = grid(
        r#"
name = "t3"
targets = ["MRPC", "RTE"]
restarts = 1
[[encoders]]
name = "BERT"
pretrained = "bert-base-uncased"
[[intermediates]]
name = "MNLI"
task = "MNLI"
[[multitask]]
a = "MNLI"
b = "RTE"
[[multitask]]
a = "MNLI"
b = "MRPC"
"#,
    );
    let mut rows = Vec::new();
    for target in ["MRPC", "RTE"] {
        for (c, kind) in [
            ("none", RunKind::Target),
            ("MNLI", RunKind::Target),
            (&*format!("{{MNLI,{target}}}"), RunKind::Multitask),
        ] {
            let s = score(
                if kind == RunKind::Multitask {
                    "{MNLI,RTE}"
                } else {
                    c
                },
                target,
                Regime::Full,
                0,
            );
            rows.push(row(
                kind,
                c,
                Some(target),
                Regime::Full,
                0,
                s,
                false,
                PathBuf::new(),
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    render_all_with(&g, &rows, dir.path(), &no_bootstrap(&g)).unwrap();
    let md = std::fs::read_to_string(dir.path().join("table-full.md")).unwrap();
    let multi = md_row(&md, "BERT → {MNLI,target}");
    let mrpc = score("{MNLI,RTE}", "MRPC", Regime::Full, 0);
    assert_eq!(
        multi[1],
        p((mrpc + score("{MNLI,RTE}", "RTE", Regime::Full, 0)) / 2.0)
    );
    assert_eq!(multi[2], format!("{}/{}", p(mrpc + 0.02), p(mrpc - 0.02)));
    assert_eq!(multi[3], p(score("{MNLI,RTE}", "RTE", Regime::Full, 0)));
    // {MNLI,target} -> target never ran: dashes in both columns.
    assert_eq!(
        md_row(&md, "BERT → {MNLI,target} → target")[2..],
        ["—", "—"]
    );
    assert!(md.contains("2 of 8 target runs missing"), "{md}");
    // The CSV names the registry's conditions.
    let csv = std::fs::read_to_string(dir.path().join("table-full.csv")).unwrap();
    assert!(
        csv.contains("full,BERT,\"{MNLI,MRPC}->MRPC\",MRPC,f1,,,,,,0,1,false\n"),
        "{csv}"
    );
    assert!(csv.contains("full,BERT,\"{MNLI,RTE}\",RTE,accuracy,"));
}
