//! Batches the way fast trainers build them: dynamic padding to the longest example of each
//! batch, optional length bucketing, and a data order that is a pure function of
//! `(seed, epoch)` through `stilts-data`'s [`Rng`], so a resumed run sees the same batches.

use burn::tensor::{Device, Int, Tensor, TensorData};
use stilts_data::encoding::{InputEncoder, Tokenizer};
use stilts_data::rng::Rng;
use stilts_data::tokenize::Encoding;
use stilts_models::EncoderInput;

use crate::config::Sampler;
use crate::sampler::{draw_tasks, task_probabilities};

/// Examples per bucketing window, in batches: a window of `batch_size * BUCKET_WINDOW`
/// shuffled examples is sorted by length and cut into batches.
pub const BUCKET_WINDOW: usize = 50;

/// One planned batch: which task and which of its examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBatch {
    /// Index of the task in the phase.
    pub task: usize,
    /// Example indices into the task's training set.
    pub examples: Vec<usize>,
}

/// The batches of one task for one pass over its data.
///
/// Without bucketing: a shuffle cut into consecutive batches. With bucketing: the shuffle is
/// cut into windows of `batch_size * BUCKET_WINDOW`, each window sorted by length and cut into
/// batches, and the batch order shuffled, so batches hold examples of similar length.
pub fn task_batches(
    lengths: &[usize],
    batch_size: usize,
    bucket: bool,
    rng: &mut Rng,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    if !bucket {
        return order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    }
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for window in order.chunks(batch_size * BUCKET_WINDOW) {
        let mut window = window.to_vec();
        window.sort_by_key(|&i| lengths[i]);
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// All batches of one epoch of a phase, a pure function of `(seed, epoch)`.
///
/// One task: one pass over its data. Several tasks: as many batches as one pass over every
/// task would give, each batch's task drawn by `sampler` (per-task streams restart with a fresh
/// shuffle when a task runs out).
pub fn plan_epoch(
    lengths: &[Vec<usize>],
    batch_size: usize,
    bucket: bool,
    sampler: Sampler,
    seed: u64,
    epoch: usize,
) -> Vec<PlannedBatch> {
    let stream = |task: usize, cycle: usize| {
        let mut rng = Rng::derive(
            seed,
            &["order".into(), epoch.into(), task.into(), cycle.into()],
        );
        task_batches(&lengths[task], batch_size, bucket, &mut rng)
    };
    if lengths.len() == 1 {
        return stream(0, 0)
            .into_iter()
            .map(|examples| PlannedBatch { task: 0, examples })
            .collect();
    }
    let total: usize = lengths.iter().map(|l| l.len().div_ceil(batch_size)).sum();
    let sizes: Vec<usize> = lengths.iter().map(Vec::len).collect();
    let probs = task_probabilities(sampler, &sizes);
    let mut rng = Rng::derive(seed, &["tasks".into(), epoch.into()]);
    let draws = draw_tasks(&probs, total, &mut rng);
    let mut streams: Vec<(usize, std::vec::IntoIter<Vec<usize>>)> = (0..lengths.len())
        .map(|t| (0, stream(t, 0).into_iter()))
        .collect();
    let mut out = Vec::with_capacity(total);
    for task in draws {
        let (cycle, iter) = &mut streams[task];
        let examples = match iter.next() {
            Some(b) => b,
            None => {
                *cycle += 1;
                *iter = stream(task, *cycle).into_iter();
                match iter.next() {
                    Some(b) => b,
                    None => continue,
                }
            }
        };
        out.push(PlannedBatch { task, examples });
    }
    out
}

/// Pads the encodings to the longest and builds the encoder's input tensors on `device`;
/// `with_aux_loss` asks the encoder for its auxiliary loss.
///
/// # Shapes
///
/// - output: `[batch, longest]` each
pub fn collate(
    tokenizer: &Tokenizer,
    encodings: &[Encoding],
    device: &Device,
    with_aux_loss: bool,
) -> EncoderInput {
    let batch = tokenizer.collate(encodings);
    let shape = [batch.batch_size, batch.seq_len];
    let tensor =
        |values: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(values, shape), device);
    EncoderInput {
        input_ids: tensor(batch.input_ids_i64()),
        token_type_ids: tensor(batch.token_type_ids_i64()),
        attention_mask: tensor(batch.attention_mask_i64()),
        with_aux_loss,
    }
}

/// [`collate`] for each view of a batch (see [`stilts_data::encoding::PairMode`]).
///
/// # Shapes
///
/// - output: one `[batch, longest_v]` input per view
pub fn collate_views(
    tokenizer: &Tokenizer,
    views: &[Vec<Encoding>],
    device: &Device,
    with_aux_loss: bool,
) -> Vec<EncoderInput> {
    views
        .iter()
        .map(|encodings| collate(tokenizer, encodings, device, with_aux_loss))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_a_function_of_seed_and_epoch() {
        let lengths = vec![(0..100).map(|i| i % 17).collect::<Vec<_>>()];
        let a = plan_epoch(&lengths, 8, false, Sampler::Proportional, 3, 0);
        let b = plan_epoch(&lengths, 8, false, Sampler::Proportional, 3, 0);
        let c = plan_epoch(&lengths, 8, false, Sampler::Proportional, 3, 1);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 13);
        let mut all: Vec<usize> = a.iter().flat_map(|b| b.examples.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn bucketing_groups_similar_lengths() {
        let lengths: Vec<usize> = (0..400).map(|i| (i * 7919) % 120).collect();
        let mut rng = Rng::new(1);
        let plain = task_batches(&lengths, 16, false, &mut rng);
        let mut rng = Rng::new(1);
        let bucketed = task_batches(&lengths, 16, true, &mut rng);
        let spread = |batches: &[Vec<usize>]| -> usize {
            batches
                .iter()
                .map(|b| {
                    let l: Vec<usize> = b.iter().map(|&i| lengths[i]).collect();
                    l.iter().max().unwrap() - l.iter().min().unwrap()
                })
                .sum()
        };
        assert!(spread(&bucketed) * 4 < spread(&plain));
        let mut all: Vec<usize> = bucketed.concat();
        all.sort_unstable();
        assert_eq!(all, (0..400).collect::<Vec<_>>());
    }
}
