//! A linear layer whose weight carries per-task low-rank biases (for token or embedding inputs,
//! such as the text-conditioning baselines).

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

use crate::task_bias::{merged_weight, per_sample_weights};
use crate::{TaskBias, TaskBiased, TaskWeights};

/// `y = x (W + sum_t a_t B1_t B2_t)^T + b`, with `W: [d_out, d_in]` as in PyTorch's `nn.Linear`.
#[derive(Module, Debug)]
pub struct ModulatedLinear {
    /// The general weight `W`, `[d_out, d_in]`.
    pub weight: Param<Tensor<2>>,
    /// The (task-independent) bias, `[d_out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// One low-rank bias per task on `W`; empty for a plain layer.
    pub task_biases: Vec<TaskBias>,
}

impl ModulatedLinear {
    /// A plain linear layer, initialised as PyTorch's `nn.Linear`.
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Self {
        let bound = (1.0 / d_in as f64).sqrt();
        let uniform = Distribution::Uniform(-bound, bound);
        Self {
            weight: Param::from_tensor(Tensor::random([d_out, d_in], uniform, device)),
            bias: bias.then(|| Param::from_tensor(Tensor::random([d_out], uniform, device))),
            task_biases: Vec::new(),
        }
    }

    /// # Shapes
    /// - x: `[batch, tokens, d_in]`
    /// - tasks: `[batch, tasks]` weights
    /// - output: `[batch, tokens, d_out]`
    pub fn forward(&self, x: Tensor<3>, tasks: Option<&TaskWeights>) -> Tensor<3> {
        let [d_out, d_in] = self.weight.dims();
        let weights = match tasks {
            Some(tasks) if !self.task_biases.is_empty() && !tasks.active().is_empty() => {
                per_sample_weights(self.weight.val(), &self.task_biases, tasks)
            }
            _ => self.weight.val().reshape([1, d_out, d_in]),
        };
        let y = x.matmul(weights.swap_dims(1, 2)); // [B, T, d_out]
        match &self.bias {
            Some(bias) => y + bias.val().reshape([1, 1, d_out]),
            None => y,
        }
    }

    /// Folds the task mix into `W` and drops the task biases.
    pub fn merge(&self, mix: &[f32]) -> Self {
        Self {
            weight: Param::from_tensor(merged_weight(self.weight.val(), &self.task_biases, mix)),
            bias: self.bias.as_ref().map(|bias| Param::from_tensor(bias.val().detach())),
            task_biases: Vec::new(),
        }
    }
}

impl TaskBiased for ModulatedLinear {
    fn matrix_shape(&self) -> (usize, usize) {
        let [d_out, d_in] = self.weight.dims();
        (d_out, d_in)
    }

    fn task_biases(&self) -> &[TaskBias] {
        &self.task_biases
    }

    fn push_task_bias(&mut self, bias: TaskBias) {
        self.task_biases.push(bias);
    }

    fn device(&self) -> Device {
        self.weight.device()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RankPolicy;
    use burn::tensor::{TensorData, Tolerance};

    fn layer(tasks: usize) -> ModulatedLinear {
        let device = Device::flex();
        let mut layer = ModulatedLinear::new(6, 5, true, &device).with_task_biases(tasks, &RankPolicy::Constant { rank: 2 });
        for bias in &mut layer.task_biases {
            let shape = bias.b1.dims();
            bias.b1 = Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, 0.3), &device));
        }
        layer
    }

    fn close(a: Tensor<3>, b: Tensor<3>) {
        a.into_data().assert_approx_eq::<f32>(&b.into_data(), Tolerance::rel_abs(1e-5, 1e-6));
    }

    #[test]
    fn plain_forward_is_x_w_transposed_plus_b() {
        let device = Device::flex();
        let mut linear = ModulatedLinear::new(2, 1, true, &device);
        linear.weight = Param::from_tensor(Tensor::from_data(TensorData::from([[2.0f32, -1.0]]), &device));
        linear.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::from([0.5f32]), &device)));
        let x = Tensor::<3>::from_data(TensorData::from([[[3.0f32, 4.0]]]), &device);
        linear.forward(x, None).into_data().assert_eq(&TensorData::from([[[2.5f32]]]), false);
    }

    #[test]
    fn merged_equals_modulated_and_a_mixed_batch_equals_single_tasks() {
        let device = Device::flex();
        let layer = layer(3);
        let x = Tensor::<3>::random([2, 4, 6], Distribution::Default, &device);
        let mixed = layer.forward(x.clone(), Some(&TaskWeights::one_hot(&[2, 0], 3, &device)));
        let first = layer.merge(&[0.0, 0.0, 1.0]).forward(x.clone().slice([0..1, 0..4, 0..6]), None);
        let second = layer.merge(&[1.0, 0.0, 0.0]).forward(x.slice([1..2, 0..4, 0..6]), None);
        close(mixed, Tensor::cat(vec![first, second], 0));
    }

    #[test]
    fn a_new_task_starts_at_the_general_weight() {
        let device = Device::flex();
        let layer = layer(1).add_task(&RankPolicy::default());
        let x = Tensor::<3>::random([1, 3, 6], Distribution::Default, &device);
        close(layer.forward(x.clone(), Some(&TaskWeights::one_hot(&[1], 2, &device))), layer.forward(x, None));
        assert_eq!(layer.task_params(1), 4 * (5 + 6));
    }
}
