//! 1x1 convolution as one matrix product per sample, bias fused, with its own backward on flex.
//!
//! In generic ops it is a batched `matmul` and a bias `add` forward, and backward two more
//! matmuls, a sum of the broadcast weight's `[batch, out, in]` gradient and a reduction for the
//! bias. On flex 0.22.1 every matmul output is allocated zeroed and then copied once more to
//! align it (`FlexTensor::empty`), on the calling thread: in `perf` of the tiny training step
//! that allocation was a quarter of the main thread's time. Here each product is one `gemm` call
//! per sample writing into our own buffer (the forward's pre-filled with the bias), and the
//! weight gradient of a shared weight is summed over samples on the fly. Elsewhere (GPUs,
//! libtorch) the generic formulation runs.

use burn::tensor::Tensor;

/// `y[b] = weights[b or 0] @ x[b] + bias` over the pixels of each sample.
///
/// # Shapes
/// - x: `[batch, C_in, H, W]`
/// - weights: `[1 or batch, C_out, C_in]` (one weight for all samples, or one per sample)
/// - bias: `[C_out]`
/// - output: `[batch, C_out, H, W]`
pub fn pointwise_conv(x: Tensor<4>, weights: Tensor<3>, bias: Option<Tensor<1>>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = crate::cpu_backend::on_flex(&flex::Pointwise { x: &x, weights: &weights, bias: bias.as_ref() }) {
        return y;
    }
    generic(x, weights, bias)
}

/// [`pointwise_conv`] in generic ops.
fn generic(x: Tensor<4>, weights: Tensor<3>, bias: Option<Tensor<1>>) -> Tensor<4> {
    let [batch, channels_in, height, width] = x.dims();
    let [_, out, _] = weights.dims();
    let y = weights.matmul(x.reshape([batch, channels_in, height * width])).reshape([batch, out, height, width]);
    match bias {
        Some(bias) => y + bias.reshape([1, out, 1, 1]),
        None => y,
    }
}

/// The host kernels, on row-major buffers.
#[cfg(feature = "flex")]
mod host {
    use gemm::Parallelism;
    use rayon::prelude::*;

    /// Sizes of one call.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Dims {
        pub(super) batch: usize,
        pub(super) channels_in: usize,
        pub(super) channels_out: usize,
        /// Pixels per sample.
        pub(super) pixels: usize,
        /// One weight for every sample (`[1, out, in]`) rather than one each.
        pub(super) shared_weight: bool,
    }

    impl Dims {
        /// The weight matrix of sample `b` within the weights buffer.
        fn weight<'a>(&self, weights: &'a [f32], b: usize) -> &'a [f32] {
            let size = self.channels_out * self.channels_in;
            let index = if self.shared_weight { 0 } else { b };
            &weights[index * size..(index + 1) * size]
        }
    }

    /// A row-major matrix view for `gemm`: data, rows, columns, row and column strides.
    struct Matrix {
        data: *const f32,
        row_stride: isize,
        column_stride: isize,
    }

    impl Matrix {
        fn rows(data: &[f32], columns: usize) -> Self {
            Self { data: data.as_ptr(), row_stride: columns as isize, column_stride: 1 }
        }

        /// The transpose of the row-major `rows x columns` matrix in `data`.
        fn transposed(data: &[f32], columns: usize) -> Self {
            Self { data: data.as_ptr(), row_stride: 1, column_stride: columns as isize }
        }
    }

    /// `out = lhs @ rhs` (`add` false) or `out += lhs @ rhs` (`add` true); `out` is row-major
    /// `m x n`, the product's inner size `k`.
    fn product(out: &mut [f32], (m, n, k): (usize, usize, usize), lhs: Matrix, rhs: Matrix, add: bool, parallelism: Parallelism) {
        assert!(out.len() == m * n && k > 0, "gemm output {} for {m}x{n}, inner {k}", out.len());
        // SAFETY: `out` holds `m x n` values written at row stride `n`; `lhs` and `rhs` point into
        // slices holding `m x k` and `k x n` values at the strides given (their callers' shapes).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                add,
                lhs.data,
                lhs.column_stride,
                lhs.row_stride,
                rhs.data,
                rhs.column_stride,
                rhs.row_stride,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }

    /// Runs `work(sample, its chunk of out)` for every sample: samples in parallel when there
    /// are enough to keep every thread busy, else one after the other with `gemm` parallel.
    fn per_sample(out: &mut [f32], chunk: usize, work: impl Fn(usize, &mut [f32], Parallelism) + Sync) {
        if out.len() / chunk >= rayon::current_num_threads() {
            out.par_chunks_mut(chunk).enumerate().for_each(|(b, part)| work(b, part, Parallelism::None));
        } else {
            out.chunks_mut(chunk).enumerate().for_each(|(b, part)| work(b, part, Parallelism::Rayon(0)));
        }
    }

    /// `y[b] = W[b] @ x[b] + bias`, `[batch, out, pixels]`.
    pub(super) fn forward(x: &[f32], weights: &[f32], bias: Option<&[f32]>, dims: Dims) -> Vec<f32> {
        let Dims { channels_in, channels_out, pixels, .. } = dims;
        let mut y = vec![0f32; dims.batch * channels_out * pixels];
        per_sample(&mut y, channels_out * pixels, |b, out, parallelism| {
            if let Some(bias) = bias {
                out.chunks_exact_mut(pixels).zip(bias).for_each(|(row, value)| row.fill(*value));
            }
            let x = &x[b * channels_in * pixels..(b + 1) * channels_in * pixels];
            let (lhs, rhs) = (Matrix::rows(dims.weight(weights, b), channels_in), Matrix::rows(x, pixels));
            product(out, (channels_out, pixels, channels_in), lhs, rhs, bias.is_some(), parallelism);
        });
        y
    }

    /// `dx[b] = W[b]^T @ grad[b]`, `[batch, in, pixels]`.
    pub(super) fn input_gradient(grad: &[f32], weights: &[f32], dims: Dims) -> Vec<f32> {
        let Dims { channels_in, channels_out, pixels, .. } = dims;
        let mut dx = vec![0f32; dims.batch * channels_in * pixels];
        per_sample(&mut dx, channels_in * pixels, |b, out, parallelism| {
            let grad = &grad[b * channels_out * pixels..(b + 1) * channels_out * pixels];
            let (lhs, rhs) = (Matrix::transposed(dims.weight(weights, b), channels_in), Matrix::rows(grad, pixels));
            product(out, (channels_in, pixels, channels_out), lhs, rhs, false, parallelism);
        });
        dx
    }

    /// `dW[b] = grad[b] @ x[b]^T`, `[batch, out, in]`, summed over samples for a shared weight.
    pub(super) fn weight_gradient(x: &[f32], grad: &[f32], dims: Dims) -> Vec<f32> {
        let Dims { channels_in, channels_out, pixels, .. } = dims;
        let size = channels_out * channels_in;
        let mut per_sample_gradients = vec![0f32; dims.batch * size];
        per_sample(&mut per_sample_gradients, size, |b, out, parallelism| {
            let grad = &grad[b * channels_out * pixels..(b + 1) * channels_out * pixels];
            let x = &x[b * channels_in * pixels..(b + 1) * channels_in * pixels];
            product(out, (channels_out, channels_in, pixels), Matrix::rows(grad, pixels), Matrix::transposed(x, pixels), false, parallelism);
        });
        if !dims.shared_weight {
            return per_sample_gradients;
        }
        let mut chunks = per_sample_gradients.chunks_exact(size);
        let first = chunks.next().expect("a batch has at least one sample").to_vec();
        chunks.fold(first, |mut total, part| {
            total.iter_mut().zip(part).for_each(|(sum, value)| *sum += value);
            total
        })
    }

    /// `dbias[o] = sum over samples and pixels of grad[b, o, p]`.
    pub(super) fn bias_gradient(grad: &[f32], dims: Dims) -> Vec<f32> {
        let row_sums: Vec<f32> = grad.par_chunks(dims.pixels).map(crate::lanes::sum).collect();
        let mut samples = row_sums.chunks_exact(dims.channels_out);
        let first = samples.next().expect("a batch has at least one sample").to_vec();
        samples.fold(first, |mut total, part| {
            total.iter_mut().zip(part).for_each(|(sum, value)| *sum += value);
            total
        })
    }
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::Tensor;

    use super::host::{self, Dims};
    use crate::cpu_backend::{CpuBackendOp, from_host, host_values};

    /// The op's inputs, for `on_flex`.
    pub(super) struct Pointwise<'a> {
        pub(super) x: &'a Tensor<4>,
        pub(super) weights: &'a Tensor<3>,
        pub(super) bias: Option<&'a Tensor<1>>,
    }

    impl CpuBackendOp for Pointwise<'_> {
        type Output = Tensor<4>;

        /// On `B`'s autodiff tensors the tracked op (all inputs there); on its plain tensors the
        /// forward kernel.
        fn on<B: Backend>(&self) -> Option<Tensor<4>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            let autodiff = |tensor: Tensor<4>| tensor.try_into_primitive::<Autodiff<B>>().ok();
            if let Some(x) = autodiff(self.x.clone()) {
                let weights = self.weights.clone().try_into_primitive::<Autodiff<B>>().ok()?;
                let output = match self.bias {
                    Some(bias) => tracked::<B, 3>(x, weights, Some(bias.clone().try_into_primitive::<Autodiff<B>>().ok()?)),
                    None => tracked::<B, 2>(x, weights, None),
                };
                return Some(Tensor::from_primitive::<Autodiff<B>>(output));
            }
            let x = self.x.clone().try_into_primitive::<B>().ok()?;
            let weights = self.weights.clone().try_into_primitive::<B>().ok()?;
            let bias = match self.bias {
                Some(bias) => Some(bias.clone().try_into_primitive::<B>().ok()?),
                None => None,
            };
            Some(Tensor::from_primitive::<B>(forward::<B>(&x, &weights, bias.as_ref())))
        }
    }

    /// The shapes of a call, from its input and weights.
    fn dims<B: Backend>(x: &FloatTensor<B>, weights: &FloatTensor<B>) -> Dims {
        let [batch, channels_in, height, width] = x.shape().dims::<4>();
        let [weight_batch, channels_out, _] = weights.shape().dims::<3>();
        Dims { batch, channels_in, channels_out, pixels: height * width, shared_weight: weight_batch == 1 }
    }

    fn forward<B: Backend>(x: &FloatTensor<B>, weights: &FloatTensor<B>, bias: Option<&FloatTensor<B>>) -> FloatTensor<B> {
        let dims = dims::<B>(x, weights);
        let [batch, _, height, width] = x.shape().dims::<4>();
        let bias = bias.map(|bias| host_values::<B>(bias));
        let y = host::forward(&host_values::<B>(x), &host_values::<B>(weights), bias.as_deref(), dims);
        from_host::<B>(y, [batch, dims.channels_out, height, width], &x.device())
    }

    /// The tracked op; `N` is 3 with a bias (parents x, weights, bias), else 2.
    fn tracked<B: Backend, const N: usize>(
        x: FloatTensor<Autodiff<B>>,
        weights: FloatTensor<Autodiff<B>>,
        bias: Option<FloatTensor<Autodiff<B>>>,
    ) -> FloatTensor<Autodiff<B>> {
        let nodes: Vec<_> = [Some(&x), Some(&weights), bias.as_ref()].into_iter().flatten().map(|tensor| tensor.node()).collect();
        let nodes: [_; N] = nodes.try_into().expect("N is the number of inputs");
        let bias = bias.map(|bias| bias.into_primitive());
        let (x, weights) = (x.into_primitive(), weights.into_primitive());
        let y = forward::<B>(&x, &weights, bias.as_ref());
        match PointwiseBackward.prepare::<NoCheckpointing>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x, weights), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    #[derive(Debug)]
    struct PointwiseBackward;

    impl<B: Backend, const N: usize> Backward<B, N> for PointwiseBackward {
        /// The input and the weights.
        type State = (FloatTensor<B>, FloatTensor<B>);

        fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let grad = grads.consume::<B>(&ops.node);
            let (x, weights) = ops.state;
            let dims = dims::<B>(&x, &weights);
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
    use burn::tensor::{Device, Distribution, Tolerance};

    fn close<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>) {
        ours.into_data().assert_approx_eq::<f32>(&theirs.into_data(), Tolerance::rel_abs(1e-4, 1e-5));
    }

    /// Output and every gradient equal the generic matmul's, for a shared and a per-sample
    /// weight, with and without bias, for a batch larger and smaller than the thread pool.
    #[test]
    fn kernel_equals_the_generic_product() {
        let device = Device::flex().autodiff();
        for (batch, weight_batch, with_bias) in [(3, 1, true), (3, 3, false), (1, 1, false), (4, 4, true)] {
            let x = Tensor::<4>::random([batch, 5, 6, 7], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let weights = Tensor::<3>::random([weight_batch, 4, 5], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let bias = with_bias.then(|| Tensor::<1>::random([4], Distribution::Normal(0.0, 1.0), &device).require_grad());
            let upstream = Tensor::<4>::random([batch, 4, 6, 7], Distribution::Normal(0.0, 1.0), &device);
            let fast = pointwise_conv(x.clone(), weights.clone(), bias.clone());
            let reference = generic(x.clone(), weights.clone(), bias.clone());
            close(fast.clone(), reference.clone());
            let (fast_grads, reference_grads) = ((fast * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
            close(x.grad(&fast_grads).unwrap(), x.grad(&reference_grads).unwrap());
            close(weights.grad(&fast_grads).unwrap(), weights.grad(&reference_grads).unwrap());
            if let Some(bias) = bias {
                close(bias.grad(&fast_grads).unwrap(), bias.grad(&reference_grads).unwrap());
            }
        }
    }

    /// Plain and autodiff flex tensors take the kernel; the plain path equals the generic one.
    #[test]
    fn flex_tensors_take_the_kernel() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
            let weights = Tensor::<3>::random([1, 2, 3], Distribution::Normal(0.0, 1.0), &device);
            let bias = Tensor::<1>::random([2], Distribution::Normal(0.0, 1.0), &device);
            let op = flex::Pointwise { x: &x, weights: &weights, bias: Some(&bias) };
            let fast = crate::cpu_backend::on_flex(&op).expect("flex tensors take the kernel");
            close(fast, generic(x, weights, Some(bias)));
        }
    }
}
