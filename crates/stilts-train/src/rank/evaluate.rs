//! How well a ranking predicts measured transfer: each method's scores against the STILTs scores
//! of a transfer matrix (`transfer.csv` from `cargo xtask report`, the `transfer` grid), per
//! target. Spearman's rho (as `scipy.stats.spearmanr`), NDCG@k (as `sklearn.metrics.ndcg_score`:
//! linear gains, tied scores averaged) and regret@k (Poth et al. 2021; Schulte et al. 2024: how
//! far, in percent of the best candidate's score, the best of the method's top k falls short).
//! Checked against SciPy and scikit-learn by `scripts/make_rank_fixtures.py`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stilts_data::metrics;

use super::{MethodRanking, RankError, Ranking};

/// One finished cell of a transfer matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixCell {
    /// The encoder's row label in the grid.
    pub encoder: String,
    /// The training regime (`1k`, `full`).
    pub regime: String,
    /// The intermediate's name in the grid (`MNLI`).
    pub intermediate: String,
    /// The intermediate's task as the grid names it (`configs/tasks/mnli_subset.toml`).
    pub intermediate_task: String,
    /// The target task.
    pub target: String,
    /// The best-on-dev STILTs run's score minus the baseline's.
    pub gain: f64,
    /// The best-on-dev STILTs run's dev score.
    pub stilts: f64,
    /// Every finished restart's dev score (empty in matrices written before they were kept).
    pub restarts: Vec<f64>,
}

/// The finished cells of a `transfer.csv` ([`stilts_schema::transfer`]).
pub fn read_matrix(path: &Path) -> Result<Vec<MatrixCell>, RankError> {
    let cells = stilts_schema::transfer::read_csv(path)?;
    let mut out = Vec::new();
    for c in cells {
        let Some((gain, stilts)) = c.result() else {
            continue;
        };
        let restarts = c.restarts().ok_or_else(|| {
            RankError::Options(format!(
                "{}: restart_scores `{}` of {} -> {} is not a list of numbers",
                path.display(),
                c.restart_scores,
                c.intermediate,
                c.target
            ))
        })?;
        out.push(MatrixCell {
            encoder: c.encoder,
            regime: c.regime,
            intermediate: c.intermediate,
            intermediate_task: c.intermediate_task,
            target: c.target,
            gain,
            stilts,
            restarts,
        });
    }
    Ok(out)
}

/// Spearman's rank correlation (`stilts_data::metrics::spearman`, SciPy's), `NaN` when there
/// are fewer than 2 values or either side is constant (undefined, not 0, for a ranking).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let constant = |v: &[f64]| v.iter().all(|a| *a == v[0]);
    if x.len() < 2 || constant(x) || constant(y) {
        return f64::NAN;
    }
    metrics::spearman(x, y).unwrap_or(f64::NAN)
}

/// DCG@k of `relevance` ordered by `scores`, tied scores sharing their positions' discounts
/// (`sklearn.metrics._ranking._tie_averaged_dcg`).
fn dcg(relevance: &[f64], scores: &[f64], k: usize) -> f64 {
    let n = relevance.len();
    let discount: Vec<f64> = (0..n)
        .map(|i| {
            if i < k {
                1.0 / ((i + 2) as f64).log2()
            } else {
                0.0
            }
        })
        .collect();
    let mut cumulative = Vec::with_capacity(n);
    let mut total = 0.0;
    for d in &discount {
        total += d;
        cumulative.push(total);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut sum = 0.0;
    let mut start = 0;
    while start < n {
        let mut end = start;
        while end + 1 < n && scores[order[end + 1]] == scores[order[start]] {
            end += 1;
        }
        let count = (end - start + 1) as f64;
        let mean: f64 = order[start..=end]
            .iter()
            .map(|&i| relevance[i])
            .sum::<f64>()
            / count;
        let before = if start == 0 {
            0.0
        } else {
            cumulative[start - 1]
        };
        sum += mean * (cumulative[end] - before);
        start = end + 1;
    }
    sum
}

/// NDCG@k with linear gains (`sklearn.metrics.ndcg_score(k=k)`); 0 when every relevance is 0.
pub fn ndcg(relevance: &[f64], scores: &[f64], k: usize) -> f64 {
    let ideal = dcg(relevance, relevance, k);
    if ideal == 0.0 {
        return 0.0;
    }
    dcg(relevance, scores, k) / ideal
}

/// Regret@k in percent: `100 * (best - best of the first k of order) / best`, with `order`
/// the candidates' indices as the method ranks them.
pub fn regret(relevance: &[f64], order: &[usize], k: usize) -> f64 {
    let best = relevance.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let picked = order
        .iter()
        .take(k)
        .map(|&i| relevance[i])
        .fold(f64::NEG_INFINITY, f64::max);
    100.0 * (best - picked) / best.abs()
}

/// One method's quality on one target of a matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodQuality {
    /// The method.
    pub method: String,
    /// Spearman's rho between its scores and the candidates' STILTs scores.
    pub spearman: Option<f64>,
    /// NDCG@3 with the STILTs scores (floored at 0) as relevance.
    pub ndcg_at_3: Option<f64>,
    /// Regret@1 in percent of the best candidate's STILTs score.
    pub regret_at_1: Option<f64>,
    /// Regret@3 in percent.
    pub regret_at_3: Option<f64>,
    /// 95% intervals of the four over restarts (see [`restart_bootstrap`]), in that order;
    /// absent when a candidate's restarts are not in the matrix.
    pub intervals: Option<Intervals>,
    /// The method's cost in seconds (from the ranking).
    pub seconds: f64,
}

/// 2.5th and 97.5th percentiles of each quality over bootstrap resamples of the restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    /// Resamples drawn.
    pub resamples: usize,
    /// Spearman's rho.
    pub spearman: Option<[f64; 2]>,
    /// NDCG@3.
    pub ndcg_at_3: [f64; 2],
    /// Regret@1.
    pub regret_at_1: [f64; 2],
    /// Regret@3.
    pub regret_at_3: [f64; 2],
}

fn interval(mut v: Vec<f64>) -> Option<[f64; 2]> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some([metrics::percentile(&v, 2.5), metrics::percentile(&v, 97.5)])
}

/// Uncertainty over restarts: each resample redraws every candidate's restarts with
/// replacement and takes the best (the paper's best-on-dev restart) as its measured score, then
/// judges the method's fixed scores and order against it. `None` when a candidate has no
/// restart scores.
pub fn restart_bootstrap(
    scores: &[f64],
    order: &[usize],
    restarts: &[Vec<f64>],
    resamples: usize,
    seed: u64,
) -> Option<Intervals> {
    if resamples == 0 || restarts.is_empty() || restarts.iter().any(Vec::is_empty) {
        return None;
    }
    let mut rng = stilts_data::rng::Rng::derive(seed, &["rank-restart-bootstrap".into()]);
    let (mut rho, mut nd, mut r1, mut r3) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..resamples {
        let measured: Vec<f64> = restarts
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|_| r[rng.below_usize(r.len())])
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        let relevance: Vec<f64> = measured.iter().map(|s| s.max(0.0)).collect();
        rho.push(spearman(scores, &measured));
        nd.push(ndcg(&relevance, scores, 3));
        r1.push(regret(&measured, order, 1));
        r3.push(regret(&measured, order, 3));
    }
    Some(Intervals {
        resamples,
        spearman: interval(rho),
        ndcg_at_3: interval(nd)?,
        regret_at_1: interval(r1)?,
        regret_at_3: interval(r3)?,
    })
}

/// A ranking judged against one encoder and regime of a transfer matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The matrix file.
    pub matrix: PathBuf,
    /// Its encoder and regime.
    pub encoder: String,
    /// The regime.
    pub regime: String,
    /// The target.
    pub target: String,
    /// Candidates both ranked and measured, in the ranking's candidate order.
    pub candidates: Vec<String>,
    /// Their measured STILTs scores and gains over the baseline, in that order.
    pub stilts: Vec<f64>,
    /// The gains.
    pub gains: Vec<f64>,
    /// Ranked candidates the matrix has no finished cell for.
    pub unmeasured: Vec<String>,
    /// One row per method.
    pub methods: Vec<MethodQuality>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Resamples of [`restart_bootstrap`] per evaluation.
pub const RESAMPLES: usize = 1000;

fn quality(
    method: &MethodRanking,
    names: &[String],
    stilts: &[f64],
    restarts: &[Vec<f64>],
) -> MethodQuality {
    let score_of = |name: &str| {
        method
            .ranking
            .iter()
            .find(|r| r.candidate == name)
            .and_then(|r| r.score)
            .unwrap_or(f64::MIN)
    };
    let scores: Vec<f64> = names.iter().map(|n| score_of(n)).collect();
    let order: Vec<usize> = method
        .ranking
        .iter()
        .filter_map(|r| names.iter().position(|n| *n == r.candidate))
        .collect();
    let relevance: Vec<f64> = stilts.iter().map(|s| s.max(0.0)).collect();
    let measured = !names.is_empty();
    MethodQuality {
        method: method.method.clone(),
        spearman: finite(spearman(&scores, stilts)),
        ndcg_at_3: measured
            .then(|| ndcg(&relevance, &scores, 3))
            .and_then(finite),
        regret_at_1: measured.then(|| regret(stilts, &order, 1)).and_then(finite),
        regret_at_3: measured.then(|| regret(stilts, &order, 3)).and_then(finite),
        intervals: restart_bootstrap(&scores, &order, restarts, RESAMPLES, 1),
        seconds: method.seconds,
    }
}

/// Judges `ranking` against the matrix's cells for its target: one [`Evaluation`] per encoder
/// and regime the matrix holds for that target. A candidate matches a cell when its task name
/// or the reference it was named by is the cell's intermediate or intermediate task.
pub fn evaluate(
    ranking: &Ranking,
    references: &[(String, String)],
    cells: &[MatrixCell],
    matrix: &Path,
) -> Result<Vec<Evaluation>, RankError> {
    let target = &ranking.target.task;
    let mine: Vec<&MatrixCell> = cells.iter().filter(|c| c.target == *target).collect();
    if mine.is_empty() {
        return Err(RankError::Options(format!(
            "{} has no finished cell for the target {target}",
            matrix.display()
        )));
    }
    let mut groups: Vec<(String, String)> = Vec::new();
    for c in &mine {
        let key = (c.encoder.clone(), c.regime.clone());
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    let matches = |candidate: &str, cell: &MatrixCell| {
        let reference = references
            .iter()
            .find(|(name, _)| name == candidate)
            .map(|(_, r)| r.as_str());
        [Some(candidate), reference]
            .into_iter()
            .flatten()
            .any(|n| n == cell.intermediate || n == cell.intermediate_task)
    };
    let mut out = Vec::new();
    for (encoder, regime) in groups {
        let group: Vec<&&MatrixCell> = mine
            .iter()
            .filter(|c| c.encoder == encoder && c.regime == regime)
            .collect();
        let (mut names, mut stilts, mut gains, mut unmeasured) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut restarts = Vec::new();
        for c in &ranking.candidates {
            match group.iter().find(|cell| matches(&c.task, cell)) {
                Some(cell) => {
                    names.push(c.task.clone());
                    stilts.push(cell.stilts);
                    gains.push(cell.gain);
                    restarts.push(cell.restarts.clone());
                }
                None => unmeasured.push(c.task.clone()),
            }
        }
        let methods = ranking
            .methods
            .iter()
            .map(|m| quality(m, &names, &stilts, &restarts))
            .collect();
        out.push(Evaluation {
            matrix: matrix.to_path_buf(),
            encoder,
            regime,
            target: target.clone(),
            candidates: names,
            stilts,
            gains,
            unmeasured,
            methods,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_correlation_and_regret() {
        // Tied values share their average rank (SciPy: 0.9486832980505138).
        let tied = spearman(&[3.0, 1.0, 3.0, 2.0], &[4.0, 1.0, 3.0, 2.0]);
        assert!((tied - 4.5 / 22.5f64.sqrt()).abs() < 1e-12, "{tied}");
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        assert_eq!(regret(&[0.5, 0.8, 0.6], &[1, 0, 2], 1), 0.0);
        assert!((regret(&[0.5, 0.8, 0.6], &[0, 2, 1], 2) - 25.0).abs() < 1e-12);
    }

    #[test]
    fn restart_bootstrap_is_the_point_with_one_restart_and_spreads_with_more() {
        let scores = [0.9, 0.2, 0.5];
        let order = [0, 2, 1];
        let one = [vec![0.6], vec![0.8], vec![0.7]];
        let ci = restart_bootstrap(&scores, &order, &one, 200, 1).unwrap();
        let r1 = regret(&[0.6, 0.8, 0.7], &order, 1);
        assert_eq!(ci.regret_at_1, [r1, r1]);
        assert_eq!(ci.spearman, Some([-1.0, -1.0]));
        let many = [vec![0.6, 0.85], vec![0.8, 0.5], vec![0.7]];
        let ci = restart_bootstrap(&scores, &order, &many, 500, 1).unwrap();
        assert!(ci.regret_at_1[0] < ci.regret_at_1[1], "{ci:?}");
        assert_eq!(
            restart_bootstrap(&scores, &order, &[vec![], vec![1.0], vec![1.0]], 10, 1),
            None
        );
    }
}
