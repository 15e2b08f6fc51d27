//! The local executor as a user drives it: `cargo xtask reproduce` on a small real grid (a tiny
//! random BERT on synthetic GLUE-layout tasks, trained by the real `stilts` binary), with a
//! worker killed mid-run (re-submitted, resumed from its checkpoint), the driver itself killed
//! (no worker left behind; the next driver resumes), and a re-run that starts nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xtask::exec::attempts;
use xtask::grid::{Plan, Registry, RunKind, spec};

mod common;

use common::{stilts_bin, world};

fn grid_file(root: &Path) -> PathBuf {
    let text = format!(
        r#"
name = "tiny"
seed = 3
targets = ["RTE"]
restarts = 2
predict_test = true
recipe = {{ batch_size = 8, lr = 2e-3, max_seq_len = 32, epochs = 3, checkpoint_every_steps = 4 }}
intermediate_recipe = {{ epochs = 1 }}
data = {{ glue_dir = "{glue}" }}

[[encoders]]
name = "Tiny"
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 64 }}
tokenizer = "{vocab}"

[[intermediates]]
name = "SST-2"
task = "SST-2"
"#,
        glue = root.join("glue").display(),
        vocab = root.join("vocab.txt").display(),
    );
    let path = root.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn driver(grid: &Path, out: &Path, stilts: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["reproduce"])
        .arg(grid)
        .arg("--output-dir")
        .arg(out)
        .arg("--stilts")
        .arg(stilts)
        .env("STILTS_LOG", "warn");
    cmd
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid>; its state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
        .unwrap_or(false)
}

fn kill(pid: u32) {
    let ok = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {pid}");
}

fn worker_pid(run_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(run_dir.join("worker.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "driver failed:\n{text}");
    text
}

fn resumed(plan: &Plan, id: &str) -> bool {
    let node = plan.node(id).unwrap();
    let result = plan
        .run_dir(id)
        .join(node.phase_dir())
        .join(format!("seed-{}", node.meta.seed))
        .join("result.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result).unwrap()).unwrap();
    v["resumed"].as_bool().unwrap()
}

#[test]
fn killed_workers_and_drivers_resume_and_finished_runs_are_never_rerun() {
    let Some(stilts) = stilts_bin() else {
        panic!("no stilts binary: run through `cargo test --workspace` or set STILTS_BIN");
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    world(root, 320, 40);
    let grid_path = grid_file(root);
    let out = root.join("out");
    let grid = spec::load(&grid_path, None).unwrap();
    let plan = Plan::expand(&grid, Some(&out)).unwrap();
    assert_eq!(plan.nodes.len(), 1 + 2 * 2);
    let targets: Vec<String> = plan
        .nodes
        .iter()
        .filter(|n| n.meta.kind == RunKind::Target)
        .map(|n| n.id.clone())
        .collect();

    // 1. Kill the worker of the first target run once it has checkpointed: the driver
    // re-submits it and it resumes.
    let checkpoint = |id: &str| {
        let node = plan.node(id).unwrap();
        plan.run_dir(id)
            .join(node.phase_dir())
            .join(format!("seed-{}", node.meta.seed))
            .join("checkpoint")
    };
    let first = plan.run_dir(&targets[0]);
    let mut child = driver(&grid_path, &out, &stilts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "a checkpoint of the first target",
        Duration::from_secs(120),
        || checkpoint(&targets[0]).exists(),
    );
    let pid = worker_pid(&first).expect("worker.pid");
    assert!(!plan.is_finished(&targets[0]), "killed before it finished");
    kill(pid);

    // 2. Kill the driver while the second target runs: its worker goes with it.
    let second = plan.run_dir(&targets[1]);
    wait_for(
        "a checkpoint of the second target",
        Duration::from_secs(120),
        || checkpoint(&targets[1]).exists(),
    );
    let pid2 = worker_pid(&second).expect("worker.pid");
    assert!(!plan.is_finished(&targets[1]));
    kill(child.id());
    let _ = child.wait();
    wait_for(
        "the orphaned worker to exit",
        Duration::from_secs(20),
        || !pid_alive(pid2),
    );
    assert!(
        plan.is_finished(&targets[0]),
        "the re-submitted run finished"
    );
    assert!(resumed(&plan, &targets[0]));
    assert_eq!(attempts(&first), 2);

    // 3. A new driver finishes the grid; the interrupted run resumes.
    let text = finish(
        driver(&grid_path, &out, &stilts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    for n in &plan.nodes {
        assert!(plan.is_finished(&n.id), "{} unfinished:\n{text}", n.id);
    }
    assert!(resumed(&plan, &targets[1]));
    assert_eq!(attempts(&second), 2);
    let before: Vec<usize> = plan
        .nodes
        .iter()
        .map(|n| attempts(&plan.run_dir(&n.id)))
        .collect();
    assert!(text.contains("5/5 runs finished"), "{text}");

    // 4. Re-running starts nothing and counts nothing twice.
    let text = finish(
        driver(&grid_path, &out, &stilts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(
        text.contains("0 finished now, 5 already finished"),
        "{text}"
    );
    let after: Vec<usize> = plan
        .nodes
        .iter()
        .map(|n| attempts(&plan.run_dir(&n.id)))
        .collect();
    assert_eq!(before, after);
    let reg = Registry::open(&out.join("registry.sqlite")).unwrap();
    let rows = reg.rows("tiny").unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.outcome.is_some()));
    // The registry holds each run's place in the grid as the plan has it.
    for r in &rows {
        assert_eq!(r.meta, plan.node(&r.run_id).unwrap().meta);
    }
    let n: i64 = reg
        .connection()
        .query_row("SELECT COUNT(DISTINCT run_id) FROM metrics", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 5);
    assert!(out.join("reports/table-full.md").exists());

    // 5. The best RTE run becomes a GLUE submission file, zipped.
    let bundle = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("bundle")
        .arg(&grid_path)
        .arg("--output-dir")
        .arg(&out)
        .arg("--stilts")
        .arg(&stilts)
        .args(["--partial", "--no-validate"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&bundle.stdout),
        String::from_utf8_lossy(&bundle.stderr)
    );
    assert!(bundle.status.success(), "{text}");
    let rte = std::fs::read_to_string(out.join("submission/RTE.tsv")).unwrap();
    assert_eq!(rte.lines().next(), Some("index\tprediction"));
    assert_eq!(rte.lines().count(), 1 + 40);
    assert!(out.join("submission/glue-submission.zip").exists());
}

/// The driver killed with SIGKILL at seeded random moments, then started again, until the grid
/// is done: no run is lost, none is counted twice, every result equals the uninterrupted
/// grid's, and the registry holds the same runs with the same outcomes.
#[test]
fn drivers_killed_at_random_moments_end_with_the_uninterrupted_registry() {
    let Some(stilts) = stilts_bin() else {
        panic!("no stilts binary: run through `cargo test --workspace` or set STILTS_BIN");
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    world(root, 160, 40);
    let grid_path = grid_file(root);
    let grid = spec::load(&grid_path, None).unwrap();

    let straight = root.join("straight");
    finish(
        driver(&grid_path, &straight, &stilts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    let killed = root.join("killed");
    let plan = Plan::expand(&grid, Some(&killed)).unwrap();
    let seed: u64 = std::env::var("STILTS_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5717_7500);
    let mut state = seed;
    let mut next_delay = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Duration::from_millis(150 + (state >> 33) % 1500)
    };
    let mut kills = 0;
    while kills < 6 && !plan.nodes.iter().all(|n| plan.is_finished(&n.id)) {
        let mut child = driver(&grid_path, &killed, &stilts)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(next_delay());
        if child.try_wait().unwrap().is_some() {
            break;
        }
        kill(child.id());
        let _ = child.wait();
        kills += 1;
        // Its workers go with it; the next driver starts only once they are gone.
        for n in &plan.nodes {
            if let Some(pid) = worker_pid(&plan.run_dir(&n.id)) {
                wait_for(
                    "an orphaned worker to exit",
                    Duration::from_secs(20),
                    || !pid_alive(pid),
                );
            }
        }
    }
    assert!(
        kills > 0,
        "the grid finished before the first kill (seed {seed})"
    );
    eprintln!("{kills} driver kills (seed {seed})");
    let text = finish(
        driver(&grid_path, &killed, &stilts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(text.contains("5/5 runs finished"), "{text}");

    let rows = |out: &Path| {
        let reg = Registry::open(&out.join("registry.sqlite")).unwrap();
        let mut rows = reg.rows("tiny").unwrap();
        rows.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        rows
    };
    let (a, b) = (rows(&straight), rows(&killed));
    assert_eq!(a.len(), 5);
    assert_eq!(
        a.iter().map(|r| &r.run_id).collect::<Vec<_>>(),
        b.iter().map(|r| &r.run_id).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (x.outcome.as_ref().unwrap(), y.outcome.as_ref().unwrap());
        assert_eq!(x.dev_score, y.dev_score, "seed {seed}");
        assert_eq!(x.metrics, y.metrics, "seed {seed}");
        assert_eq!(x.degenerate, y.degenerate);
    }
    // Each run started at most once per driver that could have run it.
    for n in &plan.nodes {
        let k = attempts(&plan.run_dir(&n.id));
        assert!((1..=kills + 1).contains(&k), "{}: {k} attempts", n.id);
    }
}
