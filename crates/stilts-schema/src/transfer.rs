//! The transfer matrix as a file: `transfer.csv`, written by `cargo xtask report` for a grid
//! with intermediate tasks and read by `stilts rank --matrix`. One line per cell: an encoder, a
//! regime, an intermediate (its name in the grid and its task as the grid names it) and a
//! target; for a finished cell the gain of the best-on-dev STILTs run over the best-on-dev
//! baseline run with its paired-bootstrap interval, and both runs' dev scores (fractions, not
//! points); `status` is `done`, `same task` (the intermediate is the target, never trained) or
//! why there is no result yet.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SchemaError;

/// The `status` of a finished cell.
pub const DONE: &str = "done";

/// One cell of a transfer matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferCell {
    /// The encoder's row label in the grid.
    pub encoder: String,
    /// The training regime (`1k`, `full`).
    pub regime: String,
    /// The intermediate's name in the grid (`MNLI`).
    pub intermediate: String,
    /// The intermediate's task as the grid names it (`MNLI`, `configs/tasks/mnli_subset.toml`).
    pub intermediate_task: String,
    /// The target task.
    pub target: String,
    /// STILTs minus baseline on the whole dev set.
    pub gain: Option<f64>,
    /// 2.5th percentile of the resampled gains.
    pub ci_low: Option<f64>,
    /// 97.5th percentile.
    pub ci_high: Option<f64>,
    /// Fraction of resamples where STILTs scores higher.
    pub p_win: Option<f64>,
    /// The baseline run's dev score.
    pub baseline: Option<f64>,
    /// The STILTs run's dev score.
    pub stilts: Option<f64>,
    /// The dev score of every finished restart of the STILTs condition, `;`-separated (the
    /// best of them is `stilts`): what uncertainty over restarts is drawn from.
    #[serde(default)]
    pub restart_scores: String,
    /// `done`, `same task`, or why the cell has no result.
    pub status: String,
}

/// Joins restart scores for [`TransferCell::restart_scores`].
pub fn join_scores(scores: &[f64]) -> String {
    scores
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(";")
}

impl TransferCell {
    /// The restart scores, `None` when one is not a finite number.
    pub fn restarts(&self) -> Option<Vec<f64>> {
        if self.restart_scores.trim().is_empty() {
            return Some(Vec::new());
        }
        self.restart_scores
            .split(';')
            .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect()
    }

    /// The gain and the STILTs score of a finished cell.
    pub fn result(&self) -> Option<(f64, f64)> {
        match (self.status == DONE, self.gain, self.stilts) {
            (true, Some(g), Some(s)) if g.is_finite() && s.is_finite() => Some((g, s)),
            _ => None,
        }
    }
}

fn csv_error(path: &Path, line: Option<u64>, message: String) -> SchemaError {
    SchemaError::Csv {
        path: path.to_path_buf(),
        line: line.unwrap_or(0),
        message,
    }
}

/// The cells as CSV text, a header line first.
pub fn to_csv(cells: &[TransferCell]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for cell in cells {
        // Serializing strings and numbers into memory cannot fail.
        let _ = writer.serialize(cell);
    }
    if cells.is_empty() {
        let _ = writer.write_record([
            "encoder",
            "regime",
            "intermediate",
            "intermediate_task",
            "target",
            "gain",
            "ci_low",
            "ci_high",
            "p_win",
            "baseline",
            "stilts",
            "restart_scores",
            "status",
        ]);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Reads a `transfer.csv`; errors name the file and line.
pub fn read_csv(path: &Path) -> Result<Vec<TransferCell>, SchemaError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| {
        let line = e.position().map(|p| p.line());
        csv_error(path, line, e.to_string())
    })?;
    let mut cells = Vec::new();
    for record in reader.deserialize::<TransferCell>() {
        let cell = record.map_err(|e| {
            let line = e.position().map(|p| p.line());
            let message = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => match err.field() {
                    Some(i) => format!("column {}: {err}", i + 1),
                    None => err.to_string(),
                },
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("{len} fields, the header has {expected_len}"),
                _ => e.to_string(),
            };
            csv_error(path, line, message)
        })?;
        cells.push(cell);
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_bad_lines() {
        let done = TransferCell {
            encoder: "MiniLM".into(),
            regime: "1k".into(),
            intermediate: "MNLI".into(),
            intermediate_task: "configs/tasks/mnli_subset.toml".into(),
            target: "RTE".into(),
            gain: Some(0.015),
            ci_low: Some(-0.01),
            ci_high: Some(0.04),
            p_win: Some(0.83),
            baseline: Some(0.55),
            stilts: Some(0.565),
            restart_scores: join_scores(&[0.54, 0.565]),
            status: DONE.into(),
        };
        let same = TransferCell {
            intermediate: "RTE".into(),
            intermediate_task: "RTE".into(),
            gain: None,
            ci_low: None,
            ci_high: None,
            p_win: None,
            baseline: None,
            stilts: None,
            restart_scores: String::new(),
            status: "same task".into(),
            ..done.clone()
        };
        let text = to_csv(&[done.clone(), same.clone()]);
        assert!(text.starts_with("encoder,regime,intermediate,intermediate_task,target,"));
        assert!(
            text.contains("MiniLM,1k,RTE,RTE,RTE,,,,,,,,same task\n"),
            "{text}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("transfer.csv");
        std::fs::write(&path, &text).unwrap();
        let read = read_csv(&path).unwrap();
        assert_eq!(read, [done.clone(), same.clone()]);
        assert_eq!(read[0].result(), Some((0.015, 0.565)));
        assert_eq!(read[1].result(), None);
        assert_eq!(read[0].restarts(), Some(vec![0.54, 0.565]));
        assert_eq!(read[1].restarts(), Some(vec![]));
        std::fs::write(&path, text.replace("0.565", "lots")).unwrap();
        let err = read_csv(&path).unwrap_err().to_string();
        assert!(
            err.contains("transfer.csv:2:") && err.contains("column 11"),
            "{err}"
        );
        assert!(to_csv(&[]).starts_with("encoder,regime,"));
    }
}
