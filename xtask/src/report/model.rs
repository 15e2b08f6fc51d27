//! The report's view of a grid: its encoders, conditions (table rows), targets (table columns)
//! and regimes, and the registry's runs grouped into cells. Everything the tables, the figure,
//! the degenerate counts and the bootstrap render comes from here, so they agree on which run is
//! a cell's best and which cells are missing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use stilts_data::{BuiltinTask, Metric, Task};

use crate::grid::RunRow;
use crate::grid::plan::{RunKind, is_same_task};
use crate::grid::spec::{LoadedGrid, Regime};

/// What a condition (a table row) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionKind {
    /// `none`: the encoder fine-tuned on the target alone (the paper's plain "BERT" row).
    Baseline,
    /// The encoder fine-tuned on an intermediate task, then on the target.
    Intermediate,
    /// `{A,B}`: A and B at once, scored on B.
    Multitask,
    /// `{A,B}->B`: the multitask model fine-tuned on B.
    FromMultitask,
    /// `A+B`: the encoder with an AdapterFusion over A's and B's adapters, trained on the
    /// target (a fusion method's one row).
    Fusion,
}

/// A table row of one encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The row's name: `none`, an intermediate's name (`MNLI`), or for multitask rows the
    /// registry's condition (`{MNLI,RTE}`, `{MNLI,RTE}->RTE`) when the grid pairs `MNLI` with
    /// one target, else the generic `{MNLI,target}` / `{MNLI,target}->target` (the paper's
    /// Table 3 rows, one column per paired target).
    pub name: String,
    pub kind: ConditionKind,
    /// Multitask rows: the registry's condition per paired target (the row's only columns).
    per_target: Option<BTreeMap<String, String>>,
    /// For intermediates: the targets that *are* this intermediate (skipped by the grid; the
    /// table substitutes the baseline's number, struck through).
    same_task: Vec<String>,
}

/// Whether a condition has a cell in a target's column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Runs of this condition are scored on the target.
    Yes,
    /// The intermediate is the target: the baseline's runs stand in, struck through.
    Substituted,
    /// No cell (a multitask condition of another target, or a substitution without baseline).
    No,
}

impl Condition {
    /// The row label: `BERT`, `BERT → MNLI`, `BERT → {MNLI,RTE} → RTE`.
    pub fn label(&self, encoder: &str) -> String {
        match self.kind {
            ConditionKind::Baseline => encoder.to_string(),
            _ => format!("{encoder} → {}", self.short_label()),
        }
    }

    /// The condition alone, with arrows: `MNLI`, `{MNLI,RTE} → RTE`.
    pub fn short_label(&self) -> String {
        self.name.replace("->", " → ")
    }

    pub fn is_baseline(&self) -> bool {
        self.kind == ConditionKind::Baseline
    }

    /// The registry's condition of this row in `target`'s column (`none`, `MNLI`,
    /// `{MNLI,RTE}->RTE`); `None` for a multitask row without that target.
    pub fn key_for(&self, target: &str) -> Option<&str> {
        match &self.per_target {
            None => Some(&self.name),
            Some(m) => m.get(target).map(String::as_str),
        }
    }
}

/// A target task (a table column).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// As the grid (and the registry) spells it.
    pub key: String,
    /// The task's canonical name (`SST-2` for `sst2`), or the key.
    pub name: String,
    /// The task, when it resolves (a built-in name, or a task TOML that exists).
    pub task: Option<Task>,
    /// The task's metrics in its own order (the paper's: MRPC F1/acc, QQP acc/F1, STS-B P/S).
    pub metrics: Vec<Metric>,
    pub builtin: Option<BuiltinTask>,
}

impl Target {
    /// The column header's metric part: `MCC`, `acc`, `F1/acc`, `P/S`.
    pub fn metric_header(&self) -> String {
        self.metrics
            .iter()
            .map(|&m| metric_abbrev(m))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether the paper's A.Ex column leaves the task out (MNLI and QQP, the big intermediate
    /// tasks).
    pub fn excluded_from_a_ex(&self) -> bool {
        matches!(self.builtin, Some(BuiltinTask::Mnli | BuiltinTask::Qqp))
    }
}

/// Display abbreviation of a metric (report-specific: the paper's column notation).
pub fn metric_abbrev(m: Metric) -> &'static str {
    match m {
        Metric::Accuracy => "acc",
        Metric::F1 => "F1",
        Metric::Mcc => "MCC",
        Metric::Pearson => "P",
        Metric::Spearman => "S",
        other => other.name(),
    }
}

/// Statistics of values over restarts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (`n - 1` in the denominator; 0 for one value).
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Stats {
            n,
            mean,
            std: var.sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// The runs of one encoder × condition × target × regime.
#[derive(Debug, Clone)]
pub struct Cell<'a> {
    /// Finished runs, by restart.
    pub runs: Vec<&'a RunRow>,
    /// Restarts the grid plans for the cell.
    pub restarts: usize,
    /// The baseline's runs standing in for an intermediate that is the target.
    pub substituted: bool,
}

impl<'a> Cell<'a> {
    /// The best run on dev (the paper's restart selection): highest dev score, the lowest
    /// restart among ties; NaN scores lose.
    pub fn best(&self) -> Option<&'a RunRow> {
        self.runs
            .iter()
            .copied()
            .filter_map(|r| r.outcome.as_ref().map(|o| (r, o.dev_score)))
            .fold(None::<(&'a RunRow, f64)>, |best, (r, s)| {
                let s = if s.is_nan() { f64::NEG_INFINITY } else { s };
                match best {
                    Some((_, b)) if s <= b => best,
                    _ => Some((r, s)),
                }
            })
            .map(|(r, _)| r)
    }

    /// The best run's dev score (the task's GLUE score).
    pub fn best_score(&self) -> Option<f64> {
        self.best()
            .and_then(|r| r.outcome.as_ref())
            .map(|o| o.dev_score)
    }

    /// The best run's value of `metric`.
    pub fn best_metric(&self, metric: Metric) -> Option<f64> {
        self.best()
            .and_then(|r| r.outcome.as_ref())
            .and_then(|o| o.metrics.get(metric.name()).copied())
    }

    /// Dev scores over finished restarts.
    pub fn scores(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.outcome.as_ref().map(|o| o.dev_score))
            .collect()
    }

    /// Values of `metric` over finished restarts.
    pub fn metric_values(&self, metric: Metric) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.outcome.as_ref())
            .filter_map(|o| o.metrics.get(metric.name()).copied())
            .collect()
    }

    /// Finished runs whose dev score is at or below the majority/constant baseline.
    pub fn degenerate(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.outcome.as_ref().is_some_and(|o| o.degenerate))
            .count()
    }

    /// Planned restarts without a result.
    pub fn missing(&self) -> usize {
        self.restarts.saturating_sub(self.runs.len())
    }
}

/// A grid and its runs, arranged for reporting.
#[derive(Debug, Clone)]
pub struct ReportModel<'a> {
    pub grid: &'a LoadedGrid,
    pub encoders: Vec<String>,
    /// Rows of every encoder, in the paper's order: baseline, intermediates, multitask.
    pub conditions: Vec<Condition>,
    pub targets: Vec<Target>,
    pub regimes: Vec<Regime>,
    /// Finished intermediate runs, per encoder and intermediate name.
    pub intermediates: BTreeMap<(String, String), &'a RunRow>,
    cells: HashMap<(String, String, String, Regime), Vec<&'a RunRow>>,
}

impl<'a> ReportModel<'a> {
    /// Groups `rows` (the registry's runs of `grid`) by cell. Rows that are not in the grid
    /// (another encoder, condition, target or regime) are ignored.
    pub fn new(grid: &'a LoadedGrid, rows: &'a [RunRow]) -> ReportModel<'a> {
        let f = &grid.file;
        let encoders = f.encoders.iter().map(|e| e.name.clone()).collect();
        let mut conditions = Vec::new();
        if f.baseline {
            conditions.push(Condition {
                name: "none".into(),
                kind: ConditionKind::Baseline,
                per_target: None,
                same_task: Vec::new(),
            });
        }
        if let Some(fuse) = grid.fusion() {
            conditions.push(Condition {
                name: grid.fused_intermediates(fuse).join("+"),
                kind: ConditionKind::Fusion,
                per_target: None,
                same_task: Vec::new(),
            });
        }
        for m in &f.intermediates {
            conditions.push(Condition {
                name: m.name.clone(),
                kind: ConditionKind::Intermediate,
                per_target: None,
                same_task: f
                    .targets
                    .iter()
                    .filter(|t| is_same_task(m, t))
                    .cloned()
                    .collect(),
            });
        }
        // Multitask rows, grouped by intermediate: `{A,B}` and `{A,B}->B` of every paired B.
        let mut firsts: Vec<&str> = Vec::new();
        for mt in &f.multitask {
            if !firsts.contains(&mt.a.as_str()) {
                firsts.push(&mt.a);
            }
        }
        for a in firsts {
            let bs: Vec<&str> = f
                .multitask
                .iter()
                .filter(|mt| mt.a == a)
                .map(|mt| mt.b.as_str())
                .collect();
            let one = (bs.len() == 1).then(|| bs[0]);
            let b_name = one.unwrap_or("target");
            for kind in [ConditionKind::Multitask, ConditionKind::FromMultitask] {
                let key = |b: &str| match kind {
                    ConditionKind::Multitask => format!("{{{a},{b}}}"),
                    _ => format!("{{{a},{b}}}->{b}"),
                };
                conditions.push(Condition {
                    name: key(b_name),
                    kind,
                    per_target: Some(bs.iter().map(|b| (b.to_string(), key(b))).collect()),
                    same_task: Vec::new(),
                });
            }
        }
        // Columns in the paper's order (GLUE's), whatever order the grid runs them in; other
        // tasks after, in grid order.
        let mut targets: Vec<Target> = f
            .targets
            .iter()
            .map(|t| resolve_target(t, &grid.source, rows))
            .collect();
        targets.sort_by_key(|t| {
            t.builtin
                .and_then(|b| BuiltinTask::GLUE.iter().position(|g| *g == b))
                .unwrap_or(BuiltinTask::GLUE.len())
        });
        let mut cells: HashMap<_, Vec<&RunRow>> = HashMap::new();
        let mut intermediates = BTreeMap::new();
        for r in rows {
            if r.outcome.is_none() {
                continue;
            }
            match (r.meta.kind, &r.meta.target) {
                (RunKind::Intermediate, _) => {
                    intermediates.insert((r.meta.encoder.clone(), r.meta.condition.clone()), r);
                }
                (_, Some(t)) => cells
                    .entry((
                        r.meta.encoder.clone(),
                        r.meta.condition.clone(),
                        t.clone(),
                        r.meta.regime,
                    ))
                    .or_default()
                    .push(r),
                (_, None) => {}
            }
        }
        for runs in cells.values_mut() {
            runs.sort_by_key(|r| r.meta.restart);
            // A restart ingested twice under different ids (a changed configuration): keep the
            // first, so a cell never counts more runs than restarts.
            runs.dedup_by_key(|r| r.meta.restart);
        }
        ReportModel {
            grid,
            encoders,
            conditions,
            targets,
            regimes: grid.regimes(),
            intermediates,
            cells,
        }
    }

    /// Whether `condition` has a cell in `target`'s column.
    pub fn applies(&self, condition: &Condition, target: &Target) -> Applies {
        if condition.key_for(&target.key).is_none() {
            return Applies::No;
        }
        if condition.same_task.contains(&target.key) {
            return if self.grid.file.baseline {
                Applies::Substituted
            } else {
                Applies::No
            };
        }
        Applies::Yes
    }

    /// The cell of `encoder` × `condition` × `target` × `regime`; `None` where the condition
    /// has no cell in the column.
    pub fn cell(
        &self,
        encoder: &str,
        condition: &Condition,
        target: &Target,
        regime: Regime,
    ) -> Option<Cell<'a>> {
        let applies = self.applies(condition, target);
        let key = match applies {
            Applies::No => return None,
            Applies::Yes => condition.key_for(&target.key)?,
            Applies::Substituted => "none",
        };
        let runs = self
            .cells
            .get(&(
                encoder.to_string(),
                key.to_string(),
                target.key.clone(),
                regime,
            ))
            .cloned()
            .unwrap_or_default();
        let restarts = self.grid.restarts(&target.key);
        Some(Cell {
            runs: runs
                .into_iter()
                .filter(|r| r.meta.restart < restarts)
                .collect(),
            restarts,
            substituted: applies == Applies::Substituted,
        })
    }

    /// Target (and multitask) runs the grid plans, and how many of them have results, in
    /// `regime` (all regimes with `None`). Substituted cells are not runs.
    pub fn progress(&self, regime: Option<Regime>) -> (usize, usize) {
        let (mut planned, mut finished) = (0, 0);
        for &rg in self
            .regimes
            .iter()
            .filter(|r| regime.is_none_or(|x| x == **r))
        {
            for enc in &self.encoders {
                for c in &self.conditions {
                    for t in &self.targets {
                        if self.applies(c, t) != Applies::Yes {
                            continue;
                        }
                        if let Some(cell) = self.cell(enc, c, t, rg) {
                            planned += cell.restarts;
                            finished += cell.runs.len();
                        }
                    }
                }
            }
        }
        (planned, finished)
    }

    /// Whether any target has more than one restart.
    pub fn has_restarts(&self) -> bool {
        self.targets.iter().any(|t| self.grid.restarts(&t.key) > 1)
    }

    /// Whether the grid has the paper's A.Ex column (a target it excludes, and one it keeps).
    pub fn has_a_ex(&self) -> bool {
        self.targets.iter().any(Target::excluded_from_a_ex)
            && self.targets.iter().any(|t| !t.excluded_from_a_ex())
    }

    /// The training-set size of `target` in `regime`, as the finished runs recorded it (the
    /// most common value), else the regime's cap.
    pub fn train_size(&self, target: &Target, regime: Regime) -> Option<usize> {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for ((_, _, t, rg), runs) in &self.cells {
            if *t != target.key || *rg != regime {
                continue;
            }
            for r in runs {
                if r.meta.kind == RunKind::Target
                    && let Some(n) = r.outcome.as_ref().and_then(|o| o.train_examples)
                {
                    *counts.entry(n).or_default() += 1;
                }
            }
        }
        counts
            .into_iter()
            .max_by_key(|&(n, c)| (c, std::cmp::Reverse(n)))
            .map(|(n, _)| n)
    }
}

/// A target by the grid's name: its task when the name resolves, its metrics from the task
/// (or, for a task that does not resolve here, from the metrics its runs recorded).
fn resolve_target(key: &str, grid_source: &Path, rows: &[RunRow]) -> Target {
    let builtin = BuiltinTask::parse(key).ok();
    let task = match builtin {
        Some(b) => Some(b.task()),
        None if key.ends_with(".toml") => task_file_candidates(key, grid_source)
            .into_iter()
            .find(|p| p.is_file())
            .and_then(|p| stilts_data::custom::load_task_file(&p).ok()),
        None => None,
    };
    let metrics = match &task {
        Some(t) => t.metrics.clone(),
        None => {
            let seen: Vec<String> = rows
                .iter()
                .filter(|r| r.meta.target.as_deref() == Some(key))
                .filter_map(|r| r.outcome.as_ref())
                .flat_map(|o| o.metrics.keys().cloned())
                .collect();
            Metric::ALL
                .into_iter()
                .filter(|m| seen.iter().any(|s| s == m.name()))
                .collect()
        }
    };
    Target {
        key: key.to_string(),
        name: task
            .as_ref()
            .map_or_else(|| key.to_string(), |t| t.name.clone()),
        task,
        metrics,
        builtin,
    }
}

fn task_file_candidates(key: &str, grid_source: &Path) -> Vec<PathBuf> {
    let p = PathBuf::from(key);
    if p.is_absolute() {
        return vec![p];
    }
    let mut v = vec![p.clone()];
    if let Some(dir) = grid_source.parent() {
        v.push(dir.join(&p));
    }
    v
}
