use burn::config::Config;
use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, ModuleOptimizer};

/// Parameters exempt from weight decay in Hugging Face's fine-tuning recipe: every bias and
/// every LayerNorm weight (matched against full module paths).
pub const NO_DECAY_PATTERN: &str = r"(^|\.)(bias|layer_norm\.gamma|layer_norm\.beta)$";

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
        let adamw = AdamWConfig::new()
            .with_beta_1(self.beta_1)
            .with_beta_2(self.beta_2)
            .with_epsilon(self.epsilon);
        let no_decay =
            ParamGroup::from_regex(NO_DECAY_PATTERN).expect("NO_DECAY_PATTERN is a valid regex");
        adamw
            .clone()
            .with_weight_decay(self.weight_decay)
            .init()
            .with_group(no_decay, adamw.with_weight_decay(0.0).build(), None)
    }
}
