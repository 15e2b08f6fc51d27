//! The learning-rate schedule of BERT fine-tuning: linear warmup from 0 over the first
//! `warmup_proportion` of the optimizer steps, then linear decay to 0 at the last step
//! (Hugging Face's `get_linear_schedule_with_warmup`).
//!
//! ```
//! use stilts_train::schedule::LinearWarmupDecay;
//! let s = LinearWarmupDecay::new(2e-5, 100, 0.1);
//! assert_eq!(s.warmup_steps(), 10);
//! assert_eq!(s.lr(0), 0.0);
//! assert!((s.lr(5) - 1e-5).abs() < 1e-18);
//! assert!((s.lr(10) - 2e-5).abs() < 1e-18);
//! assert_eq!(s.lr(100), 0.0);
//! ```

use serde::{Deserialize, Serialize};
use stilts_schema::experiment::ScheduleKind;

/// Linear warmup then linear decay (or, for [`ScheduleKind::Constant`], the peak rate to the
/// end).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearWarmupDecay {
    peak: f64,
    total_steps: u64,
    warmup_steps: u64,
    #[serde(default)]
    constant: bool,
}

impl LinearWarmupDecay {
    /// `warmup_steps = floor(warmup_proportion * total_steps)` (as `int()` in the reference
    /// scripts).
    pub fn new(peak: f64, total_steps: u64, warmup_proportion: f64) -> Self {
        let warmup_steps = (warmup_proportion * total_steps as f64).floor() as u64;
        LinearWarmupDecay {
            peak,
            total_steps,
            warmup_steps: warmup_steps.min(total_steps),
            constant: false,
        }
    }

    /// The schedule of `kind`: [`LinearWarmupDecay::new`], or the same warmup followed by the
    /// peak rate.
    pub fn of_kind(
        kind: ScheduleKind,
        peak: f64,
        total_steps: u64,
        warmup_proportion: f64,
    ) -> Self {
        LinearWarmupDecay {
            constant: kind != ScheduleKind::Linear,
            ..LinearWarmupDecay::new(peak, total_steps, warmup_proportion)
        }
    }

    /// The number of warmup steps.
    pub fn warmup_steps(&self) -> u64 {
        self.warmup_steps
    }

    /// The number of optimizer steps in the schedule.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// The learning rate used by optimizer step `step` (0-based): `peak * step / warmup` while
    /// `step < warmup`, then `peak * (total - step) / (total - warmup)`, 0 from `total` on.
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak * step as f64 / self.warmup_steps as f64;
        }
        if self.constant {
            return self.peak;
        }
        if step >= self.total_steps {
            return 0.0;
        }
        let left = (self.total_steps - step) as f64;
        let span = (self.total_steps - self.warmup_steps).max(1) as f64;
        self.peak * left / span
    }
}

/// The factor the rate is multiplied by at each plateau (jiant's `lr_decay_factor`).
pub const PLATEAU_FACTOR: f64 = 0.5;
/// Epoch ends without improvement tolerated before the rate drops (jiant's `lr_patience`).
pub const PLATEAU_PATIENCE: usize = 1;
/// How much a dev score must beat the best to count as an improvement (absolute).
pub const PLATEAU_THRESHOLD: f64 = 1e-4;
/// A run stops once its rate falls below this (jiant's `min_lr`).
pub const PLATEAU_MIN_LR: f64 = 1e-6;

/// How many times `ReduceLROnPlateau` (mode max, [`PLATEAU_PATIENCE`], [`PLATEAU_THRESHOLD`]
/// absolute, no cooldown) has cut the rate after these dev scores, one per epoch end: a pure
/// function of the history, so a resumed run gets the same rate.
pub fn plateau_cuts(dev_scores: &[f64]) -> u32 {
    let mut best = f64::NEG_INFINITY;
    let mut bad = 0;
    let mut cuts = 0;
    for &score in dev_scores {
        if score > best + PLATEAU_THRESHOLD {
            best = score;
            bad = 0;
        } else {
            bad += 1;
        }
        if bad > PLATEAU_PATIENCE {
            cuts += 1;
            bad = 0;
        }
    }
    cuts
}

/// The factor the `kind` schedule's rate is multiplied by after these dev scores: 1 except
/// for [`ScheduleKind::Plateau`].
pub fn rate_scale(kind: ScheduleKind, dev_scores: &[f64]) -> f64 {
    match kind {
        ScheduleKind::Plateau => PLATEAU_FACTOR.powi(plateau_cuts(dev_scores) as i32),
        ScheduleKind::Linear | ScheduleKind::Constant => 1.0,
    }
}

/// Why a run stops before its last epoch, if it does, after these dev scores: no strict
/// improvement over the best for `patience + 1` epoch ends (jiant's rule), or a plateau
/// schedule's cuts taking the rate below [`PLATEAU_MIN_LR`] (a peak rate already below it
/// runs until its first cut).
pub fn early_stop(
    kind: ScheduleKind,
    peak: f64,
    patience: Option<usize>,
    dev_scores: &[f64],
) -> Option<String> {
    if let Some(patience) = patience {
        let best =
            dev_scores
                .iter()
                .enumerate()
                .fold(None, |best: Option<(usize, f64)>, (i, &s)| match best {
                    Some((_, b)) if s <= b || s.is_nan() => best,
                    _ => Some((i, s)),
                });
        if let Some((i, _)) = best
            && dev_scores.len() - i > patience + 1
        {
            return Some(format!(
                "no dev improvement in the {} epochs since the best (epoch {})",
                dev_scores.len() - 1 - i,
                i + 1
            ));
        }
    }
    let lr = peak * rate_scale(kind, dev_scores);
    (kind == ScheduleKind::Plateau && lr < PLATEAU_MIN_LR && plateau_cuts(dev_scores) > 0)
        .then(|| format!("the plateau schedule cut the rate to {lr:e}, below {PLATEAU_MIN_LR:e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn plateau_cuts_after_two_checks_without_improvement() {
        use super::*;
        assert_eq!(plateau_cuts(&[0.5, 0.6, 0.7]), 0);
        // 0.60005 is within the threshold: not an improvement.
        assert_eq!(plateau_cuts(&[0.5, 0.6, 0.60005, 0.59]), 1);
        assert_eq!(plateau_cuts(&[0.5, 0.4, 0.4, 0.4, 0.4]), 2);
        assert_eq!(
            rate_scale(ScheduleKind::Plateau, &[0.5, 0.4, 0.4, 0.4, 0.4]),
            0.25
        );
        assert_eq!(rate_scale(ScheduleKind::Constant, &[0.5, 0.4, 0.4]), 1.0);
        // jiant's rule: stop after patience + 1 checks without a strict improvement.
        let stop = |p, s: &[f64]| early_stop(ScheduleKind::Constant, 1e-4, p, s);
        assert_eq!(stop(Some(2), &[0.5, 0.6, 0.6, 0.6]), None);
        assert!(stop(Some(2), &[0.5, 0.6, 0.6, 0.55, 0.6]).is_some());
        assert_eq!(stop(None, &[0.5, 0.4, 0.4, 0.4, 0.4]), None);
        // 1e-4 halved 7 times is below 1e-6: the 15th flat epoch end makes the 7th cut.
        let flat = [0.5; 15];
        assert!(early_stop(ScheduleKind::Plateau, 1e-4, None, &flat).is_some());
        assert!(early_stop(ScheduleKind::Plateau, 1e-4, None, &flat[..14]).is_none());
    }

    use super::*;

    #[test]
    fn exact_values() {
        let s = LinearWarmupDecay::new(1e-3, 20, 0.1);
        assert_eq!(s.warmup_steps(), 2);
        let got: Vec<f64> = [0, 1, 2, 3, 11, 19, 20, 25].map(|i| s.lr(i)).to_vec();
        let want = [
            0.0,
            5e-4,
            1e-3,
            1e-3 * 17.0 / 18.0,
            1e-3 * 9.0 / 18.0,
            1e-3 / 18.0,
            0.0,
            0.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn no_warmup_and_all_warmup() {
        let s = LinearWarmupDecay::new(1.0, 4, 0.0);
        assert_eq!([0, 1, 2, 3].map(|i| s.lr(i)), [1.0, 0.75, 0.5, 0.25]);
        let s = LinearWarmupDecay::new(1.0, 4, 1.0);
        assert_eq!([0, 1, 2, 3].map(|i| s.lr(i)), [0.0, 0.25, 0.5, 0.75]);
        let s = LinearWarmupDecay::new(1.0, 0, 0.1);
        assert_eq!(s.lr(0), 0.0);
    }
}
