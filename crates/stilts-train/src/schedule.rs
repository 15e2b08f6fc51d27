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
            constant: kind == ScheduleKind::Constant,
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

#[cfg(test)]
mod tests {
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
