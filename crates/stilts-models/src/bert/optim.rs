use burn::config::Config;
use burn::module::ParamGroup;
use burn::optim::grad_clipping::GradientClipping;
use burn::optim::{
    AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::{Device, Tensor};

use crate::kernels::{self, cpu::AdamWStep};

/// Parameters exempt from weight decay in Hugging Face's fine-tuning recipe (and in Radford et
/// al.'s, which decays matrices only): every bias and every LayerNorm weight, burn's `gamma` and
/// `beta` (matched against full module paths).
pub const NO_DECAY_PATTERN: &str = r"(^|\.)(bias|gamma|beta)$";

/// AdamW (decoupled weight decay, as `torch.optim.AdamW`) with two parameter groups: weights
/// decay by `weight_decay`, parameters matching [`NO_DECAY_PATTERN`] do not decay.
#[derive(Config, Debug)]
pub struct AdamWGroupsConfig {
    /// First moment decay.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// Second moment decay.
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// Added to the root of the second moment.
    #[config(default = 1e-6)]
    pub epsilon: f32,
    /// Decoupled weight decay of the decaying group.
    #[config(default = 0.01)]
    pub weight_decay: f32,
}

impl AdamWGroupsConfig {
    /// Builds the optimizer for any module; step it with `optimizer.step(lr, module, grads)`.
    pub fn init(&self) -> ModuleOptimizer {
        let group = |weight_decay: f32| {
            let config = AdamWConfig::new()
                .with_beta_1(self.beta_1)
                .with_beta_2(self.beta_2)
                .with_epsilon(self.epsilon)
                .with_weight_decay(weight_decay);
            FusedAdamW {
                beta_1: self.beta_1,
                beta_2: self.beta_2,
                epsilon: self.epsilon,
                weight_decay,
                burn: config.build(),
            }
        };
        let no_decay =
            ParamGroup::from_regex(NO_DECAY_PATTERN).expect("NO_DECAY_PATTERN is a valid regex");
        ModuleOptimizer::from(group(self.weight_decay)).with_group(no_decay, group(0.0), None)
    }
}

/// burn's `AdamW` (decoupled weight decay, bias correction), its step one fused pass over each
/// parameter on flex ([`kernels::adamw`], the same operations in the same order) and burn's own
/// elsewhere. Its state is burn's `AdamWState`, so checkpoints read either way.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    burn: AdamW,
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !kernels::applies(&tensor) || !kernels::applies(&grad) {
            return self.burn.step(lr, tensor, grad, state);
        }
        let (time, moment_1, moment_2) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1,
                s.momentum.moment_2,
            ),
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let decay_rate = lr * f64::from(self.weight_decay);
        let step = AdamWStep {
            lr: lr as f32,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            decay: if decay_rate == 0.0 {
                1.0
            } else {
                (1.0 - decay_rate) as f32
            },
            correction_1: 1.0 - self.beta_1.powi(time as i32),
            correction_2: 1.0 - self.beta_2.powi(time as i32),
            first: time == 1,
        };
        let (updated, m, v) = kernels::adamw(tensor, grad, moment_1, moment_2, &step);
        let momentum = AdaptiveMomentumState::new(time, m, v);
        (updated, Some(AdamWState { momentum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

// pytorch_pretrained_bert/optimization.py: BertAdam (the optimizer of the original BERT and
// bert_on_stilts code)
/// The original BERT optimizer, for exact replications: Adam *without* bias correction, weight
/// decay added to the update (`p -= lr * (m / (sqrt(v) + eps) + wd * p)`), and gradients clipped
/// to `max_grad_norm` *per parameter* before the moments are updated. The learning-rate schedule
/// is the caller's (BertAdam's `warmup_linear` is the same linear warmup then decay).
#[derive(Config, Debug)]
pub struct BertAdamGroupsConfig {
    /// First moment decay.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// Second moment decay.
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// Added to the root of the second moment.
    #[config(default = 1e-6)]
    pub epsilon: f32,
    /// Weight decay of the decaying group (biases and LayerNorm weights never decay).
    #[config(default = 0.01)]
    pub weight_decay: f32,
    /// Per-parameter gradient-norm clip; `None` disables it.
    #[config(default = "Some(1.0)")]
    pub max_grad_norm: Option<f32>,
}

/// One parameter group of [`BertAdamGroupsConfig`].
#[derive(Clone, Debug)]
pub struct BertAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
}

impl Optimizer for BertAdam {
    type State<const D: usize> = AdaptiveMomentumState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad_sq = grad.clone().square();
        let (time, m, v) = match state {
            Some(s) => (
                s.time + 1,
                s.moment_1.mul_scalar(self.beta_1) + grad.mul_scalar(1.0 - self.beta_1),
                s.moment_2.mul_scalar(self.beta_2) + grad_sq.mul_scalar(1.0 - self.beta_2),
            ),
            None => (
                1,
                grad.mul_scalar(1.0 - self.beta_1),
                grad_sq.mul_scalar(1.0 - self.beta_2),
            ),
        };
        let mut update = m.clone() / v.clone().sqrt().add_scalar(self.epsilon); // no bias correction
        if self.weight_decay > 0.0 {
            update = update + tensor.clone().mul_scalar(self.weight_decay);
        }
        let updated = tensor - update.mul_scalar(lr);
        (updated, Some(AdaptiveMomentumState::new(time, m, v)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

impl BertAdamGroupsConfig {
    /// Builds the optimizer for any module, with the same decay groups as
    /// [`AdamWGroupsConfig`]; step it with `optimizer.step(lr, module, grads)`.
    pub fn init(&self) -> ModuleOptimizer {
        let group = |weight_decay| BertAdam {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay,
        };
        let clip = self.max_grad_norm.map(GradientClipping::Norm);
        let no_decay =
            ParamGroup::from_regex(NO_DECAY_PATTERN).expect("NO_DECAY_PATTERN is a valid regex");
        let mut optim = ModuleOptimizer::from(group(self.weight_decay));
        if let Some(clip) = clip.clone() {
            optim = optim.with_grad_clipping(clip);
        }
        optim.with_group(no_decay, group(0.0), clip)
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};

    use super::BertAdamGroupsConfig;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 data")
    }

    /// Two BertAdam steps on `sum(linear(x))` against the update rule of
    /// `pytorch_pretrained_bert`'s BertAdam computed by hand in f64: per-parameter clipping, no
    /// bias correction, decay on the weight only.
    #[test]
    fn bert_adam_matches_the_original_update_rule() {
        let device = Device::flex().autodiff();
        let mut linear: Linear = LinearConfig::new(2, 1).init(&device);
        let w0 = [0.5f64, -0.25];
        let b0 = 0.1f64;
        linear.weight = linear.weight.map(|_| {
            Tensor::<2>::from_data([[w0[0] as f32], [w0[1] as f32]], &device).require_grad()
        });
        let bias = linear.bias.take().expect("a bias");
        linear.bias =
            Some(bias.map(|_| Tensor::<1>::from_data([b0 as f32], &device).require_grad()));
        let (lr, wd, eps, clip) = (0.1f64, 0.01f64, 1e-6f64, 1.0f64);
        let mut optim = BertAdamGroupsConfig::new()
            .with_weight_decay(wd as f32)
            .init();
        // dL/dW = x: norm 5 in step 1 (clipped to 1), 0.5 in step 2 (kept); dL/db = 1. The
        // change of scale between steps makes the result depend on the clipping.
        let xs = [[3.0f64, 4.0], [0.3, 0.4]];
        let (mut w, mut b) = (w0, b0);
        let (mut mw, mut vw, mut mb, mut vb) = ([0.0f64; 2], [0.0f64; 2], 0.0f64, 0.0f64);
        for x in xs {
            let input = Tensor::<2>::from_data([[x[0] as f32, x[1] as f32]], &device);
            let loss = linear.forward(input).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &linear);
            linear = optim.step(lr, linear, grads);

            let norm = (x[0] * x[0] + x[1] * x[1]).sqrt();
            let scale = (clip / norm).min(1.0);
            for i in 0..2 {
                let g = x[i] * scale;
                mw[i] = 0.9 * mw[i] + 0.1 * g;
                vw[i] = 0.999 * vw[i] + 0.001 * g * g;
                w[i] -= lr * (mw[i] / (vw[i].sqrt() + eps) + wd * w[i]);
            }
            mb = 0.9 * mb + 0.1;
            vb = 0.999 * vb + 0.001;
            b -= lr * (mb / (vb.sqrt() + eps));
        }
        let got_w = values(linear.weight.val());
        let got_b = values(linear.bias.as_ref().expect("a bias").val());
        for (got, want) in got_w.iter().zip(w).chain(got_b.iter().zip([b])) {
            assert!((f64::from(*got) - want).abs() < 1e-5, "{got} vs {want}");
        }
    }
}
