//! The optimizer of a phase and gradient clipping.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use stilts_models::bert::{AdamWGroupsConfig, BertAdamGroupsConfig};

use crate::config::{OptimizerKind, Recipe};

/// A fresh optimizer for `recipe`: AdamW with Hugging Face's decay groups, or BertAdam.
pub fn build_optimizer(recipe: &Recipe) -> ModuleOptimizer {
    match recipe.optimizer {
        OptimizerKind::AdamW => AdamWGroupsConfig::new()
            .with_beta_1(recipe.beta_1)
            .with_beta_2(recipe.beta_2)
            .with_epsilon(recipe.epsilon)
            .with_weight_decay(recipe.weight_decay)
            .init(),
        OptimizerKind::BertAdam => BertAdamGroupsConfig::new()
            .with_beta_1(recipe.beta_1)
            .with_beta_2(recipe.beta_2)
            .with_epsilon(recipe.epsilon)
            .with_weight_decay(recipe.weight_decay)
            .with_max_grad_norm(recipe.max_grad_norm.map(|n| n as f32))
            .init(),
    }
}

/// Sets every gradient `g` to `g * min(1, max_norm / (‖g‖ + 1e-6))`, where `‖g‖` is the norm
/// over all parameters together (PyTorch's `clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum(); // [1]
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads
                    .register::<D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut sum = SumSquares { grads, total: None };
    model.visit(&mut sum);
    let Some(total) = sum.total else {
        return 0.0;
    };
    let norm = f64::from(scalar(total)).sqrt();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale { grads, factor });
    }
    norm
}

/// The value of a one-element tensor (NaN if it has none).
pub fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().iter::<f32>().next().unwrap_or(f32::NAN)
}
