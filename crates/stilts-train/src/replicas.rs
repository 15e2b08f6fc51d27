//! Data-parallel training: one model replica per device, each step's batches split between
//! them, their gradients summed on the first device, one optimizer.
//!
//! A batch of `n` examples is cut into contiguous shares (sizes differing by at most one); a
//! replica's loss, the mean over its share, is weighted by `share / n`, so the gradients the
//! replicas send back add up to the gradient of the whole batch's mean loss: the step is the
//! one a single device takes on the same batch, up to float rounding (tested within 1e-5).
//! The replicas start every step from the main model (on the main device a replica is the model
//! itself; elsewhere a copy), and each replica seeds its device's dropout from the step, the
//! micro-batch and its index, so a run is reproducible for a given list of devices.
//!
//! Replicas on distinct devices run in their own threads; replicas that share a device (two
//! `cpu` entries, as the tests use) run one after the other in one thread, since a device's
//! random stream is shared.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, FloatDType};
use stilts_data::rng::derive_seed;
use stilts_models::loss::sequence_loss;
use stilts_models::mixed;

use crate::batching::{PlannedBatch, collate_views};
use crate::model::TaskModel;
use crate::optim::scalar;
use crate::trainer::RunSpec;

/// One micro-batch's contribution to a step.
pub(crate) struct MicroStep {
    /// The task loss as weighted (divided by the step's micro-batches, times the share).
    pub task_loss: f32,
    /// The auxiliary loss, weighted alike, when the run adds one.
    pub aux_loss: Option<f32>,
    /// The gradients, on the device of the model that computed them.
    pub grads: GradientsParams,
}

/// The loss and gradients of `model` (on the autodiff device `device`) for `examples` of
/// `task`: the task loss divided by `micro_batches`, times `share` when the batch is split.
pub(crate) fn micro_step(
    spec: &RunSpec<'_>,
    model: &TaskModel,
    device: &Device,
    task: usize,
    examples: &[usize],
    micro_batches: usize,
    share: Option<f64>,
) -> MicroStep {
    let recipe = &spec.phase.recipe;
    let data = &spec.data[task];
    let views = collate_views(
        spec.tokenizer,
        &data.train.select(examples),
        device,
        recipe.aux_lm_weight > 0.0,
    );
    let labels = data
        .train
        .labels(examples, data.task.target.is_regression(), device);
    let weigh = |loss: burn::tensor::Tensor<1>| {
        let loss = loss.div_scalar(micro_batches as f64);
        match share {
            Some(s) => loss.mul_scalar(s),
            None => loss,
        }
    };
    // In mixed precision the gradients flow back through the casts to `model`'s f32 weights;
    // in f32 the copy is `model` itself.
    let out = mixed::compute_copy(model.clone(), recipe.compute_dtype()).forward(views, task); // logits [batch, outputs]
    let logits = out.logits.cast(FloatDType::F32);
    let task_loss = weigh(sequence_loss(logits, labels)); // [1]
    let mut aux_value = None;
    let total = match out.aux_loss {
        Some(aux) if recipe.aux_lm_weight > 0.0 => {
            let aux = weigh(aux.cast(FloatDType::F32)); // [1]
            aux_value = Some(scalar(aux.clone()));
            task_loss.clone() + aux.mul_scalar(recipe.aux_lm_weight)
        }
        _ => task_loss.clone(),
    };
    MicroStep {
        task_loss: scalar(task_loss),
        aux_loss: aux_value,
        grads: GradientsParams::from_grads(total.backward(), model),
    }
}

/// `examples` cut into `n` contiguous shares whose sizes differ by at most one (the first ones
/// larger); shares may be empty when there are fewer examples than replicas.
pub(crate) fn shares(examples: &[usize], n: usize) -> Vec<&[usize]> {
    let (base, extra) = (examples.len() / n, examples.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for r in 0..n {
        let len = base + usize::from(r < extra);
        out.push(&examples[start..start + len]);
        start += len;
    }
    out
}

/// One micro-batch across the replicas (`devices[0]` is the main model's): each replica's
/// share, its gradients moved to the main device. Shares left empty are skipped.
pub(crate) fn replicated_step(
    spec: &RunSpec<'_>,
    main: &TaskModel,
    devices: &[Device],
    batch: &PlannedBatch,
    k: usize,
    step: u64,
    micro_batches: usize,
) -> Vec<MicroStep> {
    let parts = shares(&batch.examples, devices.len());
    let total = batch.examples.len() as f64;
    let main_device = devices[0].clone();
    // Replicas sharing a device share its random stream: one thread per distinct device.
    let mut groups: Vec<(Device, Vec<usize>)> = Vec::new();
    for (r, device) in devices.iter().enumerate() {
        match groups.iter_mut().find(|(d, _)| d == device) {
            Some((_, members)) => members.push(r),
            None => groups.push((device.clone(), vec![r])),
        }
    }
    let run_group = |device: &Device, members: &[usize]| -> Vec<(usize, MicroStep)> {
        let replica = if *device == main_device {
            main.clone()
        } else {
            main.clone().fork(device)
        };
        members
            .iter()
            .filter(|&&r| !parts[r].is_empty())
            .map(|&r| {
                device.seed(derive_seed(
                    spec.seed,
                    &[
                        "dropout".into(),
                        spec.phase_index.into(),
                        step.into(),
                        k.into(),
                        r.into(),
                    ],
                ));
                let share = parts[r].len() as f64 / total;
                let mut out = micro_step(
                    spec,
                    &replica,
                    device,
                    batch.task,
                    parts[r],
                    micro_batches,
                    Some(share),
                );
                if *device != main_device {
                    out.grads = out.grads.to_device(&main_device, &replica);
                }
                (r, out)
            })
            .collect()
    };
    let mut results: Vec<(usize, MicroStep)> = if groups.len() == 1 {
        run_group(&groups[0].0, &groups[0].1)
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|(device, members)| scope.spawn(|| run_group(device, members)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a replica's thread panicked"))
                .collect()
        })
    };
    results.sort_by_key(|(r, _)| *r);
    results.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_cover_the_batch_in_order() {
        let ex: Vec<usize> = (0..7).collect();
        let s = shares(&ex, 3);
        assert_eq!(s, vec![&[0, 1, 2][..], &[3, 4], &[5, 6]]);
        assert_eq!(shares(&ex[..1], 2), vec![&[0][..], &[]]);
    }
}
