//! Depth-wise "same" convolution with a fast weight gradient on the CPU backends.
//!
//! Burn 0.22.1 computes every grouped convolution's weight gradient with a generic fallback
//! that runs one convolution per group: per channel for a depth-wise layer (per sample and
//! channel in the modulated path), on flex and libtorch alike; it was the largest single cost of
//! a training step (README, Benchmarks). On those backends this op records its own backward:
//! the input gradient is a depth-wise conv of the output gradient with the flipped kernel (the
//! backend's fast forward path), the weight gradient one pass over the data
//! (`dW[c, i, j] = sum over n, h, w of grad[n, c, h, w] * x[n, c, h + i - p, w + j - p]`).
//! Elsewhere (GPUs, inference) it is plain `conv2d`.

use burn::tensor::Tensor;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

/// `conv2d(x, weight, bias)` for a depth-wise weight `[C, 1, k, k]` (odd `k`, stride 1, padding
/// `k / 2`) on `x` `[N, C, H, W]`; with a fast backward when training on flex or libtorch.
pub fn depthwise_conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    let [channels, _, kernel, _] = weight.dims();
    let options = ConvOptions::new([1, 1], [kernel / 2, kernel / 2], [1, 1], channels);
    #[cfg(any(feature = "flex", feature = "tch"))]
    if let Some(y) = custom::on_cpu_autodiff(&x, &weight, &options) {
        return match bias {
            Some(bias) => y + bias.reshape([1, channels, 1, 1]),
            None => y,
        };
    }
    conv2d(x, weight, bias, options)
}

#[cfg(any(feature = "flex", feature = "tch"))]
mod custom {
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::Tensor;
    use burn::tensor::ops::ConvOptions;
    use rayon::prelude::*;

    use crate::cpu_backend::{CpuBackendOp, from_host, host_values, on_cpu_backend};
    use crate::glue::record;
    use crate::simd::dot;

    /// The op when `x` and `weight` are autodiff tensors of a CPU backend built in, else `None`.
    pub(super) fn on_cpu_autodiff(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> Option<Tensor<4>> {
        on_cpu_backend(&Depthwise { x, weight, options })
    }

    /// The op's inputs, for [`on_cpu_backend`].
    struct Depthwise<'a> {
        x: &'a Tensor<4>,
        weight: &'a Tensor<4>,
        options: &'a ConvOptions<2>,
    }

    impl CpuBackendOp for Depthwise<'_> {
        type Output = Tensor<4>;

        fn dtype(&self) -> burn::tensor::DType {
            self.x.dtype()
        }

        fn on<B: Backend>(&self) -> Option<Tensor<4>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            tracked::<B>(self.x, self.weight, self.options)
        }
    }

    /// The op on `B`'s autodiff tensors, or `None` when `x` and `weight` are not both there.
    pub(super) fn tracked<B: Backend>(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> Option<Tensor<4>>
    where
        DispatchTensor: DispatchKindConversion<Autodiff<B>>,
    {
        let x = x.clone().try_into_primitive::<Autodiff<B>>().ok()?;
        let weight = weight.clone().try_into_primitive::<Autodiff<B>>().ok()?;
        let y = B::conv2d(x.primitive().clone(), weight.primitive().clone(), None, options.clone());
        let inputs = [x, weight];
        let output = record(DepthwiseConv, &inputs, y, |checkpoint, _| (checkpoint(&inputs[0]), checkpoint(&inputs[1]), options.clone()));
        Some(Tensor::from_primitive::<Autodiff<B>>(output))
    }

    #[derive(Debug)]
    struct DepthwiseConv;

    impl<B: Backend> Backward<B, 2> for DepthwiseConv {
        type State = (NodeId, NodeId, ConvOptions<2>);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let [node_x, node_weight] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (x_state, weight_state, options) = ops.state;
            let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
            let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
            if let Some(node) = node_x {
                // Stride 1 and "same" padding: the transposed conv is the conv with the kernel
                // flipped, which runs on the backend's fast depth-wise forward path.
                grads.register::<B>(node.id, B::conv2d(grad.clone(), B::float_flip(weight.clone(), &[2, 3]), None, options));
            }
            if let Some(node) = node_weight {
                let kernel = weight.shape().dims::<4>()[2];
                grads.register::<B>(node.id, weight_gradient::<B>(x, grad, kernel));
            }
        }
    }

    /// `dW` `[C, 1, k, k]` of a stride-1, `k / 2`-padded depth-wise conv, from its input and output
    /// gradient (both `[N, C, H, W]`), computed on the host: one pass, channels in parallel.
    fn weight_gradient<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>, kernel: usize) -> FloatTensor<B> {
        let device = x.device();
        let [batch, channels, height, width] = x.shape().dims::<4>();
        let (x, grad) = (host_values::<B>(&x), host_values::<B>(&grad));
        let (x, grad) = (&*x, &*grad);
        let plane = height * width;
        let gradient: Vec<f32> = (0..channels)
            .into_par_iter()
            .flat_map_iter(|channel| {
                let mut taps = vec![0f32; kernel * kernel];
                for sample in 0..batch {
                    let offset = (sample * channels + channel) * plane;
                    add_plane_products(&mut taps, &grad[offset..offset + plane], &x[offset..offset + plane], width, kernel);
                }
                taps
            })
            .collect();
        from_host::<B>(gradient, [channels, 1, kernel, kernel], &device)
    }

    /// Adds to `taps[i * k + j]` the sum over the pixels `(h, w)` of one plane of
    /// `grad[h, w] * x[h + i - k / 2, w + j - k / 2]`, in-image terms only. Each tap is one
    /// run over the flattened plane (row ends included, which pairs a pixel with one that
    /// wrapped around into the next or previous row), less those wrapped pairs: long runs
    /// vectorise, where one run per row of a narrow map (8 to 64 pixels) did not.
    fn add_plane_products(taps: &mut [f32], grad: &[f32], x: &[f32], width: usize, kernel: usize) {
        let (plane, pad) = (grad.len() as isize, (kernel / 2) as isize);
        let height = grad.len() / width;
        for (tap, total) in taps.iter_mut().enumerate() {
            let (dy, dx) = ((tap / kernel) as isize - pad, (tap % kernel) as isize - pad);
            if dx.unsigned_abs() >= width || dy.unsigned_abs() >= height {
                continue; // the tap never overlaps the input (kernel wider than the map)
            }
            let offset = dy * width as isize + dx;
            let (start, end) = ((-offset).max(0) as usize, (plane - offset.max(0)) as usize);
            let input = |pixel: usize| (pixel as isize + offset) as usize;
            *total += dot(&grad[start..end], &x[input(start)..input(end)]);
            // The pixels whose column w + dx lies outside the row, where the run read x from
            // the neighbouring row.
            let wrapped = if dx > 0 { width - dx as usize..width } else { 0..dx.unsigned_abs() };
            let excess: f32 = (0..height)
                .flat_map(|row| wrapped.clone().map(move |column| row * width + column))
                .filter(|pixel| (start..end).contains(pixel))
                .map(|pixel| grad[pixel] * x[input(pixel)])
                .sum();
            *total -= excess;
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::test_tolerance::assert_close_at_scale;
    use burn::tensor::{Device, Distribution};

    /// The op's forward and both gradients equal the generic `conv2d`'s, including the borders
    /// a non-square input and a kernel wider than the input; the op is the custom one on flex's autodiff tensors only.
    #[test]
    fn gradients_equal_the_generic_convolution() {
        let device = Device::flex().autodiff();
        for (kernel, height, width) in [(3, 7, 6), (5, 7, 6), (5, 1, 2)] {
            let x = Tensor::<4>::random([2, 5, height, width], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let weight = Tensor::<4>::random([5, 1, kernel, kernel], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let upstream = Tensor::<4>::random([2, 5, height, width], Distribution::Normal(0.0, 1.0), &device);
            let options = ConvOptions::new([1, 1], [kernel / 2, kernel / 2], [1, 1], 5);
            assert!(custom::tracked::<burn::backend::Flex>(&x, &weight, &options).is_some());
            assert!(custom::tracked::<burn::backend::Flex>(&x.clone().inner(), &weight.clone().inner(), &options).is_none());
            let bias = Tensor::<1>::random([5], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let fast = depthwise_conv2d(x.clone(), weight.clone(), Some(bias.clone()));
            let generic = conv2d(x.clone(), weight.clone(), Some(bias.clone()), options);
            assert_close_at_scale(fast.clone(), generic.clone());
            let fast_grads = (fast * upstream.clone()).sum().backward();
            let generic_grads = (generic * upstream).sum().backward();
            for parameter in [&x, &weight] {
                let (ours, theirs) = (parameter.grad(&fast_grads).unwrap(), parameter.grad(&generic_grads).unwrap());
                assert_close_at_scale(ours, theirs);
            }
            let (ours, theirs) = (bias.grad(&fast_grads).unwrap(), bias.grad(&generic_grads).unwrap());
            assert_close_at_scale(ours, theirs);
        }
    }
}
