//! `stilts predict --layers`: every ELMo layer of every word, for a released biLM (a directory
//! with its options file and HDF5 weights). Each record's `text_a` is one sentence; its words
//! come from [`stilts_data::chars::split_words`], or from whitespace alone when the text is
//! pretokenized (as the published ELMo fixtures are). Stateless by default: each batch starts
//! from a zero LSTM state, so results do not depend on batching; stateful carries the state
//! from batch to batch in input order, as AllenNLP and bilm-tf do.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use stilts_data::chars::{MAX_CHARACTERS_PER_TOKEN, batch_char_ids, split_words};
use stilts_models::ModelError;
use stilts_models::elmo::{
    ElmoBiLm, ElmoLstmState, carry_state, initial_state, remove_sentence_boundaries, weights,
};

use crate::predict::{PredictError, PredictRecord};

/// How to read the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerOptions {
    /// Split texts at whitespace only.
    pub pretokenized: bool,
    /// Carry the LSTM state from batch to batch.
    pub stateful: bool,
}

/// The layers of one sentence: per layer (0: tokens, then each LSTM layer), one
/// `[forward; backward]` vector per word, sentence boundaries removed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SentenceLayers {
    /// The words, as split.
    pub words: Vec<String>,
    /// `[layers][words][2 projection]`.
    pub layers: Vec<Vec<Vec<f32>>>,
}

impl SentenceLayers {
    /// One JSON line, `{"words": [...], "layers": [[[...]]]}`.
    pub fn to_json_line(&self) -> String {
        // Serializing strings and f32s cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A released biLM and the state it carries in stateful mode.
pub struct LayerPredictor {
    model: ElmoBiLm,
    device: Device,
    options: LayerOptions,
    kept: Option<ElmoLstmState>,
}

impl LayerPredictor {
    /// Loads the biLM of `dir`, which must hold an options file and HDF5 weights.
    pub fn load(dir: &Path, options: LayerOptions, device: &Device) -> Result<Self, PredictError> {
        let (options_file, weights_file) = weights::release_files(dir)?.ok_or_else(|| {
            PredictError::Model(ModelError::Release {
                path: dir.to_path_buf(),
                message: "--layers needs an ELMo directory: an options file (options.json or *_options.json) and an .hdf5 weights file".into(),
            })
        })?;
        let (model, _, report) = ElmoBiLm::from_files(&options_file, &weights_file, device)?;
        tracing::info!("{}: {report}", weights_file.display());
        Ok(LayerPredictor {
            model,
            device: device.clone(),
            options,
            kept: None,
        })
    }

    /// The layers of a batch of records, one sentence each (`text_a`; see [`check_single`]).
    pub fn predict_batch(
        &mut self,
        records: &[PredictRecord],
    ) -> Result<Vec<SentenceLayers>, PredictError> {
        let words: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                if self.options.pretokenized {
                    r.text_a.split_whitespace().map(str::to_owned).collect()
                } else {
                    split_words(&r.text_a)
                }
            })
            .collect();
        let (ids, len) = batch_char_ids(&words);
        let chars: Tensor<3, Int> = Tensor::from_data(
            TensorData::new(ids, [words.len(), len, MAX_CHARACTERS_PER_TOKEN]),
            &self.device,
        );
        let out = if self.options.stateful {
            let start = match &self.kept {
                Some(kept) => initial_state(kept, words.len()),
                None => self.model.elmo_lstm.zero_state(words.len(), &self.device),
            };
            let out = self.model.forward_from(chars, start);
            self.kept = Some(carry_state(self.kept.take(), out.state.clone()));
            out
        } else {
            self.model.forward(chars)
        };
        let mut per_layer = Vec::with_capacity(out.layers.len());
        for layer in out.layers {
            let (inner, _) = remove_sentence_boundaries(layer, out.mask.clone());
            let [_, seq, width] = inner.dims();
            let values = inner
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| PredictError::Output(format!("{e:?}")))?;
            per_layer.push((values, seq, width));
        }
        Ok(words
            .into_iter()
            .enumerate()
            .map(|(i, words)| {
                let layers = per_layer
                    .iter()
                    .map(|(values, seq, width)| {
                        (0..words.len())
                            .map(|j| {
                                values[(i * seq + j) * width..(i * seq + j + 1) * width].to_vec()
                            })
                            .collect()
                    })
                    .collect();
                SentenceLayers { words, layers }
            })
            .collect())
    }
}

/// `--layers` reads single sentences: a record with a `text_b` is an error naming its line.
pub fn check_single(path: &Path, records: &[(usize, PredictRecord)]) -> Result<(), PredictError> {
    match records.iter().find(|(_, r)| r.text_b.is_some()) {
        None => Ok(()),
        Some((line, _)) => Err(PredictError::Field {
            path: path.to_path_buf(),
            line: *line,
            field: "text_b",
            message: "--layers encodes one sentence per record (text_a)".into(),
        }),
    }
}
