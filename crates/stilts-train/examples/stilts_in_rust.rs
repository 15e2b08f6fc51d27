//! A STILTs run written in Rust against `stilts-train`, without the CLI: an intermediate phase
//! on the MNLI subset, then RTE with a fresh head and three restarts, printing progress through
//! an [`Observer`].
//!
//! ```sh
//! export STILTS_MINILM_DIR=/path/to/all-MiniLM-L6-v2 GLUE_DIR=... STILTS_EXTRA_DIR=...
//! cargo run --release -p stilts-train --example stilts_in_rust
//! ```

use stilts_train::config::{
    Experiment, ExperimentFile, HeadKind, ModelFile, PhaseFile, RecipeFile, TaskEntryFile,
};
use stilts_train::experiment::run_experiment;
use stilts_train::observer::{Observer, StepEvent};
use stilts_train::results::EpochRecord;

struct Print;

impl Observer for Print {
    fn step(&mut self, e: &StepEvent) {
        if e.step.is_multiple_of(50) {
            println!(
                "step {}/{} loss {:.4} lr {:.2e}",
                e.step, e.total_steps, e.loss, e.lr
            );
        }
    }
    fn epoch_end(&mut self, r: &EpochRecord) {
        println!("epoch {}: dev {:.4}", r.epoch, r.dev_score);
    }
}

fn main() -> Result<(), stilts_train::TrainError> {
    let file = ExperimentFile {
        name: Some("stilts_in_rust".into()),
        output_dir: Some("runs/stilts_in_rust".into()),
        model: ModelFile {
            pretrained: Some("${STILTS_MINILM_DIR}".into()),
            ..ModelFile::default()
        },
        recipe: RecipeFile {
            bucket_by_length: Some(true),
            ..RecipeFile::default()
        },
        phases: vec![
            PhaseFile {
                name: Some("mnli".into()),
                tasks: vec![TaskEntryFile::Name("configs/tasks/mnli_subset.toml".into())],
                recipe: RecipeFile {
                    epochs: Some(1),
                    ..RecipeFile::default()
                },
                ..PhaseFile::default()
            },
            PhaseFile {
                name: Some("rte".into()),
                tasks: vec![TaskEntryFile::Name("RTE".into())],
                head: Some(HeadKind::New),
                restarts: Some(3),
                ..PhaseFile::default()
            },
        ],
        ..ExperimentFile::default()
    };
    let experiment = Experiment::from_file(&file, "<example>".as_ref(), "stilts_in_rust")?;
    let summary = run_experiment(&experiment, &mut Print)?;
    for p in &summary.phases {
        println!(
            "{}: best seed {} ({:.4}), mean {:.4} ± {:.4}",
            p.phase, p.best_seed, p.best_dev_score, p.mean, p.std
        );
    }
    Ok(())
}
