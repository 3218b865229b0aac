//! The router head: a small MLP from sentence features to the intents (trained by
//! `head_training`, feature `training`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor, TensorData};

use crate::intent::Intent;

/// Features -> hidden ReLU layer -> one logit per intent.
#[derive(Module, Debug)]
pub struct RouterHead {
    /// Features to hidden units.
    pub hidden: Linear,
    /// Hidden units to intent logits.
    pub output: Linear,
    dropout: Dropout,
}

impl RouterHead {
    /// A randomly initialised head for `features` inputs.
    pub fn new(features: usize, hidden: usize, dropout: f64, device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(features, hidden).init(device),
            output: LinearConfig::new(hidden, Intent::ALL.len()).init(device),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// Intent logits `[batch, 7]` of features `[batch, features]`.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let hidden = relu(self.hidden.forward(self.dropout.forward(features)));
        self.output.forward(self.dropout.forward(hidden))
    }

    /// Intent probabilities, one row of [`Intent::ALL`]-ordered values per feature vector.
    pub fn probabilities(&self, features: &[Vec<f32>], device: &Device) -> Vec<[f32; 7]> {
        let values: Vec<f32> = softmax(self.forward(stack(features, device)), 1).into_data().try_to_vec().expect("f32 probabilities");
        values.chunks_exact(7).map(|row| row.try_into().expect("7 intents")).collect()
    }
}

/// Feature vectors as one `[batch, features]` tensor.
pub(crate) fn stack(features: &[Vec<f32>], device: &Device) -> Tensor<2> {
    let width = features.first().map_or(0, Vec::len);
    Tensor::<2>::from_data(TensorData::new(features.concat(), [features.len(), width]), device)
}
