//! `stilts-schema` alone: read what an experiment wrote, without linking burn.
//!
//! ```sh
//! cargo run -p stilts-schema --example show_summary -- runs/quickstart_minilm_rte
//! ```
//!
//! Prints each phase's restarts from `summary.json`, and each restart's dev score per epoch
//! from its `result.json`.

use std::path::PathBuf;

use stilts_schema::SchemaError;
use stilts_schema::results::{ExperimentSummary, RunResult};

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: show_summary OUTPUT_DIR (an experiment's output directory)");
        std::process::exit(2);
    };
    if let Err(e) = show(&dir) {
        eprintln!("error: {e}");
        if let Some(cause) = std::error::Error::source(&e) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

fn show(dir: &std::path::Path) -> Result<(), SchemaError> {
    let summary = ExperimentSummary::read(&dir.join("summary.json"))?;
    println!(
        "{}: {} phase(s), {:.1} s",
        summary.name,
        summary.phases.len(),
        summary.wall_s
    );
    for phase in &summary.phases {
        println!(
            "{}: best seed {} dev {:.4}; mean {:.4} ± {:.4} over {} run(s); baseline {:.4}",
            phase.phase,
            phase.best_seed,
            phase.best_dev_score,
            phase.mean,
            phase.std,
            phase.runs.len(),
            phase.baseline
        );
        let best = RunResult::read(&phase.best_run_dir.join("result.json"))?;
        for epoch in &best.history {
            println!(
                "  epoch {}: step {}, train loss {:.4}, dev {:.4}",
                epoch.epoch, epoch.step, epoch.train_loss, epoch.dev_score
            );
        }
    }
    Ok(())
}
