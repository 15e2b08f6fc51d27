//! A STILTs experiment declared in Rust, small enough to finish in a minute or two on a laptop
//! CPU: MiniLM fine-tuned on 64 examples of the MNLI subset (the intermediate phase), then on
//! 64 examples of RTE with a fresh head (the target phase), one epoch each. It runs with
//! [`run_experiment`] and reads back what the run wrote.
//!
//! ```sh
//! export STILTS_MINILM_DIR=$(scripts/fetch_minilm.sh) GLUE_DIR=... STILTS_EXTRA_DIR=...
//! cargo run -p stilts-train --example two_phase [-- OUTPUT_DIR]
//! ```
//!
//! The same experiment as a TOML file for `stilts run`:
//!
//! ```toml
//! name = "two_phase"
//! [model]
//! pretrained = "${STILTS_MINILM_DIR}"
//! [recipe]
//! max_seq_len = 64
//! epochs = 1
//! bucket_by_length = true
//! [[phases]]
//! name = "mnli"
//! tasks = [{ task = "configs/tasks/mnli_subset.toml", train_examples = 64 }]
//! [[phases]]
//! name = "rte"
//! tasks = [{ task = "RTE", train_examples = 64 }]
//! head = "new"
//! ```

use std::error::Error;
use std::path::PathBuf;

use stilts_train::config::{
    Experiment, ExperimentFile, HeadKind, ModelFile, PhaseFile, RecipeFile, TaskEntryFile,
    TaskTableFile,
};
use stilts_train::experiment::run_experiment;
use stilts_train::observer::Observer;
use stilts_train::results::{EpochRecord, ExperimentSummary, RunResult, result_file};

/// The MNLI subset's task file (its data is under `$STILTS_EXTRA_DIR/mnli`).
const MNLI_SUBSET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/tasks/mnli_subset.toml"
);

/// Prints one line per evaluation.
struct Print;

impl Observer for Print {
    fn run_start(&mut self, phase: &str, seed: u64, epochs: usize, _first_epoch: usize) {
        println!("phase {phase}, seed {seed}: {epochs} epoch(s)");
    }
    fn eval_start(&mut self, examples: usize) {
        println!("  evaluating {examples} dev examples");
    }
    fn epoch_end(&mut self, r: &EpochRecord) {
        println!(
            "  epoch {}: {} steps, train loss {:.4}, dev {:.4}",
            r.epoch, r.step, r.train_loss, r.dev_score
        );
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        let mut source = e.source();
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

/// A task entry with a downsampled training split.
fn task(name: &str, train_examples: usize) -> TaskEntryFile {
    TaskEntryFile::Table(TaskTableFile {
        task: name.into(),
        data_root: None,
        train_examples: Some(train_examples),
        dev_split: None,
        pair: None,
    })
}

fn run() -> Result<(), Box<dyn Error>> {
    for (var, holds) in [
        (
            "STILTS_MINILM_DIR",
            "all-MiniLM-L6-v2 (scripts/fetch_minilm.sh fetches it)",
        ),
        ("STILTS_EXTRA_DIR", "the MNLI subset (mnli/)"),
        ("GLUE_DIR", "GLUE in its official layout (RTE/)"),
    ] {
        if std::env::var_os(var).is_none() {
            return Err(
                format!("{var} is not set: point it at the directory holding {holds}").into(),
            );
        }
    }
    let output_dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("stilts-two-phase-{}", std::process::id()))
        });

    let file = ExperimentFile {
        name: Some("two_phase".into()),
        output_dir: Some(output_dir.display().to_string()),
        model: ModelFile {
            pretrained: Some("${STILTS_MINILM_DIR}".into()),
            ..ModelFile::default()
        },
        recipe: RecipeFile {
            max_seq_len: Some(64),
            epochs: Some(1),
            bucket_by_length: Some(true),
            ..RecipeFile::default()
        },
        phases: vec![
            PhaseFile {
                name: Some("mnli".into()),
                tasks: vec![task(MNLI_SUBSET, 64)],
                ..PhaseFile::default()
            },
            PhaseFile {
                name: Some("rte".into()),
                tasks: vec![task("RTE", 64)],
                head: Some(HeadKind::New),
                ..PhaseFile::default()
            },
        ],
        ..ExperimentFile::default()
    };
    // Checks every file and setting before anything trains.
    let experiment = Experiment::from_file(&file, "<two_phase.rs>".as_ref(), "two_phase")?;
    let summary = run_experiment(&experiment, &mut Print)?;

    // What the run wrote: `summary.json`, and a `result.json` per run.
    let written = ExperimentSummary::read(&experiment.output_dir.join("summary.json"))?;
    assert_eq!(written.phases.len(), summary.phases.len());
    println!(
        "{} in {:.1} s, results in {}",
        written.name,
        written.wall_s,
        output_dir.display()
    );
    for phase in &written.phases {
        let best = RunResult::read(&result_file(&phase.best_run_dir))?;
        println!(
            "  {:<5} dev {:.4} (majority baseline {:.4}, {}), {} training examples seen",
            phase.phase,
            phase.best_dev_score,
            phase.baseline,
            if phase.degenerate > 0 {
                "degenerate"
            } else {
                "above it"
            },
            best.train_examples_seen,
        );
    }
    Ok(())
}
