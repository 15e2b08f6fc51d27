//! The Slurm executor on a real single-node Slurm cluster (`tests/slurm/start.sh`, which CI
//! runs and which sets `STILTS_SLURM`): a tiny grid (an intermediate task, baselines and
//! targets that continue from the intermediate) submitted as job arrays, with one task
//! cancelled, one requeued and the controller restarted mid-run; the driver reconciles until
//! every run is finished, and the registry holds every run once.
//!
//! A second test has the controller lose its state (every queued and running job) mid-run; a
//! third kills the controller with SIGKILL and sets the node DOWN under running jobs.
//!
//! Skipped (with a message) when `STILTS_SLURM` is unset. The `stilts` binary is `STILTS_BIN`,
//! else `target/<profile>/stilts` beside this test's executable (`cargo test --workspace`
//! builds it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xtask::exec::slurm::{
    self, CommandRunner, Driver, QueuedTask, RunStatus, SlurmError, SlurmOptions, Snapshot,
};
use xtask::exec::{WorkerCommand, attempts};
use xtask::grid::{LoadedGrid, Plan, Registry, RunKind};

mod common;

use common::world;

fn grid_toml(root: &Path, name: &str, restarts: usize) -> String {
    format!(
        r#"
name = "{name}"
description = "The Slurm executor test's tiny grid."
seed = 3
predict_test = false
targets = ["RTE"]
restarts = {restarts}

[data]
glue_dir = "{glue}"

[recipe]
epochs = 1
batch_size = 8
lr = 2e-3
max_seq_len = 32

[[encoders]]
name = "Tiny"
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 64 }}
tokenizer = "{vocab}"

[[intermediates]]
name = "SST-2"
task = "SST-2"

[slurm]
cpus_per_task = 1
mem = "1G"
time = "00:10:00"
extra = ["--nice=0"]
"#,
        glue = root.join("glue").display(),
        vocab = root.join("vocab.txt").display(),
    )
}

fn stilts_bin() -> PathBuf {
    common::stilts_bin()
        .expect("no stilts binary: run through `cargo test --workspace` or set STILTS_BIN")
}

/// Cancels the grid's jobs when the test ends, also when it fails.
struct CancelOnDrop<'a> {
    plan: &'a Plan,
    runner: CommandRunner,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let prefix = slurm::job_prefix(self.plan);
        if let Ok(queue) = self.runner.squeue() {
            for e in queue.iter().filter(|e| e.name.starts_with(&prefix)) {
                eprintln!("left in the queue: {e:?}");
            }
        }
        match slurm::cancel(self.plan, &self.runner) {
            Ok(0) => {}
            Ok(n) => eprintln!("cancelled {n} leftover Slurm tasks"),
            Err(e) => eprintln!("cancelling leftover Slurm tasks: {e}"),
        }
    }
}

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tests share one cluster, and one of them clears the controller's state.
static CLUSTER: Mutex<()> = Mutex::new(());

/// The test cluster's state directory, or `None` (with a message) when the test is skipped.
fn cluster() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("STILTS_SLURM") else {
        eprintln!(
            "skipped: set STILTS_SLURM (run `eval \"$(tests/slurm/start.sh)\"` as root) to test \
             the Slurm executor on a real single-node cluster"
        );
        return None;
    };
    Some(PathBuf::from(dir))
}

/// `tests/slurm/ctld.sh <args>` against the test cluster.
fn ctld(cluster: &Path, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slurm/ctld.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .env("STILTS_SLURM_DIR", cluster)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tiny grid under `root` (the jobs run as the submitting user on this machine, so they
/// read the tempdir and the binary).
fn setup(root: &Path, name: &str, restarts: usize) -> (LoadedGrid, Plan) {
    world(root, 40, 16);
    let grid_path = root.join("grid.toml");
    let text = grid_toml(root, name, restarts);
    std::fs::write(&grid_path, &text).unwrap();
    let grid = xtask::grid::spec::parse(&grid_path, &text, None).unwrap();
    let plan = Plan::expand(&grid, Some(&root.join("out"))).unwrap();
    plan.write(&grid).unwrap();
    (grid, plan)
}

fn options(runner: &CommandRunner) -> SlurmOptions {
    SlurmOptions {
        poll: Duration::from_secs(1),
        lost_after: 2,
        max_retries: 2,
        timeout: Some(Duration::from_secs(300)),
        controller_grace: Duration::from_secs(120),
        progress: true,
        runner: runner.clone(),
        ..SlurmOptions::default()
    }
}

/// The worker: `stilts` behind a gate. Each job waits (running) until the test opens the gate
/// by creating `<root>/gate`, so the test can cancel and requeue tasks while they run.
fn gated_worker(root: &Path) -> (WorkerCommand, PathBuf) {
    let stilts = stilts_bin();
    assert!(
        stilts.is_file(),
        "no stilts binary at {} (build it, or set STILTS_BIN)",
        stilts.display()
    );
    let gate = root.join("gate");
    let wrapper = root.join("stilts-gated");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nwhile [ ! -e '{}' ]; do sleep 0.1; done\nexec '{}' \"$@\"\n",
            gate.display(),
            stilts.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (
        WorkerCommand {
            stilts: wrapper,
            device: None,
            threads: None,
        },
        gate,
    )
}

/// Reconciles until `done` holds, at most `secs` seconds.
fn wait_until(driver: &Driver<'_>, secs: u64, mut done: impl FnMut(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let snap = driver.reconcile().expect("squeue");
        if done(&snap) || Instant::now() > deadline {
            return snap;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn running(snap: &Snapshot) -> Vec<(String, QueuedTask)> {
    snap.runs
        .iter()
        .filter_map(|(id, st)| match st {
            RunStatus::Running(t) => Some((id.clone(), t.clone())),
            _ => None,
        })
        .collect()
}

fn intermediate(plan: &Plan) -> String {
    plan.nodes
        .iter()
        .find(|n| n.meta.kind == RunKind::Intermediate)
        .unwrap()
        .id
        .clone()
}

/// Every run finished, each started exactly `expected` times (default once); nothing of the
/// grid left pending; the registry has every run once, with an outcome.
fn check_complete(plan: &Plan, runner: &CommandRunner, expected: &BTreeMap<String, usize>) {
    check_complete_with(plan, runner, |id| {
        (
            expected.get(id).copied().unwrap_or(1),
            expected.get(id).copied().unwrap_or(1),
        )
    });
}

/// [`check_complete`] with each run's attempts within `range(run id)` (inclusive).
fn check_complete_with(
    plan: &Plan,
    runner: &CommandRunner,
    range: impl Fn(&str) -> (usize, usize),
) {
    for n in &plan.nodes {
        assert!(plan.is_finished(&n.id), "run {} did not finish", n.id);
    }
    let left: Vec<_> = runner
        .squeue()
        .unwrap()
        .into_iter()
        .filter(|e| e.name.starts_with(&slurm::job_prefix(plan)) && e.state == "PENDING")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    for n in &plan.nodes {
        let a = attempts(&plan.run_dir(&n.id));
        let (low, high) = range(&n.id);
        assert!(
            (low..=high).contains(&a),
            "run {} ({}) started {a} times, expected {low} to {high}",
            n.id,
            n.meta.condition
        );
    }
    let mut reg = Registry::open(&plan.output_dir.join("registry.sqlite")).unwrap();
    reg.sync(plan).unwrap();
    reg.sync(plan).unwrap();
    let rows = reg.rows(&plan.grid).unwrap();
    assert_eq!(rows.len(), plan.nodes.len());
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "a run twice in the registry");
    for n in &plan.nodes {
        assert!(ids.contains(n.id.as_str()));
    }
    for r in &rows {
        assert!(r.outcome.is_some(), "run {} has no outcome", r.run_id);
        assert_eq!(r.meta, plan.node(&r.run_id).unwrap().meta);
    }
    assert_eq!(reg.finished(&plan.grid).unwrap(), plan.nodes.len());
}

fn events(plan: &Plan) -> String {
    let text = std::fs::read_to_string(slurm::slurm_dir(plan).join("events.tsv")).unwrap();
    eprintln!("events.tsv:\n{text}");
    text
}

#[test]
fn grid_through_slurm_survives_cancel_requeue_and_controller_restart() {
    let Some(cluster) = cluster() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (worker, gate) = gated_worker(tmp.path());
    let (grid, plan) = setup(tmp.path(), "slurm-test", 2);
    // An intermediate, two baselines, two targets after the intermediate.
    assert_eq!(plan.nodes.len(), 5);
    let inter = intermediate(&plan);
    let dependents: BTreeSet<String> = plan
        .nodes
        .iter()
        .filter(|n| n.depends_on == [inter.clone()])
        .map(|n| n.id.clone())
        .collect();
    assert_eq!(dependents.len(), 2);

    let runner = CommandRunner::default();
    let _cleanup = CancelOnDrop {
        plan: &plan,
        runner: runner.clone(),
    };
    let opts = SlurmOptions {
        // Below the cluster's MaxArraySize, to have more than one plain array.
        max_array_size: Some(2),
        ..options(&runner)
    };
    let mut driver = Driver::new(&plan, &grid, &worker, &opts).unwrap();
    // One driver at a time.
    assert!(matches!(
        Driver::new(&plan, &grid, &worker, &opts),
        Err(SlurmError::Locked { .. })
    ));

    let first = driver.step().unwrap();
    assert_eq!(first.submitted.len(), 5, "{first:#?}");
    // The intermediate and a baseline in one array, the other baseline in a second (arrays
    // of at most 2), each dependent in a slot array after the intermediate's array.
    assert_eq!(first.arrays.len(), 4, "{:?}", first.arrays);
    let inter_job = first
        .arrays
        .iter()
        .find(|(_, _, runs)| runs.contains(&inter))
        .unwrap()
        .1;
    let script = std::fs::read_to_string(slurm::slurm_dir(&plan).join("job.sh")).unwrap();
    assert!(script.contains("#SBATCH --cpus-per-task=1"), "{script}");
    assert!(script.contains("#SBATCH --nice=0"), "{script}");
    // Stepping again submits nothing: every run is queued.
    let again = driver.step().unwrap();
    assert!(
        again.submitted.is_empty() && again.resubmitted.is_empty(),
        "{again:#?}"
    );

    // Behind the closed gate, the intermediate and (with a second CPU) a baseline run. Slurm
    // reports a task RUNNING once it is allocated, before its batch script has started; wait
    // for the script's attempts.log line too, or a cancel can land before the first attempt.
    let snap = wait_until(&driver, 60, |s| {
        let on = running(s);
        on.len() >= 2 && on.iter().all(|(id, _)| attempts(&plan.run_dir(id)) >= 1)
    });
    let on = running(&snap);
    let mut expected = BTreeMap::new();
    let Some((_, t)) = on.iter().find(|(id, _)| *id == inter) else {
        panic!("the intermediate does not run: {snap:#?}");
    };
    assert_eq!(t.job, inter_job);
    // Cancel the intermediate: its dependents' dependency can never be satisfied now.
    eprintln!("cancelling the intermediate {inter} ({})", t.slurm_id());
    sh("scancel", &[&t.slurm_id()]);
    expected.insert(inter.clone(), 2);
    // Requeue the running baseline.
    match on.iter().find(|(id, _)| *id != inter) {
        Some((id, t)) => {
            eprintln!("requeueing {id} ({})", t.slurm_id());
            sh("scontrol", &["requeue", &t.slurm_id()]);
            expected.insert(id.clone(), 2);
        }
        None => eprintln!("one CPU: nothing to requeue"),
    }
    std::fs::write(&gate, "").unwrap();

    // While the driver waits, take the controller away (its state, the queue, survives) for
    // longer than Slurm's clients wait for it (squeue gives up after ~9 s), and bring it back.
    let restart = {
        let cluster = cluster.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            eprintln!("stopping slurmctld");
            ctld(&cluster, &["stop"]);
            std::thread::sleep(Duration::from_secs(12));
            eprintln!("starting slurmctld");
            ctld(&cluster, &["start"]);
        })
    };
    let mut duplicates = BTreeSet::new();
    let mut cancelled = BTreeSet::new();
    let result = driver.wait(|step| {
        duplicates.extend(step.snapshot.duplicates.iter().cloned());
        cancelled.extend(step.cancelled.iter().cloned());
    });
    restart.join().expect("restarting slurmctld");
    events(&plan);
    let report = result.unwrap();
    assert!(duplicates.is_empty(), "runs queued twice: {duplicates:?}");
    assert!(
        report.failed.is_empty() && report.blocked.is_empty(),
        "{report:#?}"
    );
    // The intermediate was resubmitted; its dependents' tasks, stranded, were cancelled and
    // resubmitted after it.
    assert_eq!(cancelled, dependents);
    assert_eq!(report.resubmitted, 3, "{report:#?}");
    check_complete(&plan, &runner, &expected);

    // A new driver over the finished grid submits nothing.
    drop(driver);
    let mut driver = Driver::new(&plan, &grid, &worker, &opts).unwrap();
    let last = driver.step().unwrap();
    assert!(
        last.submitted.is_empty() && last.resubmitted.is_empty(),
        "{last:#?}"
    );
    assert!(last.progress.complete() && last.progress.done == 5);
    eprintln!("Slurm executor test: {:?}", started.elapsed());
}

/// Resumes the test cluster's node when dropped.
struct ResumeNode;

impl Drop for ResumeNode {
    fn drop(&mut self) {
        let _ = Command::new("scontrol")
            .args(["update", "nodename=localhost", "state=resume"])
            .output();
    }
}

#[test]
fn grid_through_slurm_survives_a_controller_that_loses_its_jobs() {
    let Some(cluster) = cluster() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (worker, gate) = gated_worker(tmp.path());
    std::fs::write(&gate, "").unwrap();
    let (grid, plan) = setup(tmp.path(), "slurm-lost", 1);
    // An intermediate, a baseline, a target after the intermediate.
    assert_eq!(plan.nodes.len(), 3);
    let runner = CommandRunner::default();
    let _cleanup = CancelOnDrop {
        plan: &plan,
        runner: runner.clone(),
    };
    let opts = options(&runner);
    let mut driver = Driver::new(&plan, &grid, &worker, &opts).unwrap();

    // The jobs wait in the queue (the node drained), and the controller restarts without its
    // state: it forgets them, as one that lost its state directory does.
    let resume = ResumeNode;
    sh(
        "scontrol",
        &[
            "update",
            "nodename=localhost",
            "state=drain",
            "reason=stilts-test",
        ],
    );
    let first = driver.step().unwrap();
    assert_eq!(first.submitted.len(), 3, "{first:#?}");
    // One plain array (intermediate, baseline), one after it.
    assert_eq!(first.arrays.len(), 2, "{:?}", first.arrays);
    eprintln!("restarting slurmctld without its state");
    ctld(&cluster, &["restart", "--clear"]);
    drop(resume);
    let snap = driver.reconcile().unwrap();
    for n in &plan.nodes {
        assert_eq!(snap.runs[&n.id], RunStatus::Missing, "{}", n.id);
    }

    let result = driver.wait(|_| {});
    let log = events(&plan);
    let report = result.unwrap();
    assert!(
        report.failed.is_empty() && report.blocked.is_empty(),
        "{report:#?}"
    );
    // Every run was lost and resubmitted once.
    assert_eq!(report.resubmitted, 3, "{report:#?}");
    assert_eq!(log.matches("\tlost\t").count(), 3, "{log}");
    check_complete(&plan, &runner, &BTreeMap::new());
    eprintln!("Slurm executor test (lost jobs): {:?}", started.elapsed());
}

/// Fault drills: the node set DOWN under running jobs and resumed, then the controller killed
/// with SIGKILL (no shutdown, no final state save) and started again. The grid completes, no
/// run is queued twice, every run finishes once and is in the registry once; a run the drills
/// interrupted is started again (resumed from its checkpoint when it had one), at most twice
/// more. (Whether Slurm kills the jobs of a node set DOWN depends on its version; either way
/// the grid must complete.)
#[test]
fn grid_through_slurm_survives_a_killed_controller_and_a_node_down() {
    let Some(cluster) = cluster() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (worker, gate) = gated_worker(tmp.path());
    let (grid, plan) = setup(tmp.path(), "slurm-drills", 1);
    assert_eq!(plan.nodes.len(), 3);
    let runner = CommandRunner::default();
    let _cleanup = CancelOnDrop {
        plan: &plan,
        runner: runner.clone(),
    };
    let opts = options(&runner);
    let mut driver = Driver::new(&plan, &grid, &worker, &opts).unwrap();
    driver.step().unwrap();
    let snap = wait_until(&driver, 60, |s| {
        let on = running(s);
        !on.is_empty() && on.iter().all(|(id, _)| attempts(&plan.run_dir(id)) >= 1)
    });
    let hit: BTreeSet<String> = running(&snap).into_iter().map(|(id, _)| id).collect();
    assert!(!hit.is_empty(), "nothing runs: {snap:#?}");

    eprintln!("setting the node DOWN under {hit:?}");
    let resume = ResumeNode;
    sh(
        "scontrol",
        &[
            "update",
            "nodename=localhost",
            "state=down",
            "reason=stilts-drill",
        ],
    );
    let after = wait_until(&driver, 10, |s| {
        running(s).iter().all(|(id, _)| !hit.contains(id))
    });
    eprintln!("with the node DOWN, running: {:?}", running(&after));
    let stopped: BTreeSet<String> = hit
        .iter()
        .filter(|id| !running(&after).iter().any(|(r, _)| r == *id))
        .cloned()
        .collect();
    drop(resume);
    // The controller is killed once the resumed node has started the stopped runs again (their
    // workers wrote a second attempt): a kill while Slurm is still launching them leaves jobs
    // that squeue reports as running with no process behind them until Slurm's own timeouts
    // notice, minutes later on a loaded machine, which is Slurm's recovery, not the driver's.
    let relaunched = wait_until(&driver, 120, |s| {
        stopped
            .iter()
            .all(|id| running(s).iter().any(|(r, _)| r == id) && attempts(&plan.run_dir(id)) >= 2)
    });
    eprintln!("resumed node, running: {:?}", running(&relaunched));

    eprintln!("killing slurmctld with SIGKILL");
    ctld(&cluster, &["kill"]);
    std::thread::sleep(Duration::from_secs(2));
    ctld(&cluster, &["start"]);
    std::fs::write(&gate, "").unwrap();

    let mut duplicates = BTreeSet::new();
    let result = driver.wait(|step| duplicates.extend(step.snapshot.duplicates.iter().cloned()));
    events(&plan);
    let report = result.unwrap();
    assert!(duplicates.is_empty(), "runs queued twice: {duplicates:?}");
    assert!(
        report.failed.is_empty() && report.blocked.is_empty(),
        "{report:#?}"
    );
    check_complete_with(&plan, &runner, |id| {
        if hit.contains(id) { (2, 3) } else { (1, 3) }
    });
    eprintln!("Slurm executor test (drills): {:?}", started.elapsed());
}

/// A fusion reads from two runs: the driver holds it back while both are queued (a slot array
/// waits for one task), and submits it once they have finished; it starts once, after them.
#[test]
fn a_fusion_through_slurm_waits_for_every_adapter_it_fuses() {
    let Some(_cluster) = cluster() else { return };
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (worker, gate) = gated_worker(root);
    std::fs::write(&gate, "").unwrap();
    world(root, 40, 16);
    let bert = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/stilts-models/tests/fixtures/tiny-bert");
    let text = grid_toml(root, "slurm-fusion", 1)
        .replace(
            "random = { hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 64 }",
            &format!("pretrained = \"{}\"", bert.display()),
        )
        .replace(
            "[slurm]",
            r#"[[intermediates]]
name = "SST-2/24"
task = "SST-2"
train_examples = 24

[[methods]]
name = "pfeiffer"
recipe = { adapter = { preset = "pfeiffer", reduction_factor = 4, train_layer_norms = false } }

[[methods]]
name = "fusion"
fuse = { adapters = "pfeiffer" }

[slurm]"#,
        )
        .replace("restarts = 1", "restarts = 1\nbaseline = false");
    let grid_path = root.join("grid.toml");
    std::fs::write(&grid_path, &text).unwrap();
    let grid = xtask::grid::spec::parse(&grid_path, &text, None).unwrap();
    let plan = Plan::expand(&grid, Some(&root.join("out"))).unwrap();
    plan.write(&grid).unwrap();
    // Per method two intermediates and RTE after each; then the fusion.
    assert_eq!(plan.nodes.len(), 2 * (2 + 2) + 1);
    let fusion = plan
        .nodes
        .iter()
        .find(|n| n.meta.method == "fusion")
        .unwrap();
    let runner = CommandRunner::default();
    let _cleanup = CancelOnDrop {
        plan: &plan,
        runner: runner.clone(),
    };
    let opts = options(&runner);
    let mut driver = Driver::new(&plan, &grid, &worker, &opts).unwrap();
    let first = driver.step().unwrap();
    assert!(
        !first.submitted.contains(&fusion.id),
        "the fusion waits for its adapters: {first:#?}"
    );
    assert_eq!(first.submitted.len(), plan.nodes.len() - 1, "{first:#?}");
    let report = driver.wait(|_| {}).unwrap();
    assert!(
        report.failed.is_empty() && report.blocked.is_empty(),
        "{report:#?}"
    );
    check_complete(&plan, &runner, &BTreeMap::new());
    let started = |id: &str| {
        std::fs::metadata(plan.run_dir(id).join("attempts.log"))
            .and_then(|m| m.created().or_else(|_| m.modified()))
            .unwrap()
    };
    let finished = |id: &str| {
        std::fs::metadata(plan.run_dir(id).join("summary.json"))
            .and_then(|m| m.modified())
            .unwrap()
    };
    for dep in &fusion.depends_on {
        assert!(finished(dep) <= started(&fusion.id), "{dep}");
    }
}
