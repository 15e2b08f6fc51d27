//! Degenerate runs (dev score at or below the majority-class / constant baseline) per cell: the
//! paper's observation that BERT sometimes fails on small tasks, and STILTs makes it rarer.

use super::model::{Applies, ReportModel};
use super::text::{csv_line, md, md_table, pct};

/// Degenerate target runs over finished ones, all regimes.
pub fn totals(model: &ReportModel<'_>) -> (usize, usize) {
    let (mut degenerate, mut finished) = (0, 0);
    for &regime in &model.regimes {
        for enc in &model.encoders {
            for c in &model.conditions {
                for t in &model.targets {
                    if model.applies(c, t) != Applies::Yes {
                        continue;
                    }
                    if let Some(cell) = model.cell(enc, c, t, regime) {
                        degenerate += cell.degenerate();
                        finished += cell.runs.len();
                    }
                }
            }
        }
    }
    (degenerate, finished)
}

/// `degenerate.md`: per regime, a table of degenerate / finished runs per encoder, condition
/// and target, and the intermediate runs' status.
pub fn markdown(model: &ReportModel<'_>) -> String {
    let grid = &model.grid.file.name;
    let (d, n) = totals(model);
    let mut s = format!(
        "# {grid}: degenerate runs\n\nA run is degenerate when its dev score is at or below \
         the majority-class (regression: constant-prediction) baseline. Cells: degenerate / \
         finished restarts (and the planned restarts where some have not finished). In all: \
         {d} of {n} finished target runs.\n"
    );
    for &regime in &model.regimes {
        s.push_str(&format!("\n## `{}` training data\n\n", regime.label()));
        let mut header = vec!["Model".to_string()];
        header.extend(model.targets.iter().map(|t| md(&t.name)));
        let mut rows = Vec::new();
        for enc in &model.encoders {
            for c in &model.conditions {
                let mut row = vec![md(&c.label(enc))];
                for t in &model.targets {
                    let text = match model.cell(enc, c, t, regime) {
                        Some(cell) if !cell.substituted => {
                            let mut x = format!("{}/{}", cell.degenerate(), cell.runs.len());
                            if cell.runs.len() < cell.restarts {
                                x.push_str(&format!(" (of {})", cell.restarts));
                            }
                            x
                        }
                        _ => String::new(),
                    };
                    row.push(text);
                }
                rows.push(row);
            }
        }
        s.push_str(&md_table(&header, &rows));
    }
    if !model.grid.file.intermediates.is_empty() {
        s.push_str("\n## Intermediate runs\n\n");
        let header = vec![
            "Encoder".to_string(),
            "Intermediate".into(),
            "Dev score".into(),
            "Baseline".into(),
            "Degenerate".into(),
        ];
        let mut rows = Vec::new();
        for enc in &model.encoders {
            for m in &model.grid.file.intermediates {
                let run = model.intermediates.get(&(enc.clone(), m.name.clone()));
                let o = run.and_then(|r| r.outcome.as_ref());
                rows.push(vec![
                    md(enc),
                    md(&m.name),
                    o.map_or("—".into(), |o| pct(o.dev_score)),
                    o.map_or("—".into(), |o| pct(o.baseline)),
                    o.map_or("—".into(), |o| {
                        if o.degenerate { "yes" } else { "no" }.into()
                    }),
                ]);
            }
        }
        s.push_str(&md_table(&header, &rows));
    }
    s
}

/// `degenerate.csv`: one line per cell with runs of its own (substituted cells are the
/// baseline's), and one per intermediate run.
pub fn csv(model: &ReportModel<'_>) -> String {
    let mut s = csv_line(&[
        "kind",
        "regime",
        "encoder",
        "condition",
        "target",
        "degenerate",
        "finished",
        "restarts",
    ]);
    for &regime in &model.regimes {
        for enc in &model.encoders {
            for c in &model.conditions {
                for t in &model.targets {
                    let Some(cell) = model.cell(enc, c, t, regime) else {
                        continue;
                    };
                    if cell.substituted {
                        continue;
                    }
                    s.push_str(&csv_line(&[
                        "target".to_string(),
                        regime.label(),
                        enc.clone(),
                        c.key_for(&t.key).unwrap_or(&c.name).to_string(),
                        t.name.clone(),
                        cell.degenerate().to_string(),
                        cell.runs.len().to_string(),
                        cell.restarts.to_string(),
                    ]));
                }
            }
        }
    }
    for enc in &model.encoders {
        for m in &model.grid.file.intermediates {
            let run = model.intermediates.get(&(enc.clone(), m.name.clone()));
            let o = run.and_then(|r| r.outcome.as_ref());
            s.push_str(&csv_line(&[
                "intermediate".to_string(),
                "full".into(),
                enc.clone(),
                m.name.clone(),
                String::new(),
                o.map_or(0, |o| usize::from(o.degenerate)).to_string(),
                usize::from(o.is_some()).to_string(),
                "1".into(),
            ]));
        }
    }
    s
}
