//! Released ELMo weights: the HDF5 file bilm-tf's `dump_weights` writes and AllenNLP loads
//! (`char_embed`, `CNN/W_cnn_i` and `b_cnn_i`, `CNN_high_k/{W,b}_{carry,transform}`,
//! `CNN_proj/{W,b}_proj`, `RNN_d/RNN/MultiRNNCell/Cell{l}/LSTMCell/{W_0,B,W_P_0}`), read in
//! plain Rust with the `hdf5-rust` crate: no libhdf5 on the user's machine. TensorFlow's
//! layouts are converted here, as AllenNLP's loaders convert them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

use super::bilm::ElmoBiLm;
use super::config::ElmoConfig;
use super::lstm::LstmCellWithProjection;
use crate::ModelError;
use crate::hf::LoadReport;
use stilts_io::files::is_elmo_options;

/// Every dataset a biLM of `config` reads, with the shape it must have (TensorFlow's layout).
pub fn targets(config: &ElmoConfig) -> Vec<(String, Vec<usize>)> {
    let dim = config.char_embedding_dim;
    let n = config.n_filters();
    let (proj, cell) = (config.projection_dim, config.cell_size);
    let mut out = vec![("char_embed".to_owned(), vec![config.n_characters - 1, dim])];
    for (i, &[width, number]) in config.filters.iter().enumerate() {
        out.push((format!("CNN/W_cnn_{i}"), vec![1, width, dim, number]));
        out.push((format!("CNN/b_cnn_{i}"), vec![number]));
    }
    for k in 0..config.n_highway {
        for (name, shape) in [
            ("W_carry", vec![n, n]),
            ("W_transform", vec![n, n]),
            ("b_carry", vec![n]),
            ("b_transform", vec![n]),
        ] {
            out.push((format!("CNN_high_{k}/{name}"), shape));
        }
    }
    out.push(("CNN_proj/W_proj".to_owned(), vec![n, proj]));
    out.push(("CNN_proj/b_proj".to_owned(), vec![proj]));
    for direction in 0..2 {
        for layer in 0..config.n_layers {
            let p = lstm_prefix(direction, layer);
            out.push((format!("{p}/W_0"), vec![2 * proj, 4 * cell]));
            out.push((format!("{p}/B"), vec![4 * cell]));
            out.push((format!("{p}/W_P_0"), vec![cell, proj]));
        }
    }
    out
}

fn lstm_prefix(direction: usize, layer: usize) -> String {
    format!("RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell")
}

fn hdf5_error(path: &Path, message: impl std::fmt::Display) -> ModelError {
    ModelError::Release {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// A float32 dataset: its shape and values in row-major order.
pub type Dataset = (Vec<usize>, Vec<f32>);

/// The float32 datasets of an HDF5 file, by name without the leading `/`.
pub fn read_hdf5(path: &Path) -> Result<BTreeMap<String, Dataset>, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = hdf5_rust::Hdf5File::from_bytes(&bytes)
        .map_err(|e| hdf5_error(path, format!("not a readable HDF5 file ({e})")))?;
    let mut out = BTreeMap::new();
    for name in file.list_datasets() {
        let (shape, bits) = file
            .read_f32(&name)
            .map_err(|e| hdf5_error(path, format!("dataset {name}: {e}")))?;
        let values: Vec<f32> = bits.into_iter().map(f32::from_bits).collect();
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if numel != Some(values.len()) {
            return Err(hdf5_error(
                path,
                format!(
                    "dataset {name}: {} values for the shape {shape:?}",
                    values.len()
                ),
            ));
        }
        out.insert(name.trim_start_matches('/').to_owned(), (shape, values));
    }
    Ok(out)
}

impl ElmoBiLm {
    /// Loads a released biLM: its `options.json` and HDF5 weights.
    pub fn from_files(
        options: &Path,
        weights: &Path,
        device: &Device,
    ) -> Result<(ElmoBiLm, ElmoConfig, LoadReport), ModelError> {
        let config = ElmoConfig::from_options_file(options)?;
        let (model, report) = ElmoBiLm::from_hdf5(&config, weights, device)?;
        Ok((model, config, report))
    }

    /// Loads HDF5 weights into the biLM `config` describes. Every dataset must be there with
    /// its shape and no other may be; else [`ModelError::Mismatch`] lists what is wrong.
    pub fn from_hdf5(
        config: &ElmoConfig,
        path: &Path,
        device: &Device,
    ) -> Result<(ElmoBiLm, LoadReport), ModelError> {
        let mut datasets = read_hdf5(path)?;
        let mut report = LoadReport::default();
        let wanted = targets(config);
        let names: BTreeSet<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
        report.unused = datasets
            .keys()
            .filter(|k| !names.contains(k.as_str()))
            .cloned()
            .collect();
        let mut values = BTreeMap::new();
        for (name, shape) in &wanted {
            match datasets.remove(name) {
                None => report.missing.push(name.clone()),
                Some((have, _)) if &have != shape => report.errors.push(format!(
                    "{name}: the file has {have:?}, the options ask for {shape:?}"
                )),
                Some((_, v)) => {
                    report.loaded.push(name.clone());
                    values.insert(name.clone(), v);
                }
            }
        }
        if !report.is_ok() {
            return Err(ModelError::Mismatch {
                path: path.to_path_buf(),
                report: Box::new(report),
            });
        }
        let mut model = config.init(device);
        Assign { values, device }.apply(&mut model, config);
        Ok((model, report))
    }
}

/// Builds the modules' tensors from the file's, which are all present with the right shapes.
struct Assign<'a> {
    values: BTreeMap<String, Vec<f32>>,
    device: &'a Device,
}

impl Assign<'_> {
    fn take(&mut self, name: &str) -> Vec<f32> {
        self.values.remove(name).unwrap_or_default()
    }

    fn tensor<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape.to_vec()), self.device)
    }

    fn apply(mut self, model: &mut ElmoBiLm, config: &ElmoConfig) {
        let dim = config.char_embedding_dim;
        let n = config.n_filters();
        let encoder = &mut model.token_embedder;
        // allennlp's _load_char_embedding: a zero row 0 for padding above the released rows.
        let mut embedding = vec![0.0; dim];
        embedding.extend(self.take("char_embed"));
        encoder.char_embedding =
            Param::from_tensor(self.tensor(embedding, [config.n_characters, dim]));
        for (i, &[width, number]) in config.filters.iter().enumerate() {
            // [1, width, dim, number] -> [number, dim, width]
            let w = self.take(&format!("CNN/W_cnn_{i}"));
            let w = self.tensor(w, [width, dim, number]).permute([2, 1, 0]);
            let conv = &mut encoder.convolutions[i];
            conv.weight = Param::from_tensor(w.detach());
            let b = self.take(&format!("CNN/b_cnn_{i}"));
            conv.bias = Some(Param::from_tensor(self.tensor(b, [number])));
        }
        for k in 0..config.n_highway {
            let mut get = |s: &str| self.take(&format!("CNN_high_{k}/{s}"));
            let (wt, wc, bt, bc) = (
                get("W_transform"),
                get("W_carry"),
                get("b_transform"),
                get("b_carry"),
            );
            // AllenNLP's gate is bilm-tf's carry negated: [transform, -carry] side by side.
            let weight = Tensor::cat(
                vec![self.tensor(wt, [n, n]), self.tensor(wc, [n, n]).neg()],
                1,
            );
            let bias = Tensor::cat(vec![self.tensor(bt, [n]), self.tensor(bc, [n]).neg()], 0);
            set_linear(&mut encoder.highways.layers[k], weight, Some(bias));
        }
        let proj = config.projection_dim;
        let (w, b) = (self.take("CNN_proj/W_proj"), self.take("CNN_proj/b_proj"));
        let (w, b) = (self.tensor(w, [n, proj]), self.tensor(b, [proj]));
        set_linear(&mut encoder.projection, w, Some(b));
        for layer in 0..config.n_layers {
            let lstm = &mut model.elmo_lstm;
            for (direction, cell) in [
                (0, &mut lstm.forward_layers[layer]),
                (1, &mut lstm.backward_layers[layer]),
            ] {
                let p = lstm_prefix(direction, layer);
                let (w, b, wp) = (
                    self.take(&format!("{p}/W_0")),
                    self.take(&format!("{p}/B")),
                    self.take(&format!("{p}/W_P_0")),
                );
                self.lstm(cell, config, w, b, wp);
            }
        }
    }

    /// bilm-tf's `W_0` is `[input + projection, 4 cell]` over `[x; h]`, gates (i, j, f, o),
    /// and its forget bias of 1 is added at run time; AllenNLP's order is (i, f, j, o) with the
    /// 1 folded into the bias.
    fn lstm(
        &self,
        cell: &mut LstmCellWithProjection,
        config: &ElmoConfig,
        w: Vec<f32>,
        b: Vec<f32>,
        wp: Vec<f32>,
    ) {
        let (proj, c) = (config.projection_dim, config.cell_size);
        let reorder = |t: Tensor<2>| {
            let gate = |i: usize| t.clone().narrow(1, i * c, c);
            Tensor::cat(vec![gate(0), gate(2), gate(1), gate(3)], 1)
        };
        let w = self.tensor(w, [2 * proj, 4 * c]);
        let input = reorder(w.clone().narrow(0, 0, proj));
        let state = reorder(w.narrow(0, proj, proj));
        let b = self.tensor(b, [1, 4 * c]);
        let forget_one = Tensor::cat(
            vec![
                Tensor::zeros([1, 2 * c], self.device),
                Tensor::ones([1, c], self.device),
                Tensor::zeros([1, c], self.device),
            ],
            1,
        );
        let bias = reorder(b + forget_one).reshape([4 * c]);
        set_linear(&mut cell.input_linearity, input, None);
        set_linear(&mut cell.state_linearity, state, Some(bias));
        set_linear(&mut cell.state_projection, self.tensor(wp, [c, proj]), None);
    }
}

/// Sets a map's tensors as fresh parameters (detached: they may be computed from the file's).
fn set_linear(linear: &mut Linear, weight: Tensor<2>, bias: Option<Tensor<1>>) {
    linear.weight = Param::from_tensor(weight.detach());
    linear.bias = bias.map(|b| Param::from_tensor(b.detach()));
}

/// The options and weights files of a released ELMo in `dir`: one options file
/// (`options.json` or `*_options.json` with a `char_cnn` section; AllenNLP names them
/// `elmo_<size>_options.json`) and one `*.hdf5` (`elmo_<size>_weights.hdf5`). `None` when the
/// directory has no weights file (a stilts model keeps only the options, for its characters);
/// an error names what is ambiguous or missing.
pub fn release_files(dir: &Path) -> Result<Option<(PathBuf, PathBuf)>, ModelError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut options = Vec::new();
    let mut weights = Vec::new();
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.is_file()) {
        if is_elmo_options(&path) {
            options.push(path);
        } else if path.extension().is_some_and(|e| e == "hdf5" || e == "h5") {
            weights.push(path);
        }
    }
    options.sort();
    weights.sort();
    match (options.as_slice(), weights.as_slice()) {
        (_, []) => Ok(None),
        ([o], [w]) => Ok(Some((o.clone(), w.clone()))),
        (o, w) => Err(ModelError::Release {
            path: dir.to_path_buf(),
            message: format!(
                "an ELMo directory holds one options file (options.json or *_options.json, with a char_cnn section) and one .hdf5 weights file; found {} and {}",
                o.len(),
                w.len()
            ),
        }),
    }
}
