//! The results registry: an embedded SQLite database that only the driver writes. Workers write
//! per-run JSON result files atomically (`stilts run`'s `summary.json` and `result.json`);
//! [`Registry::sync`] ingests them. A run is keyed by its id, so ingesting twice never counts a
//! run twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use stilts_schema::results::{EpochTime, ExperimentSummary, RunResult, RunSizes, is_degenerate};

use super::plan::{Plan, RunKind, RunMeta, RunNode};
use super::{GridError, Regime};

/// What a finished run scored (from its result files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The scored task's GLUE score on dev (mean of its metrics) of the final model.
    pub dev_score: f64,
    /// Every metric of the scored task on dev (`accuracy`, `f1`, `mcc`, `pearson`,
    /// `spearman`), by name.
    pub metrics: BTreeMap<String, f64>,
    /// Majority-class / constant-prediction baseline of the scored task on dev.
    pub baseline: f64,
    /// Dev score at or below the baseline.
    pub degenerate: bool,
    /// Training examples of the scored task (after downsampling).
    pub train_examples: Option<usize>,
    pub wall_s: f64,
    pub examples_per_s: f64,
    /// Each epoch's training time and examples/s (empty for results written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epoch_times: Vec<EpochTime>,
    /// Trained parameters and saved sizes (`None` for results written before them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<RunSizes>,
    /// The run's `result.json` (dev and test predictions).
    pub result_file: PathBuf,
}

/// One run of a grid as the registry knows it: the plan's [`RunMeta`] and what it scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: String,
    #[serde(flatten)]
    pub meta: RunMeta,
    /// The runs this one reads from ([`RunNode::depends_on`]).
    pub depends_on: Vec<String>,
    pub run_dir: PathBuf,
    /// `None` until the run's result file exists and has been ingested.
    pub outcome: Option<Outcome>,
}

/// The layout of [`SCHEMA`], kept in SQLite's `user_version`. The registry is derived from the
/// plan and the result files, so a database of another layout is dropped and re-filled by the
/// next [`Registry::sync`].
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    grid TEXT NOT NULL,
    kind TEXT NOT NULL,
    method TEXT NOT NULL DEFAULT 'full',
    encoder TEXT NOT NULL,
    condition TEXT NOT NULL,
    target TEXT,
    regime TEXT NOT NULL,
    restart INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    scale TEXT,
    phase TEXT NOT NULL,
    depends_on TEXT,          -- run ids, comma-separated
    run_dir TEXT NOT NULL,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, metric)
);
";

/// The registry database of one grid output directory.
pub struct Registry {
    path: PathBuf,
    conn: Connection,
}

impl Registry {
    /// Opens (creating) `path`.
    pub fn open(path: &Path) -> Result<Registry, GridError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| GridError::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| sql(path, e))?;
        // WAL: readers (`report`, `status`) never block the driver's writes, nor it them; the
        // registry lives on the driver's machine (workers never open it), where WAL's shared
        // memory works. A writer that still meets a lock waits instead of failing.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(|e| sql(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| sql(path, e))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| sql(path, e))?;
        if version != SCHEMA_VERSION {
            conn.execute_batch("DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS metrics;")
                .map_err(|e| sql(path, e))?;
        }
        conn.execute_batch(SCHEMA).map_err(|e| sql(path, e))?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| sql(path, e))?;
        Ok(Registry {
            path: path.to_path_buf(),
            conn,
        })
    }

    /// Records every run of `plan` and ingests the result files of finished ones. Returns the
    /// number of runs newly ingested.
    pub fn sync(&mut self, plan: &Plan) -> Result<usize, GridError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sql(&path, e))?;
        let mut ingested = 0;
        for node in &plan.nodes {
            let run_dir = plan.run_dir(&node.id);
            tx.execute(
                "INSERT INTO runs (run_id, grid, kind, encoder, condition, target, regime, restart, seed, scale, phase, depends_on, run_dir, method)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT(run_id) DO UPDATE SET grid = ?2, scale = ?10, run_dir = ?13",
                params![
                    node.id,
                    node.meta.grid,
                    node.meta.kind.as_str(),
                    node.meta.encoder,
                    node.meta.condition,
                    node.meta.target,
                    node.meta.regime.label(),
                    node.meta.restart as i64,
                    node.meta.seed as i64,
                    node.meta.scale,
                    node.meta.phase,
                    (!node.depends_on.is_empty()).then(|| node.depends_on.join(",")),
                    run_dir.display().to_string(),
                    node.meta.method,
                ],
            )
            .map_err(|e| sql(&path, e))?;
            if !plan.is_finished(&node.id) {
                // No result file (never finished, or removed to be run again): no outcome.
                tx.execute(
                    "UPDATE runs SET outcome = NULL WHERE run_id = ?1",
                    params![node.id],
                )
                .map_err(|e| sql(&path, e))?;
                tx.execute("DELETE FROM metrics WHERE run_id = ?1", params![node.id])
                    .map_err(|e| sql(&path, e))?;
                continue;
            }
            let known: Option<String> = tx
                .query_row(
                    "SELECT outcome FROM runs WHERE run_id = ?1",
                    params![node.id],
                    |r| r.get(0),
                )
                .map_err(|e| sql(&path, e))?;
            if known.is_some() {
                continue;
            }
            let Some(outcome) = read_outcome(node, &run_dir)? else {
                continue;
            };
            let text = serde_json::to_string(&outcome).map_err(|e| GridError::json(&run_dir, e))?;
            tx.execute(
                "UPDATE runs SET outcome = ?2 WHERE run_id = ?1",
                params![node.id, text],
            )
            .map_err(|e| sql(&path, e))?;
            for (metric, value) in &outcome.metrics {
                tx.execute(
                    "INSERT OR REPLACE INTO metrics (run_id, metric, value) VALUES (?1, ?2, ?3)",
                    params![node.id, metric, value],
                )
                .map_err(|e| sql(&path, e))?;
            }
            ingested += 1;
        }
        tx.commit().map_err(|e| sql(&path, e))?;
        Ok(ingested)
    }

    /// Every run of `grid`, in insertion order.
    pub fn rows(&self, grid: &str) -> Result<Vec<RunRow>, GridError> {
        /// A row as stored; its enums and outcome are parsed outside rusqlite's closure.
        struct Stored {
            row: RunRow,
            kind: String,
            regime: String,
            outcome: Option<String>,
        }
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT run_id, grid, kind, encoder, condition, target, regime, restart, seed, scale, phase, depends_on, run_dir, outcome, method
                 FROM runs WHERE grid = ?1 ORDER BY rowid",
            )
            .map_err(|e| sql(path, e))?;
        let stored = stmt
            .query_map(params![grid], |r| {
                Ok(Stored {
                    row: RunRow {
                        run_id: r.get(0)?,
                        meta: RunMeta {
                            grid: r.get(1)?,
                            kind: RunKind::Target,
                            method: r.get(14)?,
                            encoder: r.get(3)?,
                            condition: r.get(4)?,
                            target: r.get(5)?,
                            regime: Regime::Full,
                            restart: r.get::<_, i64>(7)? as usize,
                            seed: r.get::<_, i64>(8)? as u64,
                            scale: r.get(9)?,
                            phase: r.get(10)?,
                        },
                        depends_on: r
                            .get::<_, Option<String>>(11)?
                            .map(|d| d.split(',').map(str::to_string).collect())
                            .unwrap_or_default(),
                        run_dir: PathBuf::from(r.get::<_, String>(12)?),
                        outcome: None,
                    },
                    kind: r.get(2)?,
                    regime: r.get(6)?,
                    outcome: r.get(13)?,
                })
            })
            .map_err(|e| sql(path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| sql(path, e))?;
        stored
            .into_iter()
            .map(
                |Stored {
                     mut row,
                     kind,
                     regime,
                     outcome,
                 }| {
                    let id = &row.run_id;
                    row.meta.kind = RunKind::parse(&kind).ok_or_else(|| {
                        GridError::config(
                            path,
                            format!("runs.{id}.kind"),
                            format!("unknown `{kind}`"),
                        )
                    })?;
                    row.meta.regime = Regime::parse(&regime)
                        .map_err(|m| GridError::config(path, format!("runs.{id}.regime"), m))?;
                    row.outcome = outcome
                        .map(|text| {
                            serde_json::from_str(&text).map_err(|e| GridError::json(path, e))
                        })
                        .transpose()?;
                    Ok(row)
                },
            )
            .collect()
    }

    /// Number of runs of `grid` with an ingested outcome.
    pub fn finished(&self, grid: &str) -> Result<usize, GridError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM runs WHERE grid = ?1 AND outcome IS NOT NULL",
                params![grid],
                |r| r.get(0),
            )
            .map_err(|e| sql(&self.path, e))?;
        Ok(n as usize)
    }

    /// The underlying connection, for ad-hoc queries (`cargo xtask grid sql`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn sql(path: &Path, source: rusqlite::Error) -> GridError {
    GridError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a finished run's outcome; `None` while the run has no `summary.json`.
pub fn read_outcome(node: &RunNode, run_dir: &Path) -> Result<Option<Outcome>, GridError> {
    let summary_path = run_dir.join("summary.json");
    if !summary_path.exists() {
        return Ok(None);
    }
    let summary = ExperimentSummary::read(&summary_path)?;
    let phase = summary.phases.last().ok_or_else(|| {
        GridError::config(&summary_path, "phases", "a finished run has no phases")
    })?;
    let [run] = phase.runs.as_slice() else {
        return Err(GridError::config(
            &summary_path,
            "phases[-1].runs",
            format!("a grid run has one seed, found {}", phase.runs.len()),
        ));
    };
    let best = if phase.best_run_dir.is_absolute() {
        phase.best_run_dir.clone()
    } else {
        run_dir.join(format!("{}/seed-{}", node.phase_dir(), run.seed))
    };
    let result_file = best.join("result.json");
    let result = RunResult::read(&result_file)?;
    // The epoch whose model the run ended with (`keep = "best_epoch"` may keep an earlier one).
    let kept = result.kept_record();
    let scored = match (&node.meta.target, node.meta.kind) {
        (Some(t), RunKind::Multitask) => {
            kept.and_then(|e| e.dev.iter().find(|s| s.task.eq_ignore_ascii_case(t)))
        }
        _ => kept.and_then(|e| e.dev.first()),
    };
    let (dev_score, metrics) = match scored {
        Some(s) => (s.score, s.metrics.clone()),
        None => (result.dev_score, BTreeMap::new()),
    };
    let scored_task = scored.map(|s| s.task.as_str());
    let train_examples = scored_task.and_then(|t| train_examples(&result, t));
    // A multitask run is scored on its target alone, so it is judged against that task's
    // baseline (the run-level one averages every task).
    let (baseline, degenerate) = match scored_task.and_then(|t| result.task_baselines.get(t)) {
        Some(&b) if node.meta.kind == RunKind::Multitask => (b, is_degenerate(dev_score, b)),
        _ => (result.baseline, result.degenerate),
    };
    Ok(Some(Outcome {
        dev_score,
        metrics,
        baseline,
        degenerate,
        train_examples,
        wall_s: result.wall_s,
        examples_per_s: result.examples_per_s,
        epoch_times: result.epoch_times.clone(),
        sizes: result.sizes,
        result_file,
    }))
}

/// Training examples of `task` in a run: its downsampling manifest's, else its train split's.
fn train_examples(result: &RunResult, task: &str) -> Option<usize> {
    result
        .manifests
        .iter()
        .find(|m| m.task == task)
        .map(|m| m.ids.len())
        .or_else(|| {
            result
                .data
                .iter()
                .find(|d| d.task == task && d.split == "train")
                .map(|d| d.examples)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::plan::RunMeta;
    use stilts_schema::experiment::ExperimentFile;
    use stilts_schema::results::{EpochRecord, PhaseSummary, SeedScore, TaskScores};

    /// One epoch of a multitask {NLI, RTE} run scoring `nli` and `rte` (accuracy).
    fn epoch(epoch: usize, nli: f64, rte: f64) -> EpochRecord {
        let scores = |task: &str, score: f64| TaskScores {
            task: task.into(),
            split: "dev".into(),
            metrics: BTreeMap::from([("accuracy".to_string(), score)]),
            score,
        };
        EpochRecord {
            epoch,
            step: 10 * epoch as u64,
            train_loss: 0.5,
            aux_loss: None,
            dev: vec![scores("NLI", nli), scores("RTE", rte)],
            dev_score: (nli + rte) / 2.0,
        }
    }

    /// A finished one-seed run (seed 1) of the multitask phase with `history`, as `stilts run`
    /// writes it: the run's `summary.json` and the seed's `result.json`.
    fn write_run(dir: &Path, history: Vec<EpochRecord>, kept_epoch: usize) {
        let seed_dir = dir.join("00-multitask/seed-1");
        std::fs::create_dir_all(&seed_dir).unwrap();
        let kept = match kept_epoch {
            0 => history.last(),
            k => history.get(k - 1),
        };
        let dev_score = kept.map_or(f64::NAN, |e| e.dev_score);
        let result = RunResult {
            phase: "multitask".into(),
            seed: 1,
            kept_epoch,
            dev_score,
            baseline: 0.45,
            task_baselines: BTreeMap::from([("NLI".into(), 0.30), ("RTE".into(), 0.60)]),
            degenerate: is_degenerate(dev_score, 0.45),
            history,
            data: Vec::new(),
            manifests: Vec::new(),
            weights_sha256: "0".repeat(64),
            dev_predictions: Vec::new(),
            test_predictions: Vec::new(),
            steps: 10,
            train_examples_seen: 80,
            wall_s: 1.0,
            examples_per_s: 1.0,
            resumed: false,
            loss_curve: Vec::new(),
            epoch_times: Vec::new(),
            sizes: None,
        };
        let summary = ExperimentSummary {
            name: "g-0123456789abcdef".into(),
            phases: vec![PhaseSummary {
                phase: "multitask".into(),
                runs: vec![SeedScore {
                    seed: 1,
                    dev_score,
                    degenerate: result.degenerate,
                    wall_s: 1.0,
                }],
                best_seed: 1,
                best_dev_score: dev_score,
                mean: dev_score,
                std: 0.0,
                min: dev_score,
                max: dev_score,
                baseline: 0.45,
                degenerate: usize::from(result.degenerate),
                best_run_dir: seed_dir.clone(),
            }],
            wall_s: 1.0,
        };
        let write = |path: PathBuf, text: String| std::fs::write(path, text).unwrap();
        write(
            seed_dir.join("result.json"),
            serde_json::to_string(&result).unwrap(),
        );
        write(
            dir.join("summary.json"),
            serde_json::to_string(&summary).unwrap(),
        );
    }

    /// The plan's node of that run: {NLI, RTE} scored on RTE.
    fn multitask_node() -> RunNode {
        RunNode {
            id: "0123456789abcdef".into(),
            meta: RunMeta {
                grid: "g".into(),
                kind: RunKind::Multitask,
                method: "full".into(),
                encoder: "E".into(),
                condition: "{NLI,RTE}".into(),
                target: Some("RTE".into()),
                regime: Regime::Full,
                restart: 0,
                seed: 1,
                scale: None,
                phase: "multitask".into(),
            },
            depends_on: Vec::new(),
            experiment: ExperimentFile::default(),
        }
    }

    /// A finished one-epoch multitask run {NLI, RTE} as `stilts run` writes it.
    fn multitask_run(dir: &Path, rte_score: f64) -> RunNode {
        write_run(dir, vec![epoch(1, 0.40, rte_score)], 0);
        multitask_node()
    }

    #[test]
    fn a_multitask_run_is_scored_and_judged_on_its_target_alone() {
        let tmp = tempfile::tempdir().unwrap();
        // RTE at 0.55: above the run's mean baseline (0.45) but below RTE's own (0.60).
        let node = multitask_run(tmp.path(), 0.55);
        let out = read_outcome(&node, tmp.path()).unwrap().unwrap();
        assert_eq!(out.dev_score, 0.55);
        assert_eq!(out.metrics["accuracy"], 0.55);
        assert_eq!(out.baseline, 0.60);
        assert!(out.degenerate);
        let node = multitask_run(tmp.path(), 0.70);
        assert!(!read_outcome(&node, tmp.path()).unwrap().unwrap().degenerate);
    }

    #[test]
    fn a_run_is_scored_on_the_epoch_it_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A second, worse epoch; with `keep = "best_epoch"` the run keeps the first.
        let history = vec![epoch(1, 0.40, 0.55), epoch(2, 0.35, 0.50)];
        write_run(tmp.path(), history.clone(), 0);
        let node = multitask_node();
        let out = read_outcome(&node, tmp.path()).unwrap().unwrap();
        assert_eq!(out.dev_score, 0.50, "without kept_epoch: the last epoch");
        write_run(tmp.path(), history, 1);
        let out = read_outcome(&node, tmp.path()).unwrap().unwrap();
        assert_eq!(out.dev_score, 0.55);
        assert_eq!(out.metrics["accuracy"], 0.55);
    }

    #[test]
    fn a_registry_of_an_older_layout_is_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("registry.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, grid TEXT NOT NULL);
             INSERT INTO runs VALUES ('x', 'g');",
        )
        .unwrap();
        drop(old);
        let reg = Registry::open(&path).unwrap();
        assert!(reg.rows("g").unwrap().is_empty());
        let version: i64 = reg
            .connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Reopening the current layout keeps it.
        reg.connection()
            .execute(
                "INSERT INTO runs (run_id, grid, kind, encoder, condition, regime, restart, seed, phase, run_dir)
                 VALUES ('y', 'g', 'target', 'E', 'none', 'full', 0, 1, 'RTE', 'r')",
                [],
            )
            .unwrap();
        drop(reg);
        let rows = Registry::open(&path).unwrap().rows("g").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].meta.phase, "RTE");
    }

    #[test]
    fn a_reader_in_a_transaction_does_not_block_the_writer() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("registry.sqlite");
        let reg = Registry::open(&path).unwrap();
        let mode: String = reg
            .connection()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // `report` reading while the driver records a run (without WAL the insert's commit
        // would wait for the reader, then fail).
        let reader = Registry::open(&path).unwrap();
        reader.connection().execute_batch("BEGIN").unwrap();
        assert!(reader.rows("g").unwrap().is_empty());
        reg.connection()
            .execute(
                "INSERT INTO runs (run_id, grid, kind, encoder, condition, regime, restart, seed, phase, run_dir)
                 VALUES ('y', 'g', 'target', 'E', 'none', 'full', 0, 1, 'RTE', 'r')",
                [],
            )
            .unwrap();
        // The reader's snapshot is unchanged until its transaction ends.
        assert!(reader.rows("g").unwrap().is_empty());
        reader.connection().execute_batch("COMMIT").unwrap();
        assert_eq!(reader.rows("g").unwrap().len(), 1);
    }

    #[test]
    fn a_run_removed_to_be_run_again_loses_its_outcome_until_it_finishes_again() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = Plan {
            grid: "g".into(),
            output_dir: tmp.path().to_path_buf(),
            nodes: vec![multitask_node()],
        };
        let id = plan.nodes[0].id.clone();
        let dir = plan.run_dir(&id);
        std::fs::create_dir_all(&dir).unwrap();
        multitask_run(&dir, 0.55);
        let mut reg = Registry::open(&tmp.path().join("registry.sqlite")).unwrap();
        let score = |reg: &Registry| {
            reg.rows("g").unwrap()[0]
                .outcome
                .as_ref()
                .map(|o| o.dev_score)
        };
        assert_eq!(reg.sync(&plan).unwrap(), 1);
        assert_eq!(score(&reg), Some(0.55));
        std::fs::remove_dir_all(&dir).unwrap();
        reg.sync(&plan).unwrap();
        assert_eq!(score(&reg), None, "a stale outcome would hide the rerun");
        std::fs::create_dir_all(&dir).unwrap();
        multitask_run(&dir, 0.70);
        assert_eq!(reg.sync(&plan).unwrap(), 1);
        assert_eq!(score(&reg), Some(0.70));
    }

    #[test]
    fn an_unfinished_run_has_no_outcome() {
        let tmp = tempfile::tempdir().unwrap();
        let node = multitask_run(tmp.path(), 0.5);
        std::fs::remove_file(tmp.path().join("summary.json")).unwrap();
        assert!(read_outcome(&node, tmp.path()).unwrap().is_none());
    }
}
