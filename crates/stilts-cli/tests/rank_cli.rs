//! `stilts rank` as a user runs it, on all-MiniLM-L6-v2 and the shared GLUE data (skips when
//! `STILTS_MINILM_DIR` or `GLUE_DIR` is unset).

use std::process::{Command, Output};

use serde_json::Value;

fn stilts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stilts"))
        .args(args)
        .env("STILTS_LOG", "warn")
        .env("HF_HUB_OFFLINE", "1")
        .env("STILTS_OFFLINE", "1")
        .output()
        .expect("run stilts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn minilm() -> Option<String> {
    let dir = std::env::var("STILTS_MINILM_DIR").ok()?;
    std::env::var_os("GLUE_DIR")?;
    Some(dir)
}

fn rank_json(model: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "rank",
        "--model",
        model,
        "--target",
        "RTE",
        "--candidates",
        "MRPC,SST-2,CoLA",
        "--max-examples",
        "40",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = stilts(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("rank --json prints JSON")
}

/// The rankings without what depends on the machine (seconds).
fn without_seconds(mut v: Value) -> Value {
    let strip = |o: &mut Value| {
        if let Some(o) = o.as_object_mut() {
            o.remove("seconds");
        }
    };
    strip(&mut v["target"]);
    for c in v["candidates"].as_array_mut().unwrap() {
        strip(c);
    }
    for m in v["methods"].as_array_mut().unwrap() {
        strip(m);
    }
    v
}

#[test]
fn ranks_candidates_with_each_method_reproducibly() {
    let Some(model) = minilm() else {
        eprintln!("skipped: STILTS_MINILM_DIR or GLUE_DIR unset");
        return;
    };
    let v = rank_json(&model, &[]);
    assert_eq!(v["target"]["task"], "RTE");
    assert_eq!(v["target"]["examples"], 40);
    assert_eq!(v["target"]["train_size"], 2490);
    assert_eq!(v["dim"], 384);
    assert_eq!(v["pooling"], "mean");
    assert!(v["target_logme"].as_f64().unwrap().is_finite());
    let methods: Vec<&str> = v["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["semb", "size", "random"]);
    let order = |method: usize| -> Vec<String> {
        v["methods"][method]["ranking"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["candidate"].as_str().unwrap().to_owned())
            .collect()
    };
    // The size baseline is the training splits' sizes on disk.
    assert_eq!(order(1), ["SST-2", "CoLA", "MRPC"]);
    let mut semb = order(0);
    semb.sort();
    assert_eq!(semb, ["CoLA", "MRPC", "SST-2"]);
    for e in v["methods"][0]["ranking"].as_array().unwrap() {
        let s = e["score"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&s), "a cosine: {s}");
    }
    // Another batch size and a second run: the same features, so the same scores.
    let again = rank_json(&model, &["--batch-size", "7"]);
    let (a, b) = (without_seconds(v.clone()), without_seconds(again));
    for (x, y) in a["methods"][0]["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["methods"][0]["ranking"].as_array().unwrap())
    {
        assert_eq!(x["candidate"], y["candidate"]);
        let (x, y) = (x["score"].as_f64().unwrap(), y["score"].as_f64().unwrap());
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    assert_eq!(a["methods"][1], b["methods"][1]);
    assert_eq!(a["methods"][2], b["methods"][2]);
    // A table for people.
    let out = stilts(&[
        "rank",
        "--model",
        &model,
        "--target",
        "RTE",
        "--candidates",
        "MRPC,SST-2",
        "--methods",
        "size",
        "--max-examples",
        "16",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("size (rank)"), "{table}");
    assert!(table.contains("SST-2 > MRPC"), "{table}");
}

/// Every encoder family ranks with every pooling, mean included: ELMo's token states are its
/// words, not its character input, and the mean is over its word mask.
#[test]
fn gpt_and_elmo_rank_too() {
    if std::env::var_os("GLUE_DIR").is_none() {
        eprintln!("skipped: GLUE_DIR unset");
        return;
    }
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures");
    // (model, width of its token states, width of its summary)
    for (model, dims) in [("tiny-gpt", [32, 32]), ("tiny-elmo", [16, 512])] {
        let dir = fixtures.join(model).display().to_string();
        for (pooling, dim) in ["mean", "summary"].into_iter().zip(dims) {
            let v = rank_json(&dir, &["--methods", "semb", "--pooling", pooling]);
            assert_eq!(v["dim"], dim, "{model} {pooling}");
            let ranking = v["methods"][0]["ranking"].as_array().unwrap();
            assert_eq!(ranking.len(), 3, "{model} {pooling}");
            for e in ranking {
                let s = e["score"].as_f64().unwrap();
                assert!(
                    (-1.0..=1.0).contains(&s),
                    "{model} {pooling}: a cosine: {s}"
                );
            }
        }
    }
}

#[test]
fn bad_requests_are_named() {
    let model = std::env::var("STILTS_MINILM_DIR").unwrap_or_else(|_| "unused".into());
    let out = stilts(&[
        "rank",
        "--model",
        &model,
        "--target",
        "RTE",
        "--candidates",
        "MRPC,RTE",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("RTE is the target: a task is never its own intermediate"),
        "{}",
        text(&out.stderr)
    );
    let out = stilts(&[
        "rank",
        "--model",
        &model,
        "--target",
        "RTE",
        "--candidates",
        "MRPC",
        "--methods",
        "magic",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("unknown method `magic` (known: semb, esm-logme, logme-tuned, size, random)"),
        "{}",
        text(&out.stderr)
    );
    let out = stilts(&[
        "rank",
        "--model",
        &model,
        "--target",
        "RTE",
        "--candidates",
        "NOPE",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("NOPE"), "{}", text(&out.stderr));
}

/// The tuned-encoder methods, with the base encoder standing in for each tuned one (no
/// intermediate-trained MiniLM is committed): LogME of its target features is then the floor
/// itself, and the fitted maps are saved, found again and usable alone.
#[test]
fn tuned_encoders_and_embedding_space_maps() {
    let Some(model) = minilm() else {
        eprintln!("skipped: STILTS_MINILM_DIR or GLUE_DIR unset");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let esm_dir = tmp.path().join("esm");
    let esm_dir = esm_dir.to_str().unwrap();
    let tuned = format!("MRPC={model},SST-2={model},CoLA={model}");
    let extra = [
        "--tuned",
        &tuned,
        "--methods",
        "esm-logme,logme-tuned",
        "--esm-dir",
        esm_dir,
    ];
    let v = rank_json(&model, &extra);
    let floor = v["target_logme"].as_f64().unwrap();
    let scores = |v: &Value, method: usize| -> Vec<(String, f64)> {
        v["methods"][method]["ranking"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["candidate"].as_str().unwrap().to_owned(),
                    e["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(v["methods"][1]["method"], "logme-tuned");
    for (_, s) in scores(&v, 1) {
        assert!((s - floor).abs() < 1e-9, "{s} vs the floor {floor}");
    }
    let esm = scores(&v, 0);
    assert_eq!(esm.len(), 3);
    let paths: Vec<String> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["esm"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(paths.len(), 3, "{v}");
    for p in &paths {
        assert!(p.starts_with(esm_dir), "{p}");
        assert!(std::path::Path::new(p).join("model.safetensors").is_file());
    }
    // Found again: the same maps, the same scores.
    let again = rank_json(&model, &extra);
    assert_eq!(scores(&again, 0), esm);
    // A saved map alone, without the tuned encoder.
    let mrpc = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["task"] == "MRPC")
        .unwrap()["esm"]
        .as_str()
        .unwrap()
        .to_owned();
    let given = format!("MRPC={mrpc}");
    let out = stilts(&[
        "rank",
        "--model",
        &model,
        "--target",
        "RTE",
        "--candidates",
        "MRPC",
        "--max-examples",
        "40",
        "--methods",
        "esm-logme",
        "--esm",
        &given,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alone: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mrpc_score = esm.iter().find(|(c, _)| c == "MRPC").unwrap().1;
    assert_eq!(scores(&alone, 0), [("MRPC".to_owned(), mrpc_score)]);
    // Without either, the error says what to pass.
    let out = stilts(&[
        "rank",
        "--model",
        &model,
        "--target",
        "RTE",
        "--candidates",
        "MRPC",
        "--max-examples",
        "40",
        "--methods",
        "esm-logme",
        "--esm-dir",
        esm_dir,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "esm-logme needs the encoder after intermediate training on MRPC: --tuned MRPC=DIR"
        ),
        "{}",
        text(&out.stderr)
    );
}

/// `--matrix`: each method judged against measured transfer (a made-up matrix here; the real
/// one comes from `cargo xtask reproduce transfer`).
#[test]
fn judged_against_a_transfer_matrix() {
    let Some(model) = minilm() else {
        eprintln!("skipped: STILTS_MINILM_DIR or GLUE_DIR unset");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let matrix = tmp.path().join("transfer.csv");
    let mut text = String::from(
        "encoder,regime,intermediate,intermediate_task,target,gain,ci_low,ci_high,p_win,baseline,stilts,status\n",
    );
    for (name, stilts) in [("MRPC", 0.60), ("SST-2", 0.55), ("CoLA", 0.58)] {
        let gain = stilts - 0.56;
        text.push_str(&format!(
            "MiniLM,1k,{name},{name},RTE,{gain},{gain},{gain},0.5,0.56,{stilts},done\n"
        ));
    }
    text.push_str("MiniLM,1k,RTE,RTE,RTE,,,,,,,same task\n");
    text.push_str("MiniLM,1k,MRPC,MRPC,STS-B,0.1,0,0.2,0.9,0.7,0.8,done\n");
    std::fs::write(&matrix, text).unwrap();
    let path = matrix.to_str().unwrap();
    let v = rank_json(&model, &["--methods", "size,random", "--matrix", path]);
    let e = &v["evaluation"][0];
    assert_eq!(e["target"], "RTE");
    assert_eq!(e["encoder"], "MiniLM");
    assert_eq!(
        e["candidates"],
        serde_json::json!(["MRPC", "SST-2", "CoLA"])
    );
    let size = &e["methods"][0];
    assert_eq!(size["method"], "size");
    // Size ranks SST-2 > CoLA > MRPC; measured MRPC > CoLA > SST-2.
    assert!(
        (size["spearman"].as_f64().unwrap() + 1.0).abs() < 1e-12,
        "{size}"
    );
    assert!((size["regret_at_1"].as_f64().unwrap() - 100.0 * 0.05 / 0.6).abs() < 1e-9);
    assert!(size["regret_at_3"].as_f64().unwrap().abs() < 1e-12);
    // Without restart scores (a matrix written before they were kept): no intervals.
    assert!(size["intervals"].is_null());
    // With them: intervals over restarts around the point estimates.
    let mut text = String::from(
        "encoder,regime,intermediate,intermediate_task,target,gain,ci_low,ci_high,p_win,baseline,stilts,restart_scores,status\n",
    );
    for (name, restarts) in [
        ("MRPC", "0.60;0.52"),
        ("SST-2", "0.55;0.50"),
        ("CoLA", "0.58;0.57"),
    ] {
        let best = restarts.split(';').next().unwrap();
        text.push_str(&format!(
            "MiniLM,1k,{name},{name},RTE,0,0,0,0.5,0.56,{best},{restarts},done\n"
        ));
    }
    std::fs::write(&matrix, text).unwrap();
    let v = rank_json(&model, &["--methods", "size", "--matrix", path]);
    let ci = &v["evaluation"][0]["methods"][0]["intervals"];
    assert_eq!(ci["resamples"], 1000);
    let [lo, hi] = [0, 1].map(|i| ci["regret_at_1"][i].as_f64().unwrap());
    let point = 100.0 * 0.05 / 0.6;
    assert!(lo <= point + 1e-9 && point <= hi + 1e-9, "{ci}");
    // A matrix that is not one is named with its line.
    std::fs::write(&matrix, "encoder,regime\nMiniLM\n").unwrap();
    let out = stilts(&[
        "rank",
        "--model",
        &model,
        "--target",
        "RTE",
        "--candidates",
        "MRPC",
        "--matrix",
        path,
    ]);
    assert!(!out.status.success());
    assert!(text_of(&out).contains("transfer.csv:"), "{}", text_of(&out));
}

fn text_of(out: &Output) -> String {
    text(&out.stderr)
}

/// `stilts select` on a small budget: the ranking's best candidate and the baseline trained,
/// the winner by dev score; a second invocation resumes (nothing retrained, the same scores).
#[test]
fn select_trains_the_top_candidate_and_the_baseline() {
    let Some(model) = minilm() else {
        eprintln!("skipped: STILTS_MINILM_DIR or GLUE_DIR unset");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("select");
    let args = [
        "select",
        "--model",
        &model,
        "--target",
        "RTE",
        "--candidates",
        "MRPC,SST-2,CoLA",
        "--top-k",
        "1",
        "--restarts",
        "1",
        "--target-examples",
        "48",
        "--intermediate-examples",
        "48",
        "--intermediate-epochs",
        "1",
        "--set",
        "recipe.max_seq_len=32",
        "--set",
        "recipe.epochs=1",
        "--max-examples",
        "32",
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--quiet",
        "--json",
    ];
    let first = stilts(&args);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let read = || -> Value {
        let text = std::fs::read_to_string(out_dir.join("selection.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let s = read();
    assert_eq!(s["target"], "RTE");
    assert_eq!(s["ranking"]["method"], "semb");
    let trained = s["trained"].as_array().unwrap();
    assert_eq!(trained.len(), 2);
    assert_eq!(trained[0]["condition"], "none");
    assert_eq!(
        trained[1]["condition"],
        s["ranking"]["ranking"][0]["candidate"]
    );
    let score = |t: &Value| t["best_dev_score"].as_f64().unwrap();
    let winner = if score(&trained[1]) > score(&trained[0]) {
        &trained[1]
    } else {
        &trained[0]
    };
    assert_eq!(s["winner"], winner["condition"]);
    assert!(s["estimated_all_seconds"].as_f64().unwrap() > 0.0);
    for t in trained {
        let dir = std::path::Path::new(t["output_dir"].as_str().unwrap());
        assert!(dir.join("summary.json").is_file(), "{}", dir.display());
    }
    // Again: resumed from the finished runs.
    let second = stilts(&args);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let again = read();
    for (a, b) in trained.iter().zip(again["trained"].as_array().unwrap()) {
        assert_eq!(score(a), score(b));
        assert_eq!(a["train_s"], b["train_s"]);
        assert!(b["wall_s"].as_f64().unwrap() < a["wall_s"].as_f64().unwrap());
    }
    assert_eq!(again["estimated_all_seconds"], s["estimated_all_seconds"]);
}
