//! A 2D convolution (any kernel size and groups) whose weight carries per-task low-rank biases.

use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};

use crate::task_bias::{ActiveFactors, merged_weight, per_sample_weights};
use crate::{TaskBias, TaskBiased, TaskWeights};
use ipt_kernels::{depthwise_conv2d, on_flex_tensor, pointwise_conv, same_conv_training};

/// A stride-1 "same" convolution with weight `W_general + sum_t a_t * B1_t @ B2_t`.
///
/// Without task weights, or without task biases, it is a plain convolution with `W_general`.
/// Field names follow `nn.Conv2d` (`weight`, `bias`), so a merged layer loads into PyTorch.
#[derive(Module, Debug)]
pub struct ModulatedConv2d {
    /// The general weight `W`, `[C_out, C_in / groups, k, k]`.
    pub weight: Param<Tensor<4>>,
    /// The (task-independent) output bias, `[C_out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// One low-rank bias per task, on `W` seen as `[C_out, C_in / groups * k * k]`; empty for
    /// layers that are not modulated.
    pub task_biases: Vec<TaskBias>,
    groups: usize,
}

impl ModulatedConv2d {
    /// A plain (no task bias) convolution, initialised as PyTorch's `nn.Conv2d`.
    pub fn new(channels_in: usize, channels_out: usize, kernel: usize, groups: usize, bias: bool, device: &Device) -> Self {
        assert!(kernel % 2 == 1, "same-padding convolutions need an odd kernel, got {kernel}");
        assert!(
            channels_in.is_multiple_of(groups) && channels_out.is_multiple_of(groups),
            "groups {groups} must divide both {channels_in} input and {channels_out} output channels"
        );
        let fan_in = channels_in / groups * kernel * kernel;
        let bound = (1.0 / fan_in as f64).sqrt();
        let uniform = Distribution::Uniform(-bound, bound);
        Self {
            weight: Param::from_tensor(Tensor::random([channels_out, channels_in / groups, kernel, kernel], uniform, device)),
            bias: bias.then(|| Param::from_tensor(Tensor::random([channels_out], uniform, device))),
            task_biases: Vec::new(),
            groups,
        }
    }

    /// Applies the layer; `tasks` mixes the task biases per sample.
    ///
    /// # Shapes
    /// - x: `[batch, C_in, H, W]`
    /// - tasks: `[batch, tasks]` weights, tasks in the order the biases were added
    /// - output: `[batch, C_out, H, W]`
    pub fn forward(&self, x: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        match tasks {
            Some(tasks) if !self.task_biases.is_empty() && !tasks.active().is_empty() => self.forward_modulated(x, tasks),
            _ => self.forward_general(x),
        }
    }

    /// The layer with its general weight only.
    fn forward_general(&self, x: Tensor<4>) -> Tensor<4> {
        let [out, in_per_group, kernel, _] = self.weight.dims();
        if kernel == 1 && self.groups == 1 {
            let weights = self.weight.val().reshape([1, out, in_per_group]);
            return self.pointwise(weights, x);
        }
        if self.is_depthwise() {
            return depthwise_conv2d(x, self.weight.val(), self.bias.as_ref().map(Param::val));
        }
        if self.groups == 1
            && let Some(y) = self.same_conv(&x, &self.weight.val().reshape([1, out, in_per_group * kernel * kernel]))
        {
            return y;
        }
        conv2d(x, self.weight.val(), self.bias.as_ref().map(Param::val), self.options(self.groups))
    }

    /// The `k x k` convolution (groups 1) as a patch-matrix product while training on flex, where
    /// Burn's weight gradient of `conv2d` is slow; `None` elsewhere.
    ///
    /// # Shapes
    /// - x: `[batch, C_in, H, W]`
    /// - weights: `[1 or batch, C_out, C_in * k * k]`
    fn same_conv(&self, x: &Tensor<4>, weights: &Tensor<3>) -> Option<Tensor<4>> {
        let [_, _, kernel, _] = self.weight.dims();
        same_conv_training(x, weights, self.bias.as_ref().map(Param::val).as_ref(), kernel)
    }

    /// A 1x1 convolution as a (batched) matrix product over the pixels: faster than `conv2d` on
    /// flex, forward and backward (`cargo xtask bench --vs-pytorch`).
    ///
    /// # Shapes
    /// - weights: `[1 or batch, C_out, C_in]`
    /// - x: `[batch, C_in, H, W]`
    fn pointwise(&self, weights: Tensor<3>, x: Tensor<4>) -> Tensor<4> {
        pointwise_conv(x, weights, self.bias.as_ref().map(Param::val))
    }

    fn forward_modulated(&self, x: Tensor<4>, tasks: &TaskWeights) -> Tensor<4> {
        let [batch, channels_in, height, width] = x.dims();
        let [out, in_per_group, kernel, _] = self.weight.dims();
        if self.groups == 1 && kernel > 1 && batch > 1 && !on_flex_tensor(&x) {
            return self.forward_low_rank_branch(x, tasks);
        }
        // [B, out, cols]: at least one task is active, so the batch dimension is there.
        let general = self.weight.val().reshape([out, in_per_group * kernel * kernel]);
        let weights = per_sample_weights(general, &self.task_biases, tasks);
        if kernel == 1 && self.groups == 1 {
            return self.pointwise(weights, x);
        }
        if self.groups == 1
            && let Some(y) = self.same_conv(&x, &weights)
        {
            return y;
        }
        // Per-sample weights as one grouped conv: sample b's channels form groups of their own,
        // each with its channel's bias.
        let x = x.reshape([1, batch * channels_in, height, width]);
        let weights = weights.reshape([batch * out, in_per_group, kernel, kernel]);
        let bias = self.bias.as_ref().map(|bias| bias.val().reshape([1, out]).expand([batch, out]).reshape([batch * out]));
        let y = if self.is_depthwise() {
            depthwise_conv2d(x, weights, bias)
        } else {
            conv2d(x, weights, bias, self.options(batch * self.groups))
        };
        y.reshape([batch, out, height, width])
    }

    /// `W * x + sum_t a_t B1_t (B2_t * x)` with convolutions shared by the batch: every active
    /// task's `B2` as one `k x k` convolution to `tasks x rank` channels, the per-sample task
    /// weights scaling those channels, and every `B1` as one 1x1 convolution back. A mixed batch
    /// then costs the backbone's convolution plus two thin ones, where per-sample weights need a
    /// grouped convolution with one group per sample (slow on GPUs). Flex runs per-sample
    /// weights as fast as shared ones (training: [`same_conv_training`]; inference: its grouped
    /// convolution, where this branch measured twice the cost, `cargo xtask bench-ops`) and
    /// keeps them.
    ///
    /// # Shapes
    /// - x: `[batch, C_in, H, W]` (groups 1)
    /// - output: `[batch, C_out, H, W]`
    fn forward_low_rank_branch(&self, x: Tensor<4>, tasks: &TaskWeights) -> Tensor<4> {
        let [batch, channels_in, _, _] = x.dims();
        let [out, _, kernel, _] = self.weight.dims();
        let factors = ActiveFactors::of(&self.task_biases, tasks);
        let rank = factors.rank();
        let down = factors.down.reshape([rank, channels_in, kernel, kernel]);
        let projected = conv2d(x.clone(), down, None, self.options(1)) * factors.scale.reshape([batch, rank, 1, 1]);
        self.forward_general(x) + pointwise_conv(projected, factors.up.reshape([1, out, rank]), None)
    }

    /// One input channel per output channel: run by [`depthwise_conv2d`].
    fn is_depthwise(&self) -> bool {
        let [out, in_per_group, _, _] = self.weight.dims();
        in_per_group == 1 && self.groups == out
    }

    fn options(&self, groups: usize) -> ConvOptions<2> {
        let [_, _, kernel, _] = self.weight.dims();
        let pad = kernel / 2;
        ConvOptions::new([1, 1], [pad, pad], [1, 1], groups)
    }

    /// Folds the task mix `mix` (one weight per task) into `W` and drops the task biases: the
    /// result is a plain convolution costing exactly the backbone's.
    pub fn merge(&self, mix: &[f32]) -> Self {
        let shape = self.weight.dims();
        let (rows, columns) = self.matrix_shape();
        let weight = merged_weight(self.weight.val().reshape([rows, columns]), &self.task_biases, mix);
        Self {
            weight: Param::from_tensor(weight.reshape(shape)),
            bias: self.bias.as_ref().map(|bias| Param::from_tensor(bias.val().detach())),
            task_biases: Vec::new(),
            groups: self.groups,
        }
    }
}

impl TaskBiased for ModulatedConv2d {
    /// `W` as `(C_out, C_in / groups * k * k)`.
    fn matrix_shape(&self) -> (usize, usize) {
        let [out, in_per_group, kernel, _] = self.weight.dims();
        (out, in_per_group * kernel * kernel)
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

    fn device() -> Device {
        Device::flex()
    }

    /// A layer with random (non-zero) biases for `tasks` tasks.
    fn modulated(channels_in: usize, channels_out: usize, kernel: usize, groups: usize, tasks: usize) -> ModulatedConv2d {
        let device = device();
        let mut layer = ModulatedConv2d::new(channels_in, channels_out, kernel, groups, true, &device)
            .with_task_biases(tasks, &RankPolicy::Constant { rank: 2 });
        for bias in &mut layer.task_biases {
            let shape = bias.b1.dims();
            bias.b1 = Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, 0.3), &device));
        }
        layer
    }

    fn input(batch: usize, channels: usize) -> Tensor<4> {
        Tensor::random([batch, channels, 6, 5], Distribution::Default, &device())
    }

    fn close(a: Tensor<4>, b: Tensor<4>) {
        a.into_data().assert_approx_eq::<f32>(&b.into_data(), Tolerance::rel_abs(1e-5, 1e-6));
    }

    #[test]
    fn zero_biases_reproduce_the_plain_conv_exactly() {
        for (kernel, groups) in [(1, 1), (3, 1), (3, 4)] {
            let layer = ModulatedConv2d::new(4, 8, kernel, groups, true, &device()).with_task_biases(3, &RankPolicy::default());
            let x = input(2, 4);
            let tasks = TaskWeights::one_hot(&[0, 2], 3, &device());
            let plain = layer.forward(x.clone(), None);
            close(layer.forward(x, Some(&tasks)), plain);
        }
    }

    #[test]
    fn merged_equals_modulated_for_every_kernel_kind() {
        for (kernel, groups) in [(1, 1), (3, 1), (5, 2), (3, 8)] {
            let layer = modulated(8, 8, kernel, groups, 3);
            let x = input(1, 8);
            let mix = [0.2f32, 0.0, 0.8];
            let soft = TaskWeights::new(Tensor::from_data(TensorData::new(mix.to_vec(), [1, 3]), &device()));
            let merged = layer.merge(&mix);
            assert!(merged.task_biases.is_empty());
            close(merged.forward(x.clone(), None), layer.forward(x, Some(&soft)));
        }
    }

    #[test]
    fn a_mixed_batch_equals_per_task_batches() {
        for (kernel, groups) in [(1, 1), (3, 1), (3, 6)] {
            let layer = modulated(6, 12, kernel, groups, 3);
            let x = input(3, 6);
            let mixed = layer.forward(x.clone(), Some(&TaskWeights::one_hot(&[2, 0, 1], 3, &device())));
            let single = |sample: usize, task: usize| {
                let xs = x.clone().slice([sample..sample + 1, 0..6, 0..6, 0..5]);
                layer.forward(xs, Some(&TaskWeights::one_hot(&[task], 3, &device())))
            };
            close(mixed, Tensor::cat(vec![single(0, 2), single(1, 0), single(2, 1)], 0));
        }
    }

    #[test]
    fn the_shared_low_rank_branch_equals_per_sample_weights_in_outputs_and_gradients() {
        let device = device().autodiff();
        let layer = modulated(5, 6, 3, 1, 3).fork(&device).train();
        let x = Tensor::<4>::random([3, 5, 6, 5], Distribution::Default, &device).require_grad();
        // Mixed hard and soft rows; task 1 is inactive everywhere.
        let soft = [1.0f32, 0.0, 0.0, 0.3, 0.0, 0.7, 0.0, 0.0, 1.0];
        let tasks = TaskWeights::new(Tensor::from_data(TensorData::new(soft.to_vec(), [3, 3]), &device));
        assert_eq!(tasks.active(), &[0, 2]);
        // On flex autodiff `forward` keeps per-sample weights (the patch-matrix product).
        let per_sample = layer.forward(x.clone(), Some(&tasks));
        let branch = layer.forward_low_rank_branch(x.clone(), &tasks);
        let probe = Tensor::<4>::random(per_sample.dims(), Distribution::Default, &device);
        let grads_per_sample = (per_sample.clone() * probe.clone()).sum().backward();
        let grads_branch = (branch.clone() * probe).sum().backward();
        close(branch.inner(), per_sample.inner());
        let same = |a: Option<Tensor<4>>, b: Option<Tensor<4>>| close(a.expect("a gradient"), b.expect("a gradient"));
        same(x.grad(&grads_branch), x.grad(&grads_per_sample));
        same(layer.weight.grad(&grads_branch), layer.weight.grad(&grads_per_sample));
        for task in [0, 2] {
            let bias = &layer.task_biases[task];
            bias.b1.grad(&grads_branch).expect("B1 gradient").into_data().assert_approx_eq::<f32>(
                &bias.b1.grad(&grads_per_sample).expect("B1 gradient").into_data(),
                Tolerance::rel_abs(1e-4, 1e-5),
            );
            bias.b2.grad(&grads_branch).expect("B2 gradient").into_data().assert_approx_eq::<f32>(
                &bias.b2.grad(&grads_per_sample).expect("B2 gradient").into_data(),
                Tolerance::rel_abs(1e-4, 1e-5),
            );
        }
        assert!(layer.task_biases[1].b1.grad(&grads_branch).is_none(), "the inactive task's B1 got a gradient");
    }

    #[test]
    fn different_tasks_give_different_outputs() {
        let layer = modulated(4, 4, 3, 1, 2);
        let x = input(1, 4);
        let a = layer.forward(x.clone(), Some(&TaskWeights::one_hot(&[0], 2, &device())));
        let b = layer.forward(x, Some(&TaskWeights::one_hot(&[1], 2, &device())));
        assert!((a - b).abs().max().into_scalar::<f32>() > 1e-3);
    }

    #[test]
    fn gradients_reach_w_and_active_tasks_only() {
        let device = device().autodiff();
        let layer = modulated(4, 6, 3, 1, 3).fork(&device).train();
        let x = Tensor::<4>::random([2, 4, 6, 5], Distribution::Default, &device);
        let tasks = TaskWeights::one_hot(&[0, 2], 3, &device);
        let grads = layer.forward(x, Some(&tasks)).sum().backward();
        let norm = |g: Option<Tensor<2>>| g.map(|g| g.abs().sum().into_scalar::<f32>());
        assert!(layer.weight.grad(&grads).is_some_and(|g| g.abs().sum().into_scalar::<f32>() > 0.0));
        for active in [0, 2] {
            assert!(norm(layer.task_biases[active].b1.grad(&grads)).is_some_and(|n| n > 0.0), "B1 of task {active}");
            assert!(norm(layer.task_biases[active].b2.grad(&grads)).is_some_and(|n| n > 0.0), "B2 of task {active}");
        }
        assert!(layer.task_biases[1].b1.grad(&grads).is_none(), "the inactive task's B1 got a gradient");
        assert!(layer.task_biases[1].b2.grad(&grads).is_none(), "the inactive task's B2 got a gradient");
    }

    #[test]
    fn a_new_task_starts_at_the_general_weight() {
        let layer = modulated(4, 4, 3, 1, 2).add_task(&RankPolicy::default());
        let x = input(1, 4);
        let general = layer.forward(x.clone(), None);
        close(layer.forward(x, Some(&TaskWeights::one_hot(&[2], 3, &device()))), general);
    }

    #[test]
    fn task_params_count_both_factors() {
        let layer = ModulatedConv2d::new(8, 16, 3, 1, true, &device()).with_task_biases(1, &RankPolicy::Constant { rank: 4 });
        assert_eq!(layer.task_params(0), 4 * (16 + 8 * 9));
        assert_eq!(layer.task_params(1), 0);
    }
}
