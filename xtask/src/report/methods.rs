//! `methods.md` and `methods.csv`: the grid's training methods side by side (full fine-tuning
//! and each of its `methods`, e.g. adapters and LoRA). Per encoder and regime: each condition's
//! dev score on each target (mean ± std over restarts, ×100), then what each method costs per
//! run: parameters trained, bytes saved per task (the module directory for a
//! parameter-efficient method, the whole model otherwise) and wall time.

use super::model::{Applies, Cell, Condition, ReportModel, Stats, Target};
use super::text::{csv_line, fixed, md, md_table, num, pct};
use crate::grid::{Regime, RunRow};

/// One method's report model, by name (`full` first).
pub type MethodModel<'a> = (&'a str, ReportModel<'a>);

/// The cells of one encoder and regime of a method that are run (substituted cells and
/// cells a condition does not have excluded), with their condition and target.
fn run_cells<'m, 'a>(
    model: &'m ReportModel<'a>,
    encoder: &'m str,
    regime: Regime,
) -> impl Iterator<Item = (&'m Condition, &'m Target, Cell<'a>)> + 'm {
    model.conditions.iter().flat_map(move |c| {
        model.targets.iter().filter_map(move |t| {
            (model.applies(c, t) == Applies::Yes)
                .then(|| model.cell(encoder, c, t, regime))
                .flatten()
                .map(|cell| (c, t, cell))
        })
    })
}

/// The intermediate runs of one encoder of a method.
fn intermediate_runs<'a>(model: &ReportModel<'a>, encoder: &str) -> Vec<&'a RunRow> {
    model
        .intermediates
        .iter()
        .filter(|((e, _), _)| e == encoder)
        .map(|(_, r)| *r)
        .collect()
}

/// Lowest and highest of `values`, `None` for none.
fn range(values: impl IntoIterator<Item = u64>) -> Option<(u64, u64)> {
    values.into_iter().fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn mean(values: &[f64]) -> Option<f64> {
    Stats::of(values).map(|s| s.mean)
}

/// `1.2M`, `38.5k`, `512`.
fn count(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{}M", fixed(n as f64 / 1e6, 1))
    } else if n >= 1000 {
        format!("{}k", fixed(n as f64 / 1e3, 1))
    } else {
        n.to_string()
    }
}

/// `87.3 MiB`, `412 KiB`.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", fixed(n as f64 / f64::from(1 << 20), 1))
    } else {
        format!("{} KiB", fixed(n as f64 / 1024.0, 0))
    }
}

/// Whole seconds, tenths under ten.
fn seconds(s: f64) -> String {
    fixed(s, if s < 10.0 { 1 } else { 0 })
}

fn shown_range(r: Option<(u64, u64)>, f: fn(u64) -> String) -> String {
    match r {
        None => "—".into(),
        Some((lo, hi)) if f(lo) == f(hi) => f(lo),
        Some((lo, hi)) => format!("{}–{}", f(lo), f(hi)),
    }
}

/// What one method's runs of an encoder cost.
struct Costs {
    trained: Option<(u64, u64)>,
    total: Option<(u64, u64)>,
    saved: Option<(u64, u64)>,
    target_wall_s: Option<f64>,
    intermediate_wall_s: Option<f64>,
    runs: usize,
}

fn costs(model: &ReportModel<'_>, encoder: &str, regime: Regime) -> Costs {
    let targets: Vec<&RunRow> = run_cells(model, encoder, regime)
        .flat_map(|(_, _, cell)| cell.runs)
        .collect();
    let sizes = || targets.iter().filter_map(|r| r.outcome.as_ref()?.sizes);
    let walls = |runs: &[&RunRow]| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| r.outcome.as_ref().map(|o| o.wall_s))
            .collect()
    };
    Costs {
        trained: range(sizes().map(|s| s.trained_params)),
        total: range(sizes().map(|s| s.total_params)),
        saved: range(sizes().map(|s| s.saved_bytes())),
        target_wall_s: mean(&walls(&targets)),
        intermediate_wall_s: mean(&walls(&intermediate_runs(model, encoder))),
        runs: targets.len(),
    }
}

/// Each condition's row: its cells' finished dev scores, per target.
fn scores(model: &ReportModel<'_>, encoder: &str, regime: Regime) -> Vec<ScoreRow> {
    let mut rows = Vec::new();
    for c in &model.conditions {
        let cells = model
            .targets
            .iter()
            .map(|t| match model.applies(c, t) {
                Applies::Yes => model.cell(encoder, c, t, regime).map(|cell| cell.scores()),
                _ => None,
            })
            .collect();
        rows.push(ScoreRow {
            condition: c.short_label(),
            cells,
        });
    }
    rows
}

struct ScoreRow {
    condition: String,
    /// Per target (the model's order): finished dev scores, `None` where the cell is not run.
    cells: Vec<Option<Vec<f64>>>,
}

fn score_text(values: &Option<Vec<f64>>) -> String {
    let Some(v) = values else {
        return String::new();
    };
    let Some(st) = Stats::of(v) else {
        return "…".into();
    };
    let sd = if st.n > 1 {
        format!(" ± {}", pct(st.std))
    } else {
        String::new()
    };
    format!("{}{sd} ({})", pct(st.mean), st.n)
}

/// `methods.md`.
pub fn markdown(grid: &str, models: &[MethodModel<'_>]) -> String {
    let mut s = format!(
        "# {grid}: training methods\n\nEach method trains the intermediates and targets it \
         names; `full` fine-tunes the whole encoder. Dev score ×100, mean ± std over the \
         finished restarts (their number in brackets); `…`: none finished. Saved per task: the \
         module directory (`adapter/`) of a parameter-efficient run, the whole model of a full \
         one. Wall time: mean seconds per run, training and evaluation.\n"
    );
    let Some((_, first)) = models.first() else {
        return s;
    };
    for &regime in &first.regimes {
        for encoder in &first.encoders {
            s.push_str(&format!(
                "\n## {}, `{}` training data\n\n",
                md(encoder),
                regime.label()
            ));
            let mut header = vec!["Method".to_string(), "Intermediate".to_string()];
            header.extend(first.targets.iter().map(|t| md(&t.name)));
            let mut rows = Vec::new();
            for (method, model) in models {
                // Columns follow the full grid's targets; a method's subset leaves blanks.
                for row in scores(model, encoder, regime) {
                    let mut line = vec![md(method), md(&row.condition)];
                    for t in &first.targets {
                        let i = model.targets.iter().position(|x| x.key == t.key);
                        line.push(i.map_or(String::new(), |i| score_text(&row.cells[i])));
                    }
                    rows.push(line);
                }
            }
            s.push_str(&md_table(&header, &rows));
            s.push('\n');
            let header: Vec<String> = [
                "Method",
                "trained parameters",
                "of the model",
                "saved per task",
                "s per target run",
                "s per intermediate run",
                "target runs",
            ]
            .map(String::from)
            .to_vec();
            let rows: Vec<Vec<String>> = models
                .iter()
                .map(|(method, model)| {
                    let c = costs(model, encoder, regime);
                    let share = match (c.trained, c.total) {
                        (Some((_, t)), Some((n, _))) if n > 0 => {
                            format!("{}%", fixed(100.0 * t as f64 / n as f64, 2))
                        }
                        _ => "—".into(),
                    };
                    vec![
                        md(method),
                        shown_range(c.trained, count),
                        share,
                        shown_range(c.saved, bytes),
                        c.target_wall_s.map_or("—".into(), seconds),
                        c.intermediate_wall_s.map_or("—".into(), seconds),
                        c.runs.to_string(),
                    ]
                })
                .collect();
            s.push_str(&md_table(&header, &rows));
        }
    }
    s
}

/// `methods.csv`: one line per method, encoder, regime, condition and target run cell.
pub fn csv(models: &[MethodModel<'_>]) -> String {
    let mut s = csv_line(&[
        "method",
        "encoder",
        "regime",
        "condition",
        "target",
        "restarts_finished",
        "mean_dev_score",
        "scores",
        "trained_params",
        "total_params",
        "saved_bytes",
        "mean_wall_s",
    ]);
    for (method, model) in models {
        for &regime in &model.regimes {
            for encoder in &model.encoders {
                for (c, t, cell) in run_cells(model, encoder, regime) {
                    let scores = cell.scores();
                    let first = cell.runs.iter().find_map(|r| r.outcome.as_ref()?.sizes);
                    let walls: Vec<f64> = cell
                        .runs
                        .iter()
                        .filter_map(|r| r.outcome.as_ref().map(|o| o.wall_s))
                        .collect();
                    let joined: Vec<String> = scores.iter().map(|v| v.to_string()).collect();
                    s.push_str(&csv_line(&[
                        method.to_string(),
                        encoder.clone(),
                        regime.label(),
                        c.name.clone(),
                        t.name.clone(),
                        scores.len().to_string(),
                        num(mean(&scores)),
                        joined.join(" "),
                        first.map_or(String::new(), |z| z.trained_params.to_string()),
                        first.map_or(String::new(), |z| z.total_params.to_string()),
                        first.map_or(String::new(), |z| z.saved_bytes().to_string()),
                        num(mean(&walls)),
                    ]));
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(22_713_216), "22.7M");
        assert_eq!(count(38_500), "38.5k");
        assert_eq!(count(770), "770");
        assert_eq!(bytes(91_500_000), "87.3 MiB");
        assert_eq!(bytes(421_888), "412 KiB");
        assert_eq!(shown_range(Some((770, 1538)), count), "770–1.5k");
        assert_eq!(shown_range(Some((770, 770)), count), "770");
        assert_eq!(range([3, 1, 2]), Some((1, 3)));
        assert_eq!(score_text(&Some(vec![0.5, 0.7])), "60.0 ± 14.1 (2)");
        assert_eq!(score_text(&Some(vec![])), "…");
        assert_eq!(score_text(&None), "");
    }
}
