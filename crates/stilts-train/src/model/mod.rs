//! The model a phase trains: one encoder of any family ([`stilts_models::Encoder`]) and one
//! head per task ([`TaskHead`]), the head policies that carry a model from one phase to the
//! next ([`heads`]), how the first model is built ([`build`]), and the stilts model directory
//! ([`store`]).

pub mod build;
pub mod heads;
pub mod peft_file;
pub mod store;

use burn::module::Module;
use burn::nn::Dropout;
use burn::tensor::Tensor;
use stilts_data::encoding::PairMode;
use stilts_models::peft::PeftConfig;
use stilts_models::{Encoder, EncoderInput, EncoderOutput, SentenceEncoder};

pub use build::build_initial;
pub use heads::{HeadInfo, TaskHead, apply_head_policy};
pub use store::{
    FORMAT_VERSION, META_FILE, ModelMeta, WEIGHTS_FILE, load_model, read_meta, save_model,
    skeleton, write_model_dir,
};

/// An encoder with one head per task on its dropped-out representation.
#[derive(Module, Debug)]
pub struct TaskModel {
    /// The encoder (carried from phase to phase).
    pub encoder: Encoder,
    /// Dropout before the heads.
    pub dropout: Dropout,
    /// One per task of the phase.
    pub heads: Vec<TaskHead>,
}

/// What a head gives for a batch.
#[derive(Debug, Clone)]
pub struct TaskOutput {
    /// Logits (or regression scores), `[batch, outputs]`.
    pub logits: Tensor<2>,
    /// The encoder's auxiliary loss over the batch, when it has one, `[1]`.
    pub aux_loss: Option<Tensor<1>>,
    /// The representation the head read before dropout, `[batch, input]`.
    pub features: Tensor<2>,
    /// The encoder's summary state of the first view (`[CLS]` for BERT), `[batch, hidden]`.
    pub summary: Tensor<2>,
}

impl TaskModel {
    /// Logits of head `head` for a batch given as the views its pair mode asks for: one view
    /// (joint), the two texts alone (separate: the head reads `[u; v; |u-v|; u*v]`), or both
    /// orders (the head reads `u + v`). Auxiliary losses of the views are averaged.
    ///
    /// # Shapes
    ///
    /// - views: each `[batch, seq_v]`
    /// - output.logits: `[batch, outputs]`
    ///
    /// # Panics
    ///
    /// If `head` is out of range or the number of views does not match the head's pair mode.
    pub fn forward(&self, views: Vec<EncoderInput>, head: usize) -> TaskOutput {
        let head = &self.heads[head];
        let outputs: Vec<EncoderOutput> =
            views.into_iter().map(|v| self.encoder.encode(v)).collect();
        assert_eq!(
            outputs.len(),
            head.pair.views(),
            "the head reads {:?} pairs: {} views, got {}",
            head.pair,
            head.pair.views(),
            outputs.len()
        );
        let summary = outputs[0].summary.clone();
        let aux = mean_aux(outputs.iter().filter_map(|o| o.aux_loss.clone()).collect());
        let features = match (head.pair, outputs.as_slice()) {
            (PairMode::Separate, [u, v]) => {
                let (u, v) = (u.pooled.clone(), v.pooled.clone()); // [batch, hidden] each
                Tensor::cat(
                    vec![u.clone(), v.clone(), (u.clone() - v.clone()).abs(), u * v],
                    1,
                ) // [batch, 4 * hidden]
            }
            (PairMode::BothOrders, [u, v]) => u.pooled.clone() + v.pooled.clone(),
            (_, [o, ..]) => o.pooled.clone(),
            (_, []) => unreachable!("at least one view is asserted above"),
        };
        let logits = head.classifier.forward(stilts_models::kernels::dropout(
            &self.dropout,
            features.clone(),
        )); // [batch, outputs]
        TaskOutput {
            logits,
            aux_loss: aux,
            features,
            summary,
        }
    }

    /// Sets every dropout probability: the encoder's and the one before the heads.
    pub fn set_dropout(&mut self, p: f64) {
        self.dropout.prob = p;
        self.encoder.set_dropout(p);
    }

    /// Stops gradients for the encoder's parameter groups `groups` (see
    /// [`SentenceEncoder::freeze_params`]), and for no other: what an earlier phase froze trains
    /// again unless it is named here. With `peft` non-empty, only the modules it names train in
    /// the encoder (and the layers' LayerNorms when its adapters say so), with the encoder
    /// groups `modules_to_save`; heads always train.
    pub fn freeze(
        self,
        groups: &[String],
        peft: &PeftConfig,
        modules_to_save: &[String],
    ) -> std::result::Result<Self, String> {
        let mut model = self.set_require_grad(true);
        if !peft.is_empty() {
            model.encoder = model.encoder.train_peft_only(peft);
            for g in modules_to_save {
                model.encoder = model.encoder.train_group(g)?;
            }
        }
        for g in groups {
            model.encoder = model.encoder.freeze_params(g)?;
        }
        Ok(model)
    }
}

/// How many parameter values train and how many there are (`peft`'s
/// `print_trainable_parameters`).
pub fn param_counts<M: Module>(model: &M) -> (usize, usize) {
    struct Counts(usize, usize);
    impl burn::module::ModuleVisitor for Counts {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let n = param.lazy_shape().num_elements();
            self.1 += n;
            if param.val().is_require_grad() {
                self.0 += n;
            }
        }
    }
    let mut counts = Counts(0, 0);
    model.visit(&mut counts);
    (counts.0, counts.1)
}

fn mean_aux(losses: Vec<Tensor<1>>) -> Option<Tensor<1>> {
    let n = losses.len();
    let sum = losses.into_iter().reduce(|a, b| a + b)?;
    Some(if n > 1 { sum.div_scalar(n as f64) } else { sum })
}

impl Carried {
    /// The modules of `want` this model lacks: those it carries with the same configuration
    /// stay (an intermediate phase's adapters train on in the target phase). A module carried
    /// with another configuration is an error: the recipe key (`lora`, `adapter`) and why.
    pub fn peft_to_add(
        &self,
        want: &PeftConfig,
    ) -> std::result::Result<PeftConfig, (&'static str, String)> {
        let have = &self.meta.peft;
        let add = PeftConfig {
            lora: lacking("lora", "LoRA", have.lora.as_ref(), want.lora.as_ref())?,
            adapter: lacking(
                "adapter",
                "adapters",
                have.adapter.as_ref(),
                want.adapter.as_ref(),
            )?,
            fusion: lacking(
                "fusion",
                "a fusion of adapters",
                have.fusion.as_ref(),
                want.fusion.as_ref(),
            )?,
        };
        Ok(add)
    }

    /// The model with the parameter-efficient modules `want` asks for that it lacks added
    /// fresh (see [`Carried::peft_to_add`]).
    pub fn with_peft(
        mut self,
        want: &PeftConfig,
        device: &burn::tensor::Device,
    ) -> std::result::Result<Carried, String> {
        let add = self.peft_to_add(want).map_err(|(_, message)| message)?;
        if add.is_empty() {
            return Ok(self);
        }
        self.model.encoder = self.model.encoder.add_peft(&add, device)?;
        self.meta.peft.lora = self.meta.peft.lora.or(add.lora);
        self.meta.peft.adapter = self.meta.peft.adapter.or(add.adapter);
        self.meta.peft.fusion = self.meta.peft.fusion.or(add.fusion);
        Ok(self)
    }
}

/// `want` when the model lacks it; `None` when it is not wanted or already carried alike.
fn lacking<T: Clone + PartialEq + serde::Serialize>(
    key: &'static str,
    what: &str,
    have: Option<&T>,
    want: Option<&T>,
) -> std::result::Result<Option<T>, (&'static str, String)> {
    let json = |v: &T| serde_json::to_string(v).unwrap_or_default();
    match (have, want) {
        (_, None) => Ok(None),
        (None, Some(w)) => Ok(Some(w.clone())),
        (Some(h), Some(w)) if h == w => Ok(None),
        (Some(h), Some(w)) => Err((
            key,
            format!(
                "the model already carries {what} configured as {}, and this phase asks for {}; \
                 give the phase the same settings, or start from a model without them",
                json(h),
                json(w)
            ),
        )),
    }
}

/// A model and its metadata.
#[derive(Debug, Clone)]
pub struct Carried {
    /// The model on the plain (inference) device.
    pub model: TaskModel,
    /// Its metadata.
    pub meta: ModelMeta,
}
