//! The paper's Tables 1 and 2: one table per data regime, rows per encoder and condition,
//! columns Avg, A.Ex and one per target with the task's metrics; markdown, LaTeX (booktabs) and
//! CSV.

use stilts_data::Metric;

use super::model::{Cell, Condition, ReportModel, Stats, Target};
use super::text::{csv_line, fixed, md, md_table, num, pct, size, tex};
use crate::grid::Regime;

/// One table entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// No cell here (a multitask row in another target's column).
    Blank,
    /// A cell without a finished run.
    Missing,
    /// A value; struck through where the baseline stands in for the intermediate = target.
    Value { text: String, struck: bool },
}

impl Entry {
    fn md(&self) -> String {
        match self {
            Entry::Blank => String::new(),
            Entry::Missing => "—".into(),
            Entry::Value {
                text,
                struck: false,
            } => md(text),
            Entry::Value { text, struck: true } => format!("~~{}~~", md(text)),
        }
    }

    fn tex(&self) -> String {
        match self {
            Entry::Blank => String::new(),
            Entry::Missing => "---".into(),
            Entry::Value {
                text,
                struck: false,
            } => tex(text),
            Entry::Value { text, struck: true } => format!("\\sout{{{}}}", tex(text)),
        }
    }

    fn value(text: String) -> Entry {
        Entry::Value {
            text,
            struck: false,
        }
    }
}

/// What a table row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    TrainSize,
    Condition,
    BestOfEach,
}

/// A table row: a label, Avg, A.Ex (when the grid has it) and one entry per target.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: RowKind,
    pub label: String,
    pub avg: Entry,
    pub a_ex: Entry,
    pub cells: Vec<Entry>,
}

/// A regime's table, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub regime: Regime,
    pub a_ex: bool,
    /// `(task name, metric header)` per target.
    pub columns: Vec<(String, String)>,
    /// Best-of-restarts rows (with the training-set size row and Best of Each).
    pub rows: Vec<Row>,
    /// Mean ± std over restarts of each cell's task score (when some target has restarts).
    pub stats: Option<Vec<Row>>,
    pub planned: usize,
    pub finished: usize,
    /// Restarts per target, smallest and largest.
    pub restarts: (usize, usize),
}

/// The cell's best run's metrics as `a/b`.
fn best_entry(cell: &Cell<'_>, target: &Target) -> Entry {
    if cell.best().is_none() {
        return Entry::Missing;
    }
    let parts: Vec<String> = if target.metrics.is_empty() {
        vec![pct(cell.best_score().unwrap_or(f64::NAN))]
    } else {
        target
            .metrics
            .iter()
            .map(|&m| cell.best_metric(m).map_or_else(|| "?".into(), pct))
            .collect()
    };
    Entry::Value {
        text: parts.join("/"),
        struck: cell.substituted,
    }
}

fn stats_entry(cell: &Cell<'_>) -> Entry {
    match Stats::of(&cell.scores()) {
        None => Entry::Missing,
        Some(s) => Entry::Value {
            text: format!(
                "{} ± {} ({}–{}, n={})",
                pct(s.mean),
                fixed(s.std * 100.0, 1),
                pct(s.min),
                pct(s.max),
                s.n
            ),
            struck: cell.substituted,
        },
    }
}

/// Mean of `scores` over the targets `keep` selects: `Blank` if a kept target has no cell in the
/// row (or none is kept), `Missing` if a kept cell has no finished run.
fn average(
    scores: &[Option<Option<f64>>],
    targets: &[Target],
    keep: impl Fn(&Target) -> bool,
) -> Entry {
    let kept: Vec<&Option<Option<f64>>> = scores
        .iter()
        .zip(targets)
        .filter(|(_, t)| keep(t))
        .map(|(s, _)| s)
        .collect();
    if kept.is_empty() || kept.iter().any(|s| s.is_none()) {
        return Entry::Blank;
    }
    let values: Vec<f64> = kept.iter().filter_map(|s| s.flatten()).collect();
    if values.len() < kept.len() {
        return Entry::Missing;
    }
    Entry::value(pct(values.iter().sum::<f64>() / values.len() as f64))
}

/// Builds the table of `regime`.
pub fn build(model: &ReportModel<'_>, regime: Regime) -> Table {
    let targets = &model.targets;
    let a_ex = model.has_a_ex();
    let mut rows = Vec::new();
    rows.push(Row {
        kind: RowKind::TrainSize,
        label: "Training set size".into(),
        avg: Entry::Blank,
        a_ex: Entry::Blank,
        cells: targets
            .iter()
            .map(|t| match model.train_size(t, regime) {
                Some(n) => Entry::value(size(n)),
                None => match regime.train_examples() {
                    Some(n) => Entry::value(format!("≤{}", size(n))),
                    None => Entry::Missing,
                },
            })
            .collect(),
    });
    let mut stats_rows = Vec::new();
    for enc in &model.encoders {
        // Per target: the best condition's (score, entry), for Best of Each.
        let mut best_of_each: Vec<Option<(f64, Entry)>> = vec![None; targets.len()];
        let mut any_missing = vec![false; targets.len()];
        for c in &model.conditions {
            let cells: Vec<Option<Cell<'_>>> = targets
                .iter()
                .map(|t| model.cell(enc, c, t, regime))
                .collect();
            let scores: Vec<Option<Option<f64>>> = cells
                .iter()
                .map(|c| c.as_ref().map(Cell::best_score))
                .collect();
            let entries: Vec<Entry> = cells
                .iter()
                .zip(targets)
                .map(|(cell, t)| match cell {
                    None => Entry::Blank,
                    Some(cell) => best_entry(cell, t),
                })
                .collect();
            for (i, (s, e)) in scores.iter().zip(&entries).enumerate() {
                match s {
                    Some(Some(v)) if best_of_each[i].as_ref().is_none_or(|(b, _)| v > b) => {
                        let e = match e {
                            Entry::Value { text, .. } => Entry::value(text.clone()),
                            other => other.clone(),
                        };
                        best_of_each[i] = Some((*v, e));
                    }
                    Some(None) => any_missing[i] = true,
                    _ => {}
                }
            }
            let label = c.label(enc);
            rows.push(Row {
                kind: RowKind::Condition,
                label: label.clone(),
                avg: average(&scores, targets, |_| true),
                a_ex: average(&scores, targets, |t| !t.excluded_from_a_ex()),
                cells: entries,
            });
            stats_rows.push(Row {
                kind: RowKind::Condition,
                label,
                avg: Entry::Blank,
                a_ex: Entry::Blank,
                cells: cells
                    .iter()
                    .map(|c| c.as_ref().map_or(Entry::Blank, stats_entry))
                    .collect(),
            });
        }
        let scores: Vec<Option<Option<f64>>> = best_of_each
            .iter()
            .map(|b| Some(b.as_ref().map(|(s, _)| *s)))
            .collect();
        rows.push(Row {
            kind: RowKind::BestOfEach,
            label: if model.encoders.len() > 1 {
                format!("Best of Each ({enc})")
            } else {
                "Best of Each".into()
            },
            avg: average(&scores, targets, |_| true),
            a_ex: average(&scores, targets, |t| !t.excluded_from_a_ex()),
            cells: best_of_each
                .into_iter()
                .zip(&any_missing)
                .map(|(b, &missing)| match b {
                    Some((_, e)) => e,
                    None if missing => Entry::Missing,
                    None => Entry::Blank,
                })
                .collect(),
        });
    }
    let (planned, finished) = model.progress(Some(regime));
    let restarts = targets
        .iter()
        .map(|t| model.grid.restarts(&t.key))
        .fold((usize::MAX, 0), |(lo, hi), r| (lo.min(r), hi.max(r)));
    Table {
        regime,
        a_ex,
        columns: targets
            .iter()
            .map(|t| (t.name.clone(), t.metric_header()))
            .collect(),
        rows,
        stats: model.has_restarts().then_some(stats_rows),
        planned,
        finished,
        restarts,
    }
}

impl Table {
    fn restarts_text(&self) -> String {
        match self.restarts {
            (1, 1) => "one run per cell".into(),
            (a, b) if a == b => format!("best on dev of {a} restarts"),
            (a, b) => format!("best on dev of {a}–{b} restarts"),
        }
    }

    fn missing_text(&self) -> String {
        let missing = self.planned - self.finished.min(self.planned);
        if missing == 0 {
            format!("all {} target runs finished", self.planned)
        } else {
            format!(
                "{missing} of {} target runs missing (cells without any finished run show —)",
                self.planned
            )
        }
    }

    /// The header cells: `Model`, `Avg`, `A.Ex`, then `TASK metrics`.
    pub fn header(&self) -> Vec<String> {
        let mut h = vec!["Model".to_string(), "Avg".into()];
        if self.a_ex {
            h.push("A.Ex".into());
        }
        for (name, metrics) in &self.columns {
            h.push(if metrics.is_empty() {
                name.clone()
            } else {
                format!("{name} {metrics}")
            });
        }
        h
    }

    fn md_rows(&self, rows: &[Row], with_avg: bool) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| {
                let mut v = vec![if r.kind == RowKind::Condition {
                    md(&r.label)
                } else {
                    format!("*{}*", md(&r.label))
                }];
                if with_avg {
                    v.push(r.avg.md());
                    if self.a_ex {
                        v.push(r.a_ex.md());
                    }
                }
                v.extend(r.cells.iter().map(Entry::md));
                v
            })
            .collect()
    }

    /// The markdown file: the table, and the restart statistics when there are restarts.
    pub fn markdown(&self, grid: &str) -> String {
        let label = self.regime.label();
        let mut s = format!("# {grid}: `{label}` training data\n\n");
        s.push_str(&format!(
            "Dev set scores ×100, {}; {}. ~~Struck through~~: the intermediate task is the \
             target task, so the baseline's number stands in (as in the paper). Avg: mean of \
             the task scores (a task's score is the mean of its metrics){}.\n\n",
            self.restarts_text(),
            self.missing_text(),
            if self.a_ex {
                "; A.Ex: the same without MNLI and QQP"
            } else {
                ""
            }
        ));
        s.push_str(&md_table(&self.header(), &self.md_rows(&self.rows, true)));
        if let Some(stats) = &self.stats {
            s.push_str(
                "\n## Across restarts\n\nTask score ×100 over each cell's finished restarts: \
                 mean ± sample standard deviation (min–max, n = restarts).\n\n",
            );
            let mut h = vec!["Model".to_string()];
            h.extend(self.columns.iter().map(|(n, _)| n.clone()));
            s.push_str(&md_table(&h, &self.md_rows(stats, false)));
        }
        s
    }

    /// The markdown table alone (for the CLI's summary).
    pub fn markdown_table(&self) -> String {
        md_table(&self.header(), &self.md_rows(&self.rows, true))
    }

    /// A LaTeX booktabs table (and the restart statistics as a second one).
    pub fn latex(&self, grid: &str) -> String {
        let label = self.regime.label();
        let mut s = format!(
            "% Generated by `cargo xtask report` for grid {grid}, `{label}` training data.\n\
             % Needs \\usepackage{{booktabs}} and \\usepackage[normalem]{{ulem}} (\\sout).\n"
        );
        let avg_cols = if self.a_ex { 2 } else { 1 };
        let ncols = avg_cols + self.columns.len();
        s.push_str("\\begin{table*}[t]\n\\centering\n\\small\n");
        s.push_str(&format!(
            "\\begin{{tabular}}{{l*{{{ncols}}}{{r}}}}\n\\toprule\n"
        ));
        let mut names = vec![String::new(), "Avg".into()];
        let mut metrics = vec![String::new(), String::new()];
        if self.a_ex {
            names.push("A.Ex".into());
            metrics.push(String::new());
        }
        for (n, m) in &self.columns {
            names.push(tex(n));
            metrics.push(tex(m));
        }
        s.push_str(&format!("{} \\\\\n", names.join(" & ")));
        s.push_str(&format!("{} \\\\\n\\midrule\n", metrics.join(" & ")));
        for (i, r) in self.rows.iter().enumerate() {
            let mut v = vec![tex(&r.label), r.avg.tex()];
            if self.a_ex {
                v.push(r.a_ex.tex());
            }
            v.extend(r.cells.iter().map(Entry::tex));
            s.push_str(&format!("{} \\\\\n", v.join(" & ")));
            let next = self.rows.get(i + 1).map(|r| r.kind);
            // Rules after the size row, before each Best of Each, and between encoders.
            if (r.kind != RowKind::Condition && next.is_some()) || next == Some(RowKind::BestOfEach)
            {
                s.push_str("\\midrule\n");
            }
        }
        s.push_str("\\bottomrule\n\\end{tabular}\n");
        s.push_str(&format!(
            "\\caption{{{}: dev set scores $\\times 100$, `{}' training data, {}. Struck \
             through: the intermediate task is the target task; the baseline's number stands \
             in.{}}}\n",
            tex(grid),
            tex(&label),
            tex(&self.restarts_text()),
            if self.finished < self.planned {
                tex(&format!(" {}.", self.missing_text()))
            } else {
                String::new()
            }
        ));
        s.push_str("\\end{table*}\n");
        if let Some(stats) = &self.stats {
            s.push_str("\n\\begin{table*}[t]\n\\centering\n\\small\n");
            s.push_str(&format!(
                "\\begin{{tabular}}{{l*{{{}}}{{r}}}}\n\\toprule\n",
                self.columns.len()
            ));
            let mut h = vec![String::new()];
            h.extend(self.columns.iter().map(|(n, _)| tex(n)));
            s.push_str(&format!("{} \\\\\n\\midrule\n", h.join(" & ")));
            for r in stats {
                let mut v = vec![tex(&r.label)];
                v.extend(r.cells.iter().map(Entry::tex));
                s.push_str(&format!("{} \\\\\n", v.join(" & ")));
            }
            s.push_str("\\bottomrule\n\\end{tabular}\n");
            s.push_str(&format!(
                "\\caption{{{}: task score $\\times 100$ over restarts, `{}' training data: \
                 mean $\\pm$ standard deviation (min--max, n).}}\n\\end{{table*}}\n",
                tex(grid),
                tex(&label)
            ));
        }
        s
    }
}

/// The CSV columns.
pub const CSV_HEADER: [&str; 13] = [
    "regime",
    "encoder",
    "condition",
    "target",
    "metric",
    "best",
    "mean",
    "std",
    "min",
    "max",
    "n",
    "restarts",
    "substituted",
];

/// One line per encoder × condition × target (with a cell) × metric, plus the task score as
/// metric `score`: the best restart's value and the mean, sample std, min and max over finished
/// restarts, as fractions (not ×100). Missing cells have `n = 0` and empty values.
pub fn csv(model: &ReportModel<'_>, regime: Regime) -> String {
    let mut s = csv_line(&CSV_HEADER);
    for enc in &model.encoders {
        for c in &model.conditions {
            for t in &model.targets {
                let Some(cell) = model.cell(enc, c, t, regime) else {
                    continue;
                };
                csv_cell(&mut s, regime, enc, c, t, &cell);
            }
        }
    }
    s
}

fn csv_cell(s: &mut String, regime: Regime, enc: &str, c: &Condition, t: &Target, cell: &Cell<'_>) {
    let mut lines: Vec<(String, Option<f64>, Vec<f64>)> = t
        .metrics
        .iter()
        .map(|&m: &Metric| {
            (
                m.name().to_string(),
                cell.best_metric(m),
                cell.metric_values(m),
            )
        })
        .collect();
    lines.push(("score".into(), cell.best_score(), cell.scores()));
    for (metric, best, values) in lines {
        let st = Stats::of(&values);
        s.push_str(&csv_line(&[
            regime.label(),
            enc.to_string(),
            c.key_for(&t.key).unwrap_or(&c.name).to_string(),
            t.name.clone(),
            metric,
            num(best),
            num(st.map(|x| x.mean)),
            num(st.map(|x| x.std)),
            num(st.map(|x| x.min)),
            num(st.map(|x| x.max)),
            st.map_or(0, |x| x.n).to_string(),
            cell.restarts.to_string(),
            cell.substituted.to_string(),
        ]));
    }
}
