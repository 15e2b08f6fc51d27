//! `stilts run` / `stilts train` / `stilts eval` as a user runs them, on a tiny random BERT and
//! a synthetic RTE-layout task, including killing a real training process and resuming it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const WORDS: &[&str] = &[
    "the", "cat", "dog", "sat", "on", "mat", "ran", "far", "big", "small", "red", "blue", "a",
    "house", "tree", "bird", "sky", "sun", "moon", "star", "car", "road", "fast", "slow", "up",
    "down", "yes", "no",
];

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

/// vocab.txt and glue/RTE/{train,dev}.tsv of a learnable task.
fn world(root: &Path, train: usize, dev: usize) {
    let mut vocab = String::from("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for w in WORDS {
        writeln!(vocab, "{w}").unwrap();
    }
    std::fs::write(root.join("vocab.txt"), vocab).unwrap();
    let rte = root.join("glue/RTE");
    std::fs::create_dir_all(&rte).unwrap();
    let mut state = 99u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for (name, n) in [("train", train), ("dev", dev)] {
        let mut text = String::from("index\tsentence1\tsentence2\tlabel\n");
        for i in 0..n {
            let a: Vec<&str> = (0..3 + next() % 8).map(|_| WORDS[next() % 26]).collect();
            let yes = next() % 2 == 0;
            let mut b: Vec<&str> = (0..1 + next() % 4).map(|_| WORDS[next() % 26]).collect();
            b.insert(next() % (b.len() + 1), if yes { "yes" } else { "no" });
            let label = if yes { "entailment" } else { "not_entailment" };
            writeln!(text, "{i}\t{}\t{}\t{label}", a.join(" "), b.join(" ")).unwrap();
        }
        std::fs::write(rte.join(format!("{name}.tsv")), text).unwrap();
    }
}

fn experiment(root: &Path, extra_recipe: &str) -> PathBuf {
    let toml = format!(
        r#"
name = "tiny"
seed = 7
[model]
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 64 }}
tokenizer = "{vocab}"
[data]
glue_dir = "{glue}"
[recipe]
batch_size = 8
lr = 2e-3
max_seq_len = 32
{extra_recipe}
[[phases]]
name = "rte"
tasks = ["RTE"]
"#,
        vocab = root.join("vocab.txt").display(),
        glue = root.join("glue").display(),
    );
    let path = root.join("exp.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn result(out: &Path) -> serde_json::Value {
    let path = out.join("00-rte/seed-7/result.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn state(out: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("00-rte/seed-7/checkpoint/state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Starts `stilts run`, waits until a checkpoint satisfies `ready`, kills the process.
fn run_and_kill(exp: &Path, out: &Path, ready: impl Fn(&serde_json::Value) -> bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stilts"))
        .args([
            "run",
            exp.to_str().unwrap(),
            "--output-dir",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .env("STILTS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stilts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if state(out).as_ref().is_some_and(&ready) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("stilts exited ({status}) before the checkpoint to kill at");
        }
        assert!(Instant::now() < deadline, "no checkpoint within 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    // While it trains, `stilts show` sees its heartbeat's process alive.
    let o = stilts(&["show", out.to_str().unwrap(), "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        shown.as_array().unwrap().iter().any(|r| r["live"] == true),
        "{shown}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn killed_run_resumes_to_identical_results() {
    let tmp = tempfile::tempdir().unwrap();
    world(tmp.path(), 320, 60);
    // Kept on its best epoch: the best-epoch model held beside the checkpoint must survive
    // the kills too.
    let exp = experiment(
        tmp.path(),
        "epochs = 4\ncheckpoint_every_steps = 15\nkeep = \"best_epoch\"",
    );
    let exp_s = exp.to_str().unwrap();

    let straight = tmp.path().join("straight");
    let t = Instant::now();
    let o = stilts(&[
        "run",
        exp_s,
        "--output-dir",
        straight.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    println!("uninterrupted run: {:?}", t.elapsed());

    let killed = tmp.path().join("killed");
    // Killed after a mid-epoch checkpoint, then after the first epoch-end checkpoint of the
    // resumed process.
    run_and_kill(&exp, &killed, |s| s["group_in_epoch"].as_u64() > Some(0));
    assert!(!killed.join("00-rte/seed-7/result.json").exists());
    run_and_kill(&exp, &killed, |s| {
        s["next_epoch"].as_u64() >= Some(1) && s["group_in_epoch"].as_u64() == Some(0)
    });
    assert!(!killed.join("00-rte/seed-7/result.json").exists());
    // `stilts show` lists the interrupted run with the epochs it finished.
    let o = stilts(&["show", killed.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown[0]["state"], "in_progress");
    assert_eq!(shown[0]["phase"], "00-rte");
    // Killed: its heartbeat stays behind, naming a process that is gone.
    assert_eq!(shown[0]["live"], false, "{shown}");
    assert!(shown[0]["last_seen_s"].as_f64().is_some());
    let o = stilts(&["show", killed.to_str().unwrap()]);
    assert!(
        text(&o.stdout).contains("stopped (its process gone"),
        "{}",
        text(&o.stdout)
    );
    assert!(!shown[0]["dev_scores"].as_array().unwrap().is_empty());
    let o = stilts(&[
        "run",
        exp_s,
        "--output-dir",
        killed.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let log = std::fs::read_to_string(killed.join("stilts.log")).unwrap();
    assert!(
        log.contains("resuming from") && log.contains("epoch done"),
        "{log}"
    );
    let (a, b) = (result(&straight), result(&killed));
    assert_eq!(b["resumed"], true);
    assert_eq!(a["history"], b["history"]);
    assert_eq!(a["dev_predictions"], b["dev_predictions"]);
    assert_eq!(a["weights_sha256"], b["weights_sha256"]);
    assert_eq!(a["steps"], b["steps"]);
    assert_eq!(a["kept_epoch"], b["kept_epoch"]);
    let kept = a["kept_epoch"].as_u64().unwrap() as usize;
    println!("kept epoch {kept} of 4");
    assert!(!killed.join("00-rte/seed-7/best-epoch").exists());

    // Once finished, the same command reuses the result.
    let o = stilts(&[
        "run",
        exp_s,
        "--output-dir",
        killed.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success());
    assert_eq!(result(&killed)["history"], a["history"]);

    // `stilts show` on the finished run: its epochs' scores, the kept one, as result.json says.
    let o = stilts(&["show", straight.to_str().unwrap(), "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown.as_array().unwrap().len(), 1);
    assert_eq!(shown[0]["state"], "finished");
    assert_eq!(shown[0]["kept_epoch"], a["kept_epoch"]);
    assert_eq!(shown[0]["dev_score"], a["dev_score"]);
    let scores: Vec<f64> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dev_score"].as_f64().unwrap())
        .collect();
    assert_eq!(shown[0]["dev_scores"], serde_json::json!(scores));
    let o = stilts(&["show", straight.join("00-rte").to_str().unwrap()]);
    let table = text(&o.stdout);
    assert!(
        table.contains("00-rte") && table.contains("finished") && table.contains('*'),
        "{table}"
    );
    let o = stilts(&["show", tmp.path().join("glue").to_str().unwrap()]);
    assert!(!o.status.success() && text(&o.stderr).contains("holds no runs"));

    // `stilts eval` on the final model reproduces the kept epoch's dev accuracy.
    let o = stilts(&[
        "eval",
        "--model",
        straight.join("00-rte/seed-7/model").to_str().unwrap(),
        "--task",
        "RTE",
        "--tokenizer",
        tmp.path().join("vocab.txt").to_str().unwrap(),
        "--glue-dir",
        tmp.path().join("glue").to_str().unwrap(),
        "--max-seq-len",
        "32",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let scores: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kept = a["history"][kept - 1].clone();
    assert_eq!(scores["score"], kept["dev"][0]["score"]);
}

#[test]
fn train_from_flags_and_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    world(tmp.path(), 64, 16);
    let out = tmp.path().join("flags");
    let o = stilts(&[
        "train",
        "--task",
        "RTE",
        "--random",
        "32,2,2,64",
        "--tokenizer",
        tmp.path().join("vocab.txt").to_str().unwrap(),
        "--glue-dir",
        tmp.path().join("glue").to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-seq-len",
        "32",
        "--keep",
        "best_epoch",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("phase RTE: best seed 1"));
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("00-RTE/seed-1/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["kept_epoch"], 1);
    let exp = std::fs::read_to_string(out.join("experiment.json")).unwrap();
    assert!(exp.contains("\"keep\": \"best_epoch\""), "{exp}");

    // A typo'd key is rejected before training, naming the file and the key.
    let exp = experiment(tmp.path(), "epoch = 3");
    let o = stilts(&[
        "run",
        exp.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("exp.toml") && err.contains("unknown field `epoch`"),
        "{err}"
    );
}

/// `--model org/name` (and `[model] pretrained = "org/name"`) fetches through the Hugging Face
/// cache; here offline, from a cache laid out as `huggingface_hub` leaves it.
#[test]
fn train_from_a_hub_id() {
    let tmp = tempfile::tempdir().unwrap();
    world(tmp.path(), 64, 16);
    let cache = tmp.path().join("hf-cache");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = cache.join("models--stilts-test--tiny-bert");
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures/tiny-bert");
    for file in ["config.json", "model.safetensors", "vocab.txt"] {
        std::fs::copy(fixture.join(file), snapshot.join(file)).unwrap();
    }
    let train = |model: &str, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_stilts"))
            .args(["train", "--task", "RTE", "--model", model, "--glue-dir"])
            .arg(tmp.path().join("glue"))
            .args(["--epochs", "1", "--max-seq-len", "32", "--output-dir"])
            .arg(out)
            .arg("--quiet")
            .env("STILTS_LOG", "warn")
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HUB_CACHE", &cache)
            .output()
            .expect("run stilts")
    };

    let out = tmp.path().join("hub");
    let o = train("stilts-test/tiny-bert", &out);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("experiment.json")).unwrap())
            .unwrap();
    let used = exp.to_string();
    assert!(used.contains(&snapshot.display().to_string()), "{used}");
    assert!(out.join("00-RTE/seed-1/result.json").exists());
    // The saved model carries the hub model's tokenizer.
    assert!(out.join("00-RTE/seed-1/model/vocab.txt").exists());

    // Not cached, offline: the error names the key, the id and the cache folder.
    let o = train("stilts-test/absent", &tmp.path().join("absent"));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    for want in [
        "`model.pretrained`",
        "stilts-test/absent",
        "HF_HUB_OFFLINE",
        "models--stilts-test--absent",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    // Neither a directory nor a hub id.
    let o = train("no/such/dir", &tmp.path().join("none"));
    let err = text(&o.stderr);
    assert!(
        err.contains("no/such/dir is neither a model directory nor a hub id"),
        "{err}"
    );
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// A two-phase STILTs run killed with SIGKILL at seeded random moments (anywhere: inside a
/// step, a checkpoint write, a model or result write, between phases), resumed each time,
/// ends with every run's losses, dev scores, predictions and weights identical to an
/// uninterrupted run, and no temporary file left behind.
#[test]
fn killed_at_random_moments_a_two_phase_run_ends_as_if_uninterrupted() {
    let tmp = tempfile::tempdir().unwrap();
    world(tmp.path(), 320, 40);
    let exp = tmp.path().join("two.toml");
    let one = experiment(tmp.path(), "epochs = 3\ncheckpoint_every_steps = 4");
    let text = std::fs::read_to_string(one).unwrap()
        + "[[phases]]\nname = \"rte-again\"\ntasks = [\"RTE\"]\nhead = \"reuse\"\n";
    std::fs::write(&exp, text).unwrap();
    let run = |out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_stilts"))
            .args(["run", exp.to_str().unwrap(), "--output-dir"])
            .arg(out)
            .arg("--quiet")
            .env("STILTS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn stilts")
    };
    let straight = tmp.path().join("straight");
    let started = Instant::now();
    assert!(run(&straight).wait().unwrap().success());
    let whole = started.elapsed();

    let killed = tmp.path().join("killed");
    let mut state = 0x5eed_u64;
    let mut kills = 0;
    // Each process is killed after a seeded share of an uninterrupted run's time (it resumes
    // with less left to do, so some finish before their kill: then the loop ends).
    for _ in 0..16 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let share = 0.03 + 0.17 * ((state >> 11) as f64 / (1u64 << 53) as f64);
        let mut child = run(&killed);
        std::thread::sleep(whole.mul_f64(share));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    assert!(run(&killed).wait().unwrap().success());
    println!("{kills} kills; an uninterrupted run takes {whole:?}");
    assert!(kills >= 5, "too few kills landed ({kills})");

    for phase in ["00-rte", "01-rte-again"] {
        let read = |out: &Path| -> serde_json::Value {
            let path = out.join(phase).join("seed-7/result.json");
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let (a, b) = (read(&straight), read(&killed));
        for key in [
            "history",
            "loss_curve",
            "dev_predictions",
            "weights_sha256",
            "steps",
            "kept_epoch",
        ] {
            assert_eq!(a[key], b[key], "{phase} {key}");
        }
    }
    let leftovers: Vec<String> = files_under(&killed)
        .into_iter()
        .filter(|f| f.contains("tmp") || f.contains("checkpoint") || f.contains(".old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let mut a = files_under(&straight);
    let mut b = files_under(&killed);
    a.retain(|f| !f.ends_with("stilts.log"));
    b.retain(|f| !f.ends_with("stilts.log"));
    assert_eq!(a, b);
}

/// A write that fails (a full disk, injected through `STILTS_FAIL_WRITE`) stops the run with an
/// error naming what failed, leaves the previous checkpoint in place, and the run resumes from
/// it to the results of an uninterrupted run.
#[test]
fn a_failed_write_stops_the_run_and_it_resumes_from_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    world(tmp.path(), 160, 40);
    let exp = experiment(tmp.path(), "epochs = 3\ncheckpoint_every_steps = 8");
    let exp_s = exp.to_str().unwrap();
    let straight = tmp.path().join("straight");
    let o = stilts(&[
        "run",
        exp_s,
        "--output-dir",
        straight.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let failed = tmp.path().join("failed");
    let args = [
        "run",
        exp_s,
        "--output-dir",
        failed.to_str().unwrap(),
        "--quiet",
    ];
    let o = Command::new(env!("CARGO_BIN_EXE_stilts"))
        .args(args)
        .env("STILTS_LOG", "warn")
        .env("STILTS_FAIL_WRITE", "seed-7/checkpoint@3")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot write")
            && err.contains("checkpoint")
            && err.contains("No space left on device"),
        "{err}"
    );
    // The second checkpoint is the last good one; no temporary directory is taken for it.
    let s = state(&failed).expect("the last good checkpoint");
    assert_eq!(s["step"], 16);
    assert!(!failed.join("00-rte/seed-7/result.json").exists());

    let o = stilts(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (a, b) = (result(&straight), result(&failed));
    assert_eq!(b["resumed"], true);
    assert_eq!(a["history"], b["history"]);
    assert_eq!(a["dev_predictions"], b["dev_predictions"]);
    assert_eq!(a["weights_sha256"], b["weights_sha256"]);
    assert!(!failed.join("00-rte/seed-7/checkpoint.tmp").exists());
}
