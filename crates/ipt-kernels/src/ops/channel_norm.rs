//! Channel LayerNorm as one op: on flex a kernel of its own, forward and backward.
//!
//! Written with Burn's generic ops the norm is nine element-wise passes and reductions over the
//! channel axis forward and about twice that backward, each allocating a full map; on flex
//! 0.22.1 it cost several times PyTorch's fused `LayerNorm` (`cargo xtask bench-ops`). On flex
//! this op reads the map once on the host (pixels in parallel) and records its own backward;
//! elsewhere it is the generic formulation.

use burn::tensor::Tensor;

/// `(x - mean_c) / sqrt(var_c + epsilon) * weight + bias` over the channel axis of `x`
/// `[N, C, H, W]` (biased variance, as `nn.LayerNorm`), `weight` and `bias` `[C]`.
pub fn channel_layer_norm(x: Tensor<4>, weight: Tensor<1>, bias: Tensor<1>, epsilon: f64) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = crate::cpu_backend::on_flex(&cpu::ChannelNorm { x: &x, weight: &weight, bias: &bias, epsilon }) {
        return y;
    }
    generic(x, weight, bias, epsilon)
}

/// The formulation in Burn's ops (what GPUs run, and the reference of the tests).
fn generic(x: Tensor<4>, weight: Tensor<1>, bias: Tensor<1>, epsilon: f64) -> Tensor<4> {
    let [_, channels, _, _] = x.dims();
    let centred = x.clone() - x.mean_dim(1); // [B, C, H, W]
    let variance = centred.clone().square().mean_dim(1); // [B, 1, H, W]
    let normalised = centred / (variance + epsilon).sqrt();
    normalised * weight.reshape([1, channels, 1, 1]) + bias.reshape([1, channels, 1, 1])
}

#[cfg(feature = "flex")]
/// The host kernels on `[N, C, P]` values (`P` pixels per channel plane). Work is split into
/// tasks of one sample's run of [`PIXELS_PER_TASK`] pixels, across all channels.
mod host {
    use pulp::{Arch, Simd, WithSimd};
    use rayon::prelude::*;

    use crate::simd::sum_in;

    /// Pixels per parallel task: enough to vectorise the per-channel loops and amortise the
    /// task, small enough to keep the statistics in L1 and give both cores work on one image.
    const PIXELS_PER_TASK: usize = 512;

    /// One task's pixel run: `[start, end)` of the planes of one sample.
    #[derive(Clone, Copy)]
    struct Run {
        sample: usize,
        start: usize,
        end: usize,
    }

    /// Splits `values` `[N, C, P]` into one list of channel pieces per [`Run`].
    fn pieces_per_run(values: &mut [f32], channels: usize, pixels: usize) -> Vec<(Run, Vec<&mut [f32]>)> {
        let mut runs = Vec::new();
        for (sample, planes) in values.chunks_mut(channels * pixels).enumerate() {
            let first = runs.len();
            for start in (0..pixels).step_by(PIXELS_PER_TASK) {
                runs.push((Run { sample, start, end: (start + PIXELS_PER_TASK).min(pixels) }, Vec::with_capacity(channels)));
            }
            for plane in planes.chunks_mut(pixels) {
                for (offset, piece) in plane.chunks_mut(PIXELS_PER_TASK).enumerate() {
                    runs[first + offset].1.push(piece);
                }
            }
        }
        runs
    }

    /// The `[C, length]` block of `values` `[N, C, P]` under `run`, contiguous: the backward
    /// reads `x` and the gradient four times, faster from this copy than from rows `P` floats
    /// apart (`cargo xtask bench-ops --channels 64`: backward 12.9 -> 9.0 ms).
    fn block(values: &[f32], run: Run, channels: usize, pixels: usize) -> Vec<f32> {
        (0..channels).flat_map(|channel| row(values, run, channel, channels, pixels)).copied().collect()
    }

    /// Mean and reciprocal standard deviation of each of `length` pixels over the `channels`
    /// rows that `rows` yields (called twice: once for the mean, once for the variance).
    #[inline(always)]
    fn statistics<'a, Rows: Iterator<Item = &'a [f32]>>(
        rows: impl Fn() -> Rows,
        length: usize,
        channels: usize,
        epsilon: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        let count = channels as f32;
        let mut mean = vec![0f32; length];
        for row in rows() {
            mean.iter_mut().zip(row).for_each(|(total, value)| *total += value);
        }
        mean.iter_mut().for_each(|total| *total /= count);
        let mut variance = vec![0f32; length];
        for row in rows() {
            variance.iter_mut().zip(row).zip(&mean).for_each(|((total, value), mean)| *total += (value - mean) * (value - mean));
        }
        let inverse_std = variance.iter().map(|total| 1.0 / (total / count + epsilon).sqrt()).collect();
        (mean, inverse_std)
    }

    /// The `length` values of `channel` under `run` in `values` `[N, C, P]`.
    #[inline(always)]
    fn row(values: &[f32], run: Run, channel: usize, channels: usize, pixels: usize) -> &[f32] {
        let offset = (run.sample * channels + channel) * pixels;
        &values[offset + run.start..offset + run.end]
    }

    /// The norm of `x` `[N, C, P]`.
    pub(super) fn forward(x: &[f32], weight: &[f32], bias: &[f32], pixels: usize, epsilon: f32) -> Vec<f32> {
        let channels = weight.len();
        let mut y = crate::buffers::zeros(x.len());
        pieces_per_run(&mut y, channels, pixels).into_par_iter().for_each(|(run, outputs)| {
            Arch::new().dispatch(ForwardRun { x, weight, bias, run, outputs, pixels, epsilon });
        });
        y
    }

    /// Gradients of the norm of `x` with respect to `x`, `weight` and `bias`, given the output
    /// gradient `grad` (same shape as `x`).
    pub(super) fn backward(x: &[f32], weight: &[f32], grad: &[f32], pixels: usize, epsilon: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let channels = weight.len();
        let mut dx = crate::buffers::zeros(x.len());
        let partials: Vec<(Vec<f32>, Vec<f32>)> = pieces_per_run(&mut dx, channels, pixels)
            .into_par_iter()
            .map(|(run, outputs)| Arch::new().dispatch(BackwardRun { x, weight, grad, run, outputs, pixels, epsilon }))
            .collect();
        let (mut dweight, mut dbias) = (vec![0f32; channels], vec![0f32; channels]);
        for (weight_part, bias_part) in partials {
            dweight.iter_mut().zip(weight_part).for_each(|(total, part)| *total += part);
            dbias.iter_mut().zip(bias_part).for_each(|(total, part)| *total += part);
        }
        (dx, dweight, dbias)
    }

    /// One run of [`forward`]; its loops vectorise at the CPU's widest SIMD level.
    struct ForwardRun<'a> {
        x: &'a [f32],
        weight: &'a [f32],
        bias: &'a [f32],
        run: Run,
        outputs: Vec<&'a mut [f32]>,
        pixels: usize,
        epsilon: f32,
    }

    impl WithSimd for ForwardRun<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let (x, weight, bias, run, channels, pixels) = (self.x, self.weight, self.bias, self.run, self.weight.len(), self.pixels);
            // Read in place: three passes over a block copy cost more than the copy saves here.
            let rows = || (0..channels).map(|channel| row(x, run, channel, channels, pixels));
            let (mean, inverse_std) = statistics(rows, run.end - run.start, channels, self.epsilon);
            for (channel, (output, values)) in self.outputs.into_iter().zip(rows()).enumerate() {
                let (scale, shift) = (weight[channel], bias[channel]);
                for (((out, value), mean), inverse_std) in output.iter_mut().zip(values).zip(&mean).zip(&inverse_std) {
                    *out = (value - mean) * inverse_std * scale + shift;
                }
            }
        }
    }

    /// One run of [`backward`], giving its share of the weight and bias gradients; its loops
    /// vectorise at the CPU's widest SIMD level.
    struct BackwardRun<'a> {
        x: &'a [f32],
        weight: &'a [f32],
        grad: &'a [f32],
        run: Run,
        outputs: Vec<&'a mut [f32]>,
        pixels: usize,
        epsilon: f32,
    }

    impl WithSimd for BackwardRun<'_> {
        type Output = (Vec<f32>, Vec<f32>);

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) -> (Vec<f32>, Vec<f32>) {
            let (x, weight, grad, run, outputs, channels, pixels, epsilon) =
                (self.x, self.weight, self.grad, self.run, self.outputs, self.weight.len(), self.pixels, self.epsilon);
            let length = run.end - run.start;
            let (x, grad) = (block(x, run, channels, pixels), block(grad, run, channels, pixels));
            let (mean, inverse_std) = statistics(|| x.chunks_exact(length), length, channels, epsilon);
            // xhat, then per pixel sum_c g_c and sum_c g_c * xhat_c with g = grad * weight.
            let mut normalised = x;
            for row in normalised.chunks_exact_mut(length) {
                row.iter_mut().zip(&mean).zip(&inverse_std).for_each(|((value, mean), inverse_std)| *value = (*value - mean) * inverse_std);
            }
            let (mut grad_sum, mut grad_dot) = (vec![0f32; length], vec![0f32; length]);
            let (mut dweight, mut dbias) = (vec![0f32; channels], vec![0f32; channels]);
            let mut product = vec![0f32; length];
            for (channel, (upstream, xhat)) in grad.chunks_exact(length).zip(normalised.chunks_exact(length)).enumerate() {
                let scale = weight[channel];
                product.iter_mut().zip(upstream).zip(xhat).for_each(|((product, g), xhat)| *product = g * xhat);
                grad_sum.iter_mut().zip(upstream).for_each(|(total, g)| *total += g * scale);
                grad_dot.iter_mut().zip(&product).for_each(|(total, product)| *total += product * scale);
                dweight[channel] = sum_in(simd, &product);
                dbias[channel] = sum_in(simd, upstream);
            }
            let count = channels as f32;
            for (channel, ((output, upstream), xhat)) in
                outputs.into_iter().zip(grad.chunks_exact(length)).zip(normalised.chunks_exact(length)).enumerate()
            {
                let scale = weight[channel];
                for index in 0..length {
                    output[index] =
                        inverse_std[index] * (upstream[index] * scale - grad_sum[index] / count - xhat[index] * grad_dot[index] / count);
                }
            }
            (dweight, dbias)
        }
    }
}

#[cfg(feature = "flex")]
mod cpu {
    use crate::cpu_backend::{CpuBackendOp, from_host, host_values};
    use crate::glue::record;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::Tensor;

    use super::host;

    /// The norm's inputs, for `on_flex`.
    pub(super) struct ChannelNorm<'a> {
        pub(super) x: &'a Tensor<4>,
        pub(super) weight: &'a Tensor<1>,
        pub(super) bias: &'a Tensor<1>,
        pub(super) epsilon: f64,
    }

    impl CpuBackendOp for ChannelNorm<'_> {
        type Output = Tensor<4>;

        fn dtype(&self) -> burn::tensor::DType {
            self.x.dtype()
        }

        /// On `B`'s autodiff tensors the tracked op; on its plain tensors the forward kernel.
        fn on<B: Backend>(&self) -> Option<Tensor<4>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            let tracked = (
                self.x.clone().try_into_primitive::<Autodiff<B>>(),
                self.weight.clone().try_into_primitive::<Autodiff<B>>(),
                self.bias.clone().try_into_primitive::<Autodiff<B>>(),
            );
            if let (Ok(x), Ok(weight), Ok(bias)) = tracked {
                let y = forward::<B>(x.primitive(), weight.primitive(), bias.primitive(), self.epsilon);
                let inputs = [x, weight, bias];
                let output =
                    record(NormBackward, &inputs, y, |checkpoint, _| (checkpoint(&inputs[0]), checkpoint(&inputs[1]), self.epsilon));
                return Some(Tensor::from_primitive::<Autodiff<B>>(output));
            }
            let x = self.x.clone().try_into_primitive::<B>().ok()?;
            let weight = self.weight.clone().try_into_primitive::<B>().ok()?;
            let bias = self.bias.clone().try_into_primitive::<B>().ok()?;
            Some(Tensor::from_primitive::<B>(forward::<B>(&x, &weight, &bias, self.epsilon)))
        }
    }

    /// `[N, C, P]` pixels of a `[N, C, H, W]` shape.
    fn pixels(shape: &[usize]) -> usize {
        shape[2] * shape[3]
    }

    fn forward<B: Backend>(x: &FloatTensor<B>, weight: &FloatTensor<B>, bias: &FloatTensor<B>, epsilon: f64) -> FloatTensor<B> {
        let (device, shape) = (x.device(), x.shape());
        let (x, weight, bias) = (host_values::<B>(x), host_values::<B>(weight), host_values::<B>(bias));
        let y = host::forward(&x, &weight, &bias, pixels(&shape), epsilon as f32);
        from_host::<B>(y, shape, &device)
    }

    #[derive(Debug)]
    struct NormBackward;

    impl<B: Backend> Backward<B, 3> for NormBackward {
        type State = (NodeId, NodeId, f64);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let [node_x, node_weight, node_bias] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (x_state, weight_state, epsilon) = ops.state;
            let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
            let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
            let (device, shape, channels) = (x.device(), x.shape(), weight.shape()[0]);
            let (x, weight, grad) = (host_values::<B>(&x), host_values::<B>(&weight), host_values::<B>(&grad));
            let (dx, dweight, dbias) = host::backward(&x, &weight, &grad, pixels(&shape), epsilon as f32);
            for (node, values, dims) in
                [(node_x, dx, shape), (node_weight, dweight, [channels].into()), (node_bias, dbias, [channels].into())]
            {
                if let Some(node) = node {
                    grads.register::<B>(node.id, from_host::<B>(values, dims, &device));
                }
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tolerance};

    fn inputs(device: &Device) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
        (
            Tensor::<4>::random([2, 5, 23, 29], Distribution::Normal(0.5, 2.0), device),
            Tensor::<1>::random([5], Distribution::Normal(1.0, 0.5), device),
            Tensor::<1>::random([5], Distribution::Normal(0.0, 0.5), device),
        )
    }

    fn close<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>) {
        within(ours, theirs, 1e-5);
    }

    fn within<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>, absolute: f64) {
        ours.into_data().assert_approx_eq::<f32>(&theirs.into_data(), Tolerance::rel_abs(1e-4, absolute));
    }

    /// On plain flex tensors (inference) the kernel runs and equals the generic formulation,
    /// with a pixel count that is not a multiple of the task size.
    #[test]
    fn forward_kernel_equals_the_generic_formulation() {
        let (x, weight, bias) = inputs(&Device::flex());
        let op = cpu::ChannelNorm { x: &x, weight: &weight, bias: &bias, epsilon: 1e-5 };
        let fast = crate::cpu_backend::on_flex(&op).expect("flex tensors take the kernel");
        close(fast, generic(x, weight, bias, 1e-5));
    }

    /// On autodiff tensors the tracked kernel's output and its gradients with respect to the
    /// input, the weight and the bias equal the generic formulation's.
    #[test]
    fn gradients_equal_the_generic_formulation() {
        let device = Device::flex().autodiff();
        let (x, weight, bias) = inputs(&device);
        let (x, weight, bias) = (x.require_grad(), weight.require_grad(), bias.require_grad());
        let upstream = Tensor::<4>::random([2, 5, 23, 29], Distribution::Normal(0.0, 1.0), &device);
        let op = cpu::ChannelNorm { x: &x, weight: &weight, bias: &bias, epsilon: 1e-5 };
        let fast = crate::cpu_backend::on_flex(&op).expect("autodiff flex tensors take the kernel");
        let reference = generic(x.clone(), weight.clone(), bias.clone(), 1e-5);
        close(fast.clone(), reference.clone());
        let (fast_grads, reference_grads) = ((fast * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
        close(x.grad(&fast_grads).unwrap(), x.grad(&reference_grads).unwrap());
        // Sums of ~1,300 O(1) terms of both signs, accumulated in another order: f32 gives ~1e-4.
        within(weight.grad(&fast_grads).unwrap(), weight.grad(&reference_grads).unwrap(), 3e-4);
        within(bias.grad(&fast_grads).unwrap(), bias.grad(&reference_grads).unwrap(), 3e-4);
    }
}
