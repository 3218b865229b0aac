//! Stride-1 "same" convolutions as one matrix product per sample, bias fused, with their own
//! backward on flex.
//!
//! A 1x1 convolution in generic ops is a batched `matmul` and a bias `add` forward, and backward
//! two more matmuls, a sum of the broadcast weight's `[batch, out, in]` gradient and a reduction
//! for the bias. On flex 0.22.1 every matmul output is allocated zeroed and then copied once more
//! to align it (`FlexTensor::empty`), on the calling thread: in `perf` of the tiny training step
//! that allocation was a quarter of the main thread's time. Here each product is one `gemm` call
//! per sample writing into our own buffer (the forward's pre-filled with the bias), and the
//! weight gradient of a shared weight is summed over samples on the fly. A `k x k` convolution
//! (groups 1) is the same product on the sample's `[C_in * k * k, H * W]` patch matrix (im2col),
//! its input gradient the patch matrix's gradient added back into place; Burn 0.22.1 computes
//! that layer's weight gradient with a convolution whose kernel is the whole output gradient.
//! That form runs only while training (autodiff tensors), where patches are small: at inference
//! the patch matrix of a large image would be `k * k` times the input, and flex's own
//! convolution tiles it. Elsewhere (GPUs, libtorch) the generic formulation runs.

use burn::tensor::Tensor;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

/// `y[b] = weights[b or 0] @ x[b] + bias` over the pixels of each sample (a 1x1 convolution).
///
/// # Shapes
/// - x: `[batch, C_in, H, W]`
/// - weights: `[1 or batch, C_out, C_in]` (one weight for all samples, or one per sample)
/// - bias: `[C_out]`
/// - output: `[batch, C_out, H, W]`
pub fn pointwise_conv(x: Tensor<4>, weights: Tensor<3>, bias: Option<Tensor<1>>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = crate::cpu_backend::on_flex(&flex::GemmConv { x: &x, weights: &weights, bias: bias.as_ref(), kernel: 1 }) {
        return y;
    }
    generic(x, weights, bias, 1)
}

/// A stride-1 convolution with `kernel / 2` zero padding (odd `kernel`, groups 1) as the tracked
/// patch-matrix product above, when `x` and `weights` are flex autodiff tensors; else `None`.
///
/// # Shapes
/// - x: `[batch, C_in, H, W]`
/// - weights: `[1 or batch, C_out, C_in * kernel * kernel]` (rows of `[C_in, k, k]` weights)
/// - bias: `[C_out]`
/// - output: `[batch, C_out, H, W]`
pub fn same_conv_training(x: &Tensor<4>, weights: &Tensor<3>, bias: Option<&Tensor<1>>, kernel: usize) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    if x.is_autodiff() {
        return crate::cpu_backend::on_flex(&flex::GemmConv { x, weights, bias, kernel });
    }
    let _ = (x, weights, bias, kernel);
    None
}

/// Whether `x` is a flex tensor (plain or autodiff). There per-sample weights cost no more than
/// one weight for the batch: [`same_conv_training`]'s kernel trains them, and flex's grouped
/// convolution runs them at inference.
pub fn on_flex_tensor(x: &Tensor<4>) -> bool {
    #[cfg(feature = "flex")]
    return crate::cpu_backend::on_flex(&flex::OnBackend(x)).is_some();
    #[cfg(not(feature = "flex"))]
    {
        let _ = x;
        false
    }
}

/// The convolution in generic ops (one weight for all samples, or a batched matmul for 1x1).
fn generic(x: Tensor<4>, weights: Tensor<3>, bias: Option<Tensor<1>>, kernel: usize) -> Tensor<4> {
    let [batch, channels_in, height, width] = x.dims();
    let [weight_batch, out, _] = weights.dims();
    if kernel > 1 {
        assert_eq!(weight_batch, 1, "the generic k x k path takes one weight for all samples");
        let weight = weights.reshape([out, channels_in, kernel, kernel]);
        return conv2d(x, weight, bias, ConvOptions::new([1, 1], [kernel / 2, kernel / 2], [1, 1], 1));
    }
    let y = weights.matmul(x.reshape([batch, channels_in, height * width])).reshape([batch, out, height, width]);
    match bias {
        Some(bias) => y + bias.reshape([1, out, 1, 1]),
        None => y,
    }
}

/// The host kernels, on row-major buffers.
#[cfg(feature = "flex")]
mod host {
    use std::borrow::Cow;

    use rayon::prelude::*;

    use crate::buffers::per_sample;
    use crate::cpu_backend::{Matrix, product};
    use crate::simd::row_products;

    /// Sizes of one call.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Dims {
        pub(super) batch: usize,
        pub(super) channels_in: usize,
        pub(super) channels_out: usize,
        pub(super) height: usize,
        pub(super) width: usize,
        /// Side of the (odd, square) kernel.
        pub(super) kernel: usize,
        /// One weight for every sample (`[1, out, in * k * k]`) rather than one each.
        pub(super) shared_weight: bool,
    }

    impl Dims {
        fn pixels(&self) -> usize {
            self.height * self.width
        }

        /// Rows of a sample's patch matrix: `C_in * k * k`.
        fn patch_rows(&self) -> usize {
            self.channels_in * self.kernel * self.kernel
        }

        /// The weight matrix of sample `b` within the weights buffer.
        fn weight<'a>(&self, weights: &'a [f32], b: usize) -> &'a [f32] {
            let size = self.channels_out * self.patch_rows();
            let index = if self.shared_weight { 0 } else { b };
            &weights[index * size..(index + 1) * size]
        }

        /// Sample `b` of a `[batch, channels, H, W]` buffer.
        fn sample<'a>(&self, values: &'a [f32], channels: usize, b: usize) -> &'a [f32] {
            let size = channels * self.pixels();
            &values[b * size..(b + 1) * size]
        }

        /// Sample `b`'s patch matrix `[C_in * k * k, H * W]`: row `(c, i, j)` holds
        /// `x[c, h + i - k / 2, w + j - k / 2]` (zero outside the image) at column `(h, w)`; for
        /// a 1x1 kernel the sample itself.
        fn patches<'a>(&self, x: &'a [f32], b: usize) -> Cow<'a, [f32]> {
            let x = self.sample(x, self.channels_in, b);
            if self.kernel == 1 {
                return Cow::Borrowed(x);
            }
            let mut patches = vec![0f32; self.patch_rows() * self.pixels()];
            for (row, patch) in patches.chunks_exact_mut(self.pixels()).enumerate() {
                let (channel, (dy, dx)) = (row / (self.kernel * self.kernel), self.offsets(row));
                let plane = &x[channel * self.pixels()..(channel + 1) * self.pixels()];
                for (h, out_row) in patch.chunks_exact_mut(self.width).enumerate() {
                    if let Some((source, columns)) = self.overlap(h, dy, dx) {
                        let line = &plane[source * self.width..(source + 1) * self.width];
                        out_row[columns.clone()].copy_from_slice(&line[shifted(columns, dx)]);
                    }
                }
            }
            Cow::Owned(patches)
        }

        /// Adds a patch matrix's gradient back onto the image gradient `dx` `[C_in, H, W]`.
        fn add_patches(&self, patches: &[f32], dx: &mut [f32]) {
            for (channel, plane) in dx.chunks_exact_mut(self.pixels()).enumerate() {
                let taps = self.kernel * self.kernel;
                for tap in 0..taps {
                    let row = channel * taps + tap;
                    let (dy, dx) = self.offsets(row);
                    let patch = &patches[row * self.pixels()..(row + 1) * self.pixels()];
                    for (h, patch_row) in patch.chunks_exact(self.width).enumerate() {
                        if let Some((source, columns)) = self.overlap(h, dy, dx) {
                            let line = &mut plane[source * self.width..(source + 1) * self.width];
                            line[shifted(columns.clone(), dx)].iter_mut().zip(&patch_row[columns]).for_each(|(sum, value)| *sum += value);
                        }
                    }
                }
            }
        }

        /// The vertical and horizontal offsets `(i - k / 2, j - k / 2)` of patch row `(c, i, j)`.
        fn offsets(&self, row: usize) -> (isize, isize) {
            let (tap, pad) = (row % (self.kernel * self.kernel), (self.kernel / 2) as isize);
            ((tap / self.kernel) as isize - pad, (tap % self.kernel) as isize - pad)
        }

        /// For output row `h` and offsets `(dy, dx)`: the input row read and the output columns
        /// whose input column `w + dx` lies in the image; `None` when the input row does not.
        fn overlap(&self, h: usize, dy: isize, dx: isize) -> Option<(usize, std::ops::Range<usize>)> {
            let source = h as isize + dy;
            if source < 0 || source >= self.height as isize || dx.unsigned_abs() >= self.width {
                return None;
            }
            let start = (-dx).max(0) as usize;
            let end = (self.width as isize - dx.max(0)) as usize;
            Some((source as usize, start..end))
        }
    }

    /// `columns` moved by `dx`: the input columns that output `columns` read.
    fn shifted(columns: std::ops::Range<usize>, dx: isize) -> std::ops::Range<usize> {
        (columns.start as isize + dx) as usize..(columns.end as isize + dx) as usize
    }

    /// `y[b] = W[b] @ patches(x[b]) + bias`, `[batch, out, pixels]`.
    pub(super) fn forward(x: &[f32], weights: &[f32], bias: Option<&[f32]>, dims: Dims) -> Vec<f32> {
        let (pixels, rows) = (dims.pixels(), dims.patch_rows());
        per_sample(dims.batch, dims.channels_out * pixels, |b, part, parallelism| {
            let patches = dims.patches(x, b);
            let (lhs, rhs) = (Matrix::rows(dims.weight(weights, b), rows), Matrix::rows(&patches, pixels));
            let product_dims = (dims.channels_out, pixels, rows);
            match bias {
                Some(bias) => {
                    let (out, written) = part.rows_of(pixels, bias);
                    product(out, product_dims, lhs, rhs, true, parallelism);
                    written
                }
                None => part.product(product_dims, lhs, rhs, parallelism).1,
            }
        })
    }

    /// `dx[b]`: `W[b]^T @ grad[b]` (the patch matrix's gradient) added back into place,
    /// `[batch, in, pixels]`.
    pub(super) fn input_gradient(grad: &[f32], weights: &[f32], dims: Dims) -> Vec<f32> {
        let (pixels, rows) = (dims.pixels(), dims.patch_rows());
        per_sample(dims.batch, dims.channels_in * pixels, |b, part, parallelism| {
            let (lhs, rhs) =
                (Matrix::transposed(dims.weight(weights, b), rows), Matrix::rows(dims.sample(grad, dims.channels_out, b), pixels));
            if dims.kernel == 1 {
                return part.product((rows, pixels, dims.channels_out), lhs, rhs, parallelism).1;
            }
            let mut patches = vec![0f32; rows * pixels];
            product(&mut patches, (rows, pixels, dims.channels_out), lhs, rhs, false, parallelism);
            let (out, written) = part.zeroed();
            dims.add_patches(&patches, out);
            written
        })
    }

    /// `dW[b] = grad[b] @ patches(x[b])^T`, `[batch, out, in * k * k]`; for a shared weight
    /// their sum `[1, out, in * k * k]`, accumulated in one block per thread and then added up.
    /// Both operands hold pixels contiguously, so these are [`row_products`], not `gemm`.
    pub(super) fn weight_gradient(x: &[f32], grad: &[f32], dims: Dims) -> Vec<f32> {
        let (pixels, size) = (dims.pixels(), dims.channels_out * dims.patch_rows());
        let blocks = if dims.shared_weight { dims.batch.min(rayon::current_num_threads()) } else { dims.batch };
        let gradients = per_sample(blocks, size, |block, part, _| {
            let (out, written) = part.zeroed();
            for b in (block..dims.batch).step_by(blocks) {
                row_products(out, dims.sample(grad, dims.channels_out, b), &dims.patches(x, b), pixels, true);
            }
            written
        });
        if blocks == 1 || !dims.shared_weight {
            return gradients;
        }
        sum_blocks(&gradients, size)
    }

    /// `dbias[o] = sum over samples and pixels of grad[b, o, p]`.
    pub(super) fn bias_gradient(grad: &[f32], dims: Dims) -> Vec<f32> {
        let row_sums: Vec<f32> = grad.par_chunks(dims.pixels()).map(crate::simd::sum).collect();
        sum_blocks(&row_sums, dims.channels_out)
    }

    /// The element-wise sum of the consecutive blocks of `size` values in `values`.
    fn sum_blocks(values: &[f32], size: usize) -> Vec<f32> {
        let mut blocks = values.chunks_exact(size);
        let first = blocks.next().expect("a batch has at least one sample").to_vec();
        blocks.fold(first, |mut total, block| {
            total.iter_mut().zip(block).for_each(|(sum, value)| *sum += value);
            total
        })
    }
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::Tensor;

    use super::host::{self, Dims};
    use crate::cpu_backend::{CpuBackendOp, from_host, host_values};
    use crate::glue::record;

    /// Finds whether a tensor is `B`'s, plain or autodiff.
    pub(super) struct OnBackend<'a>(pub(super) &'a Tensor<4>);

    impl CpuBackendOp for OnBackend<'_> {
        type Output = ();

        fn dtype(&self) -> burn::tensor::DType {
            self.0.dtype()
        }

        fn on<B: Backend>(&self) -> Option<()>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            let tensor = self.0.clone();
            let found = if tensor.is_autodiff() {
                tensor.try_into_primitive::<Autodiff<B>>().is_ok()
            } else {
                tensor.try_into_primitive::<B>().is_ok()
            };
            found.then_some(())
        }
    }

    /// The op's inputs, for `on_flex`.
    pub(super) struct GemmConv<'a> {
        pub(super) x: &'a Tensor<4>,
        pub(super) weights: &'a Tensor<3>,
        pub(super) bias: Option<&'a Tensor<1>>,
        pub(super) kernel: usize,
    }

    impl CpuBackendOp for GemmConv<'_> {
        type Output = Tensor<4>;

        fn dtype(&self) -> burn::tensor::DType {
            self.x.dtype()
        }

        /// On `B`'s autodiff tensors the tracked op (all inputs there); on its plain tensors the
        /// forward kernel of a 1x1 convolution (`None` for larger kernels: see the module doc).
        fn on<B: Backend>(&self) -> Option<Tensor<4>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            if let Ok(x) = self.x.clone().try_into_primitive::<Autodiff<B>>() {
                let weights = self.weights.clone().try_into_primitive::<Autodiff<B>>().ok()?;
                let output = match self.bias {
                    Some(bias) => tracked::<B, 3>(x, weights, Some(bias.clone().try_into_primitive::<Autodiff<B>>().ok()?), self.kernel),
                    None => tracked::<B, 2>(x, weights, None, self.kernel),
                };
                return Some(Tensor::from_primitive::<Autodiff<B>>(output));
            }
            if self.kernel != 1 {
                return None;
            }
            let x = self.x.clone().try_into_primitive::<B>().ok()?;
            let weights = self.weights.clone().try_into_primitive::<B>().ok()?;
            let bias = match self.bias {
                Some(bias) => Some(bias.clone().try_into_primitive::<B>().ok()?),
                None => None,
            };
            Some(Tensor::from_primitive::<B>(forward::<B>(&x, &weights, bias.as_ref(), 1)))
        }
    }

    /// The shapes of a call, from its input, weights and kernel side.
    fn dims<B: Backend>(x: &FloatTensor<B>, weights: &FloatTensor<B>, kernel: usize) -> Dims {
        let [batch, channels_in, height, width] = x.shape().dims::<4>();
        let [weight_batch, channels_out, columns] = weights.shape().dims::<3>();
        assert_eq!(
            columns,
            channels_in * kernel * kernel,
            "weights of {columns} columns for {channels_in} channels and a {kernel}x{kernel} kernel"
        );
        Dims { batch, channels_in, channels_out, height, width, kernel, shared_weight: weight_batch == 1 }
    }

    fn forward<B: Backend>(x: &FloatTensor<B>, weights: &FloatTensor<B>, bias: Option<&FloatTensor<B>>, kernel: usize) -> FloatTensor<B> {
        let dims = dims::<B>(x, weights, kernel);
        let bias = bias.map(|bias| host_values::<B>(bias));
        let y = host::forward(&host_values::<B>(x), &host_values::<B>(weights), bias.as_deref(), dims);
        from_host::<B>(y, [dims.batch, dims.channels_out, dims.height, dims.width], &x.device())
    }

    /// The tracked op; `N` is 3 with a bias (parents x, weights, bias), else 2.
    fn tracked<B: Backend, const N: usize>(
        x: FloatTensor<Autodiff<B>>,
        weights: FloatTensor<Autodiff<B>>,
        bias: Option<FloatTensor<Autodiff<B>>>,
        kernel: usize,
    ) -> FloatTensor<Autodiff<B>> {
        let y = forward::<B>(x.primitive(), weights.primitive(), bias.as_ref().map(|bias| bias.primitive()), kernel);
        let state = (x.primitive().clone(), weights.primitive().clone(), kernel);
        let inputs: Vec<_> = [Some(x), Some(weights), bias].into_iter().flatten().collect();
        let inputs: [_; N] = inputs.try_into().expect("N is the number of inputs");
        record(GemmConvBackward, &inputs, y, |_, _| state)
    }

    #[derive(Debug)]
    struct GemmConvBackward;

    impl<B: Backend, const N: usize> Backward<B, N> for GemmConvBackward {
        /// The input, the weights and the kernel side.
        type State = (FloatTensor<B>, FloatTensor<B>, usize);

        fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let grad = grads.consume::<B>(&ops.node);
            let (x, weights, kernel) = ops.state;
            let dims = dims::<B>(&x, &weights, kernel);
            let grad_values = host_values::<B>(&grad);
            let mut parents = ops.parents.into_iter();
            let (node_x, node_weights, node_bias) = (parents.next().flatten(), parents.next().flatten(), parents.next().flatten());
            if let Some(node) = node_x {
                let dx = host::input_gradient(&grad_values, &host_values::<B>(&weights), dims);
                grads.register::<B>(node.id, from_host::<B>(dx, x.shape(), &x.device()));
            }
            if let Some(node) = node_weights {
                let dw = host::weight_gradient(&host_values::<B>(&x), &grad_values, dims);
                grads.register::<B>(node.id, from_host::<B>(dw, weights.shape(), &x.device()));
            }
            if let Some(node) = node_bias {
                let db = host::bias_gradient(&grad_values, dims);
                grads.register::<B>(node.id, from_host::<B>(db, [dims.channels_out], &x.device()));
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::test_tolerance::assert_close_at_scale as close;
    use burn::tensor::{Device, Distribution};

    /// The generic path one sample at a time (with its own weight when there is one per sample).
    fn per_sample_reference(x: Tensor<4>, weights: Tensor<3>, bias: Option<Tensor<1>>, kernel: usize) -> Tensor<4> {
        let ([batch, ..], [weight_batch, ..]) = (x.dims(), weights.dims());
        let weight = |b: usize| weights.clone().narrow(0, if weight_batch == 1 { 0 } else { b }, 1);
        let samples = (0..batch).map(|b| generic(x.clone().narrow(0, b, 1), weight(b), bias.clone(), kernel));
        Tensor::cat(samples.collect(), 0)
    }

    /// Output and every gradient equal the generic convolution's, for 1x1 and wider kernels
    /// (including one wider than the image), shared and per-sample weights, with and without
    /// bias, batches larger and smaller than the thread pool.
    #[test]
    fn kernel_equals_the_generic_convolution() {
        let device = Device::flex().autodiff();
        let cases = [
            (3, 1, true, 1),
            (3, 3, false, 1),
            (1, 1, false, 1),
            (4, 4, true, 1),
            (3, 1, true, 3),
            (1, 1, false, 3),
            (2, 2, true, 3),
            (2, 1, false, 5),
            (2, 1, true, 9),
        ];
        for (batch, weight_batch, with_bias, kernel) in cases {
            let x = Tensor::<4>::random([batch, 5, 6, 7], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let weights =
                Tensor::<3>::random([weight_batch, 4, 5 * kernel * kernel], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let bias = with_bias.then(|| Tensor::<1>::random([4], Distribution::Normal(0.0, 1.0), &device).require_grad());
            let upstream = Tensor::<4>::random([batch, 4, 6, 7], Distribution::Normal(0.0, 1.0), &device);
            let fast = match kernel {
                1 => pointwise_conv(x.clone(), weights.clone(), bias.clone()),
                _ => same_conv_training(&x, &weights, bias.as_ref(), kernel).expect("flex autodiff tensors take the op"),
            };
            let reference = per_sample_reference(x.clone(), weights.clone(), bias.clone(), kernel);
            close(fast.clone(), reference.clone());
            let (fast_grads, reference_grads) = ((fast * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
            close(x.grad(&fast_grads).unwrap(), x.grad(&reference_grads).unwrap());
            close(weights.grad(&fast_grads).unwrap(), weights.grad(&reference_grads).unwrap());
            if let Some(bias) = bias {
                close(bias.grad(&fast_grads).unwrap(), bias.grad(&reference_grads).unwrap());
            }
        }
    }

    /// Plain and autodiff flex tensors take the 1x1 kernel; only autodiff ones the k x k op.
    #[test]
    fn which_tensors_take_the_kernel() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
            let weights = Tensor::<3>::random([1, 2, 3], Distribution::Normal(0.0, 1.0), &device);
            let bias = Tensor::<1>::random([2], Distribution::Normal(0.0, 1.0), &device);
            let op = flex::GemmConv { x: &x, weights: &weights, bias: Some(&bias), kernel: 1 };
            let fast = crate::cpu_backend::on_flex(&op).expect("flex tensors take the kernel");
            close(fast, generic(x.clone(), weights, Some(bias), 1));
            let wide = Tensor::<3>::random([1, 2, 27], Distribution::Normal(0.0, 1.0), &device);
            assert_eq!(same_conv_training(&x, &wide, None, 3).is_some(), device.is_autodiff());
        }
    }
}
