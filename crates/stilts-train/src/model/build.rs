//! The model a first phase starts from: a pretrained encoder, a random one, or a saved stilts
//! model.

use burn::nn::DropoutConfig;
use burn::tensor::Device;
use stilts_models::peft::PeftConfig;
use stilts_models::{Encoder, EncoderConfig};

use super::{Carried, ModelMeta, TaskModel, load_model};
use crate::config::{LoadMode, ModelSource};
use crate::error::{Result, TrainError};

/// Builds the starting model of an experiment over a tokenizer of `vocab_size` ids (GPT's
/// fine-tuning tokens get fresh embedding rows). Heads are only present when loading a stilts
/// model with [`LoadMode::EncoderHead`]; a pretrained directory's task head (a hub model
/// fine-tuned on MNLI, say), of any width, is ignored: phases add their own. A saved model's
/// parameter-efficient modules come with its encoder, trained weights included, so a phase
/// asking for the same modules continues them (STILTs with modules across experiments).
pub fn build_initial(source: &ModelSource, vocab_size: usize, device: &Device) -> Result<Carried> {
    let mut peft = PeftConfig::default();
    let (encoder, config, heads, infos) = match source {
        ModelSource::Pretrained { dir, .. } => {
            let config = EncoderConfig::from_hf_dir(dir)?;
            let (encoder, report) = Encoder::from_hf_dir(dir, &config, device)?;
            tracing::info!(
                loaded = report.loaded.len(),
                initialized = ?report.initialized,
                ignored = ?report.ignored,
                "loaded pretrained {} encoder from {}",
                config.kind(),
                dir.display()
            );
            (encoder, config, Vec::new(), Vec::new())
        }
        ModelSource::Hub { id } => {
            return Err(TrainError::Checkpoint {
                path: id.into(),
                message: "a hub model must be fetched before it is built (Experiment::fetch_model)"
                    .into(),
            });
        }
        ModelSource::Random { size, .. } => {
            let config = size.config(vocab_size);
            (config.init(device), config, Vec::new(), Vec::new())
        }
        ModelSource::Checkpoint { dir, load } => {
            let carried = load_model(dir, device)?;
            let meta = carried.meta;
            peft = meta.peft;
            match load {
                LoadMode::Encoder => (carried.model.encoder, meta.encoder, Vec::new(), Vec::new()),
                LoadMode::EncoderHead => (
                    carried.model.encoder,
                    meta.encoder,
                    carried.model.heads,
                    meta.heads,
                ),
            }
        }
    };
    let (encoder, config) = encoder
        .fit_vocab(config, vocab_size, device)
        .map_err(|message| TrainError::Checkpoint {
            path: source.dir().map(Into::into).unwrap_or_default(),
            message,
        })?;
    let model = TaskModel {
        encoder,
        dropout: DropoutConfig::new(config.classifier_dropout()).init(),
        heads,
    };
    let mut meta = ModelMeta::new(config, infos);
    meta.peft = peft;
    Ok(Carried { model, meta })
}
