//! The loss of a sequence-level head, one definition for every model of the workspace.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Targets of a sequence-level head.
#[derive(Debug, Clone)]
pub enum Labels {
    /// Class indices for classification, `[batch]`.
    Classes(Tensor<1, Int>),
    /// Real-valued targets for regression (a one-output head), `[batch]`.
    Scores(Tensor<1>),
}

/// Mean loss over the batch: cross-entropy for [`Labels::Classes`], mean squared error for
/// [`Labels::Scores`] (which needs a one-output head), as Hugging Face's
/// `*ForSequenceClassification` computes it.
///
/// # Shapes
///
/// - logits: `[batch, outputs]`
/// - labels: `[batch]`
/// - output: `[1]`
///
/// # Panics
///
/// If the batch sizes differ, or scores are given to a head with more than one output.
pub fn sequence_loss(logits: Tensor<2>, labels: Labels) -> Tensor<1> {
    let [batch, outputs] = logits.dims();
    match labels {
        Labels::Classes(classes) => {
            assert_eq!(
                classes.dims(),
                [batch],
                "labels and logits differ in batch size"
            );
            log_softmax(logits, 1) // [batch, outputs]
                .gather(1, classes.reshape([batch, 1])) // [batch, 1]
                .mean()
                .neg()
        }
        Labels::Scores(scores) => {
            assert_eq!(
                outputs, 1,
                "regression needs a one-output head, got {outputs}"
            );
            assert_eq!(
                scores.dims(),
                [batch],
                "labels and logits differ in batch size"
            );
            (logits.reshape([batch]) - scores).square().mean() // [1]
        }
    }
}
