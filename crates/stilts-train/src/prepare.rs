//! Loading, downsampling and tokenizing the data of a phase.

use stilts_data::encoding::{PairMode, Tokenizer};
use stilts_data::sample::{SampleManifest, downsample};
use stilts_data::tokenize::Encoding;
use stilts_data::{Dataset, Label, LoadOptions, Task};
use stilts_models::loss::Labels;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::TaskSpec;
use crate::error::{Result, TrainError};
use crate::results::DataFileInfo;

/// One tokenized split.
#[derive(Debug, Clone)]
pub struct Split {
    /// The examples as read.
    pub data: Dataset,
    /// How pairs were encoded.
    pub pair: PairMode,
    /// The encodings of every example, one list per view (see [`PairMode`]).
    pub views: Vec<Vec<Encoding>>,
}

impl Split {
    /// Tokenizes a dataset, pairs fed as `pair` says.
    pub fn encode(data: Dataset, tokenizer: &Tokenizer, pair: PairMode) -> Result<Self> {
        let inputs: Vec<(&str, Option<&str>)> = data
            .examples
            .iter()
            .map(|e| (e.text_a.as_str(), e.text_b.as_deref()))
            .collect();
        let views = tokenizer
            .encode_views(&inputs, pair)
            .map_err(TrainError::from)?;
        Ok(Split { data, pair, views })
    }

    /// The length of each example: its longest view.
    pub fn lengths(&self) -> Vec<usize> {
        (0..self.data.len())
            .map(|i| self.views.iter().map(|v| v[i].len()).max().unwrap_or(0))
            .collect()
    }

    /// Inference batches: example indices sorted by length and cut into batches of at most
    /// `batch_size`, so each is padded to little more than its own length and the results do not
    /// depend on the batch size.
    pub fn batches_by_length(&self, batch_size: usize) -> Vec<Vec<usize>> {
        let lengths = self.lengths();
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.sort_by_key(|&i| lengths[i]);
        order
            .chunks(batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// The encodings of `idx`, one list per view.
    pub fn select(&self, idx: &[usize]) -> Vec<Vec<Encoding>> {
        self.views
            .iter()
            .map(|v| idx.iter().map(|&i| v[i].clone()).collect())
            .collect()
    }

    /// The gold labels of `idx` as a tensor.
    ///
    /// # Shapes
    ///
    /// - output: `[idx.len()]`
    pub fn labels(&self, idx: &[usize], regression: bool, device: &Device) -> Labels {
        let n = idx.len();
        if regression {
            let v: Vec<f32> = idx
                .iter()
                .map(|&i| match self.data.examples[i].label {
                    Some(Label::Score(s)) => s as f32,
                    Some(Label::Class(c)) => c as f32,
                    None => 0.0,
                })
                .collect();
            Labels::Scores(Tensor::<1>::from_data(TensorData::new(v, [n]), device))
        } else {
            let v: Vec<i64> = idx
                .iter()
                .map(|&i| {
                    self.data.examples[i]
                        .label
                        .and_then(Label::class)
                        .unwrap_or(0) as i64
                })
                .collect();
            Labels::Classes(Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device))
        }
    }
}

/// The data of one task for one run.
#[derive(Debug, Clone)]
pub struct TaskData {
    /// The task.
    pub task: Task,
    /// The run's train split (downsampled when the task entry asks).
    pub train: Split,
    /// The dev split.
    pub dev: Split,
    /// Every test split present (empty unless test predictions were asked for).
    pub test: Vec<Split>,
    /// Present when the train split was downsampled.
    pub manifest: Option<SampleManifest>,
}

impl TaskData {
    /// The files behind this data.
    pub fn files(&self) -> Vec<DataFileInfo> {
        let mut v = vec![
            DataFileInfo::of(&self.train.data),
            DataFileInfo::of(&self.dev.data),
        ];
        v.extend(self.test.iter().map(|t| DataFileInfo::of(&t.data)));
        v
    }
}

/// Full (not downsampled) splits of a phase's tasks, loaded once and shared by its seeds.
#[derive(Debug, Clone)]
pub struct LoadedTask {
    /// The resolved task.
    pub spec: TaskSpec,
    /// Its whole train split.
    pub train: Split,
    /// Its dev split.
    pub dev: Split,
    /// Every test split present (empty unless test predictions were asked for).
    pub test: Vec<Split>,
}

/// Loads and tokenizes the train, dev (and with `test`, test) splits.
pub fn load_task(spec: &TaskSpec, tokenizer: &Tokenizer, test: bool) -> Result<LoadedTask> {
    let load = |split: &str| {
        spec.task
            .load(&spec.dir, split, LoadOptions::default())
            .map_err(|source| TrainError::Data {
                task: spec.task.name.clone(),
                source: Box::new(source),
            })
    };
    let train = Split::encode(load(&spec.train_split)?, tokenizer, spec.pair)?;
    let dev = Split::encode(load(&spec.dev_split)?, tokenizer, spec.pair)?;
    let test = if test {
        spec.test_splits
            .iter()
            .map(|s| Split::encode(load(s)?, tokenizer, spec.pair))
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    for (split, d) in [("train", &train), ("dev", &dev)] {
        if d.data.is_empty() || !d.data.is_labelled() {
            return Err(TrainError::Data {
                task: spec.task.name.clone(),
                source: Box::new(stilts_data::DataError::Invalid(format!(
                    "{split} split {} has no labelled examples",
                    d.data.path.display()
                ))),
            });
        }
    }
    Ok(LoadedTask {
        spec: spec.clone(),
        train,
        dev,
        test,
    })
}

impl LoadedTask {
    /// The data of one run: the train split downsampled with `seed` when asked.
    pub fn for_seed(&self, seed: u64, stream: u64, tokenizer: &Tokenizer) -> Result<TaskData> {
        let (train, manifest) = match self.spec.train_examples {
            Some(n) => {
                let (data, manifest) =
                    downsample(&self.train.data, n, seed, stream).map_err(|source| {
                        TrainError::Sample {
                            task: self.spec.task.name.clone(),
                            source: Box::new(source),
                        }
                    })?;
                (
                    Split::encode(data, tokenizer, self.spec.pair)?,
                    Some(manifest),
                )
            }
            None => (self.train.clone(), None),
        };
        Ok(TaskData {
            task: self.spec.task.clone(),
            train,
            dev: self.dev.clone(),
            test: self.test.clone(),
            manifest,
        })
    }
}
