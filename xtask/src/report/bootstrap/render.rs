//! `bootstrap.md` and `bootstrap.csv`: the comparisons as a person and a spreadsheet read them.

use super::{Comparison, Status};
use crate::report::model::ReportModel;
use crate::report::text::{csv_line, fixed, md, md_table, num, pct};

/// Δ in points (×100), two decimals.
fn pts(v: f64) -> String {
    fixed(v * 100.0, 2)
}

/// `bootstrap.md`.
pub fn markdown(model: &ReportModel<'_>, comparisons: &[Comparison], resamples: usize) -> String {
    let grid = &model.grid.file.name;
    let mut s = format!(
        "# {grid}: STILTs minus baseline, paired bootstrap\n\nThe best-on-dev run of each \
         condition against the best-on-dev baseline run, both scored on the same {resamples} \
         resamples (with replacement) of the dev set. Scores ×100; Δ = STILTs − baseline on \
         the whole dev set; 95% CI: 2.5th–97.5th percentile of the resampled Δ; P(win): \
         fraction of resamples where STILTs scores higher.\n"
    );
    if resamples == 0 {
        s.push_str("\nThe bootstrap is off (`[report] bootstrap = 0`).\n");
    } else if comparisons.is_empty() {
        s.push_str("\nNo comparisons: the grid has no baseline or no STILTs condition.\n");
    }
    for &regime in &model.regimes {
        let rows: Vec<&Comparison> = comparisons.iter().filter(|c| c.regime == regime).collect();
        if rows.is_empty() {
            continue;
        }
        s.push_str(&format!("\n## `{}` training data\n\n", regime.label()));
        let header: Vec<String> = [
            "Model", "Target", "n", "Baseline", "STILTs", "Δ", "Mean Δ", "95% CI", "P(win)",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        let mut notes = Vec::new();
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|c| {
                let mut v = vec![md(&c.label), md(&c.target)];
                match &c.status {
                    Status::Done(i) => v.extend([
                        i.n.to_string(),
                        pct(i.baseline),
                        pct(i.stilts),
                        pts(i.diff),
                        pts(i.mean),
                        format!("[{}, {}]", pts(i.low), pts(i.high)),
                        fixed(i.win, 3),
                    ]),
                    Status::Missing(why) | Status::Failed(why) => {
                        notes.push(format!("- {} on {}: {}", c.label, c.target, why));
                        v.extend(std::iter::repeat_n("—".to_string(), 7));
                    }
                }
                v
            })
            .collect();
        s.push_str(&md_table(&header, &table));
        if !notes.is_empty() {
            s.push('\n');
            s.push_str(&notes.join("\n"));
            s.push('\n');
        }
    }
    s
}

/// `bootstrap.csv`: values as fractions.
pub fn csv(comparisons: &[Comparison]) -> String {
    let mut s = csv_line(&[
        "regime",
        "encoder",
        "target",
        "condition",
        "baseline_run",
        "stilts_run",
        "n",
        "resamples",
        "baseline",
        "stilts",
        "diff",
        "mean_diff",
        "low",
        "high",
        "p_win",
        "status",
    ]);
    for c in comparisons {
        let i = match &c.status {
            Status::Done(i) => Some(*i),
            _ => None,
        };
        let status = match &c.status {
            Status::Done(_) => "ok".to_string(),
            Status::Missing(w) => format!("missing: {w}"),
            Status::Failed(w) => format!("failed: {w}"),
        };
        s.push_str(&csv_line(&[
            c.regime.label(),
            c.encoder.clone(),
            c.target.clone(),
            c.condition.clone(),
            c.baseline_run.clone().unwrap_or_default(),
            c.stilts_run.clone().unwrap_or_default(),
            i.map_or(String::new(), |i| i.n.to_string()),
            i.map_or(String::new(), |i| i.resamples.to_string()),
            num(i.map(|i| i.baseline)),
            num(i.map(|i| i.stilts)),
            num(i.map(|i| i.diff)),
            num(i.map(|i| i.mean)),
            num(i.map(|i| i.low)),
            num(i.map(|i| i.high)),
            num(i.map(|i| i.win)),
            status,
        ]));
    }
    s
}
