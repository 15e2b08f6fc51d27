//! `stilts show`: the runs of an output directory as one table (or JSON), finished or not.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use stilts_train::schema::runs::{RunState, RunStatus, collect_runs};

/// Print every run under a directory: phase, seed, state (an unfinished run: running, or
/// stopped when the process that trained it is gone), dev score per epoch (the kept one
/// marked `*`), kept epoch, degenerate flag, wall time and throughput. Works on an
/// experiment's output directory, one phase's (`NN-<phase>`) or one run's (`seed-<s>`), while
/// it trains too (the epochs finished so far).
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The directory.
    pub dir: PathBuf,
    /// Print the runs as one JSON array instead.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ShowArgs) -> Result<()> {
    let runs = collect_runs(&args.dir)
        .with_context(|| format!("reading the runs in {}", args.dir.display()))?;
    if runs.is_empty() {
        bail!(
            "{} holds no runs (an experiment's output_dir, a NN-<phase> directory or a seed-<s> directory)",
            args.dir.display()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        println!("{}", table(&runs));
    }
    Ok(())
}

fn table(runs: &[RunStatus]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "phase",
        "seed",
        "state",
        "dev per epoch (×100)",
        "kept",
        "dev",
        "degenerate",
        "wall",
        "ex/s",
    ]);
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "-".to_owned(), f);
    for r in runs {
        let epochs: Vec<String> = r
            .dev_scores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mark = if r.kept_epoch == Some(i + 1) { "*" } else { "" };
                format!("{mark}{:.1}", s * 100.0)
            })
            .collect();
        let mut state = match r.state {
            RunState::Finished => "finished".to_owned(),
            RunState::InProgress => format!("{} epochs so far", r.dev_scores.len()),
            RunState::Started => "started".to_owned(),
        };
        match (r.live, r.last_seen_s) {
            (Some(true), _) => state.push_str(", running"),
            (Some(false), Some(ago)) => {
                state.push_str(&format!(
                    ", stopped (its process gone; last seen {ago:.0} s ago)"
                ));
            }
            _ => {}
        }
        table.add_row([
            r.phase.clone(),
            r.seed.to_string(),
            state,
            epochs.join(" "),
            r.kept_epoch
                .map_or_else(|| "-".to_owned(), |k| k.to_string()),
            opt(r.dev_score, &|s| format!("{:.2}", s * 100.0)),
            r.degenerate.map_or_else(
                || "-".to_owned(),
                |d| if d { "yes" } else { "no" }.to_owned(),
            ),
            opt(r.wall_s, &|s| format!("{s:.0} s")),
            opt(r.examples_per_s, &|v| format!("{v:.1}")),
        ]);
    }
    table
}
