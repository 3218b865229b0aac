//! L2 normalisation of the focal attention's queries and keys along the pixels of a window.
//!
//! In generic ops it is square, sum, sqrt, clamp and divide for each of q and k, and about twice
//! as many ops backward, each a pass over the map with a new buffer on flex. The kernel takes the
//! window tensor `[N, 3, heads, d, T]` (q, k, v along axis 1), normalises the rows of q and k,
//! passes v through, and records a one-pass backward: with `n = max(|x|, eps)` and `y = x / n`,
//! `dx = (g - y (g . y)) / n` where `|x| > eps`, else `g / n`.

use burn::tensor::Tensor;

/// Floor of the L2 norm (PyTorch's `F.normalize` default): rows below it are divided by it.
pub(crate) const NORMALIZE_EPSILON: f32 = 1e-12;

/// q, k and v `[N, 1, heads, d, T]` from `windows` `[N, 3, heads, d, T]` (axis 1 in that
/// order), the rows (last axis) of q and k divided by their L2 norm (at least
/// [`NORMALIZE_EPSILON`]).
pub fn normalized_qkv(windows: Tensor<5>) -> [Tensor<5>; 3] {
    #[cfg(feature = "flex")]
    if let Some(y) = crate::cpu_backend::on_flex(&cpu::QkNorm { windows: &windows }) {
        return split(y);
    }
    let [q, k, v] = split(windows);
    [l2_normalize(q), l2_normalize(k), v]
}

/// The three parts of axis 1.
fn split(windows: Tensor<5>) -> [Tensor<5>; 3] {
    windows.chunk(3, 1).try_into().expect("chunk(3) of a dimension of size 3 gives three parts")
}

/// `x / max(|x|, eps)` along the last axis, in generic ops.
fn l2_normalize<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().square().sum_dim(D - 1).sqrt().clamp_min(f64::from(NORMALIZE_EPSILON));
    x / norm
}

/// The host kernels on windows of `3 * group` rows of `row` values (q's `group` rows, k's, v's).
#[cfg(feature = "flex")]
mod host {
    use crate::buffers::filled;
    use pulp::{Arch, Simd, WithSimd};

    use super::NORMALIZE_EPSILON;
    use crate::simd::dot_in;

    /// `max(|row|, eps)`.
    #[inline(always)]
    fn norm<S: Simd>(simd: S, row: &[f32]) -> f32 {
        dot_in(simd, row, row).sqrt().max(NORMALIZE_EPSILON)
    }

    /// The windows with the rows of their first two thirds normalised, the last third copied.
    pub(super) fn forward(x: &[f32], row: usize, group: usize) -> Vec<f32> {
        let window = 3 * group * row;
        filled(x.len(), window, |index, outputs| {
            let inputs = &x[index * window..][..window];
            Arch::new().dispatch(ForwardWindow { outputs, inputs, normalised: 2 * group * row, row });
        })
    }

    /// The input gradient of [`forward`] from its input `x` and output gradient `grad`.
    pub(super) fn backward(x: &[f32], grad: &[f32], row: usize, group: usize) -> Vec<f32> {
        let window = 3 * group * row;
        filled(x.len(), window, |index, outputs| {
            let (inputs, grads) = (&x[index * window..][..window], &grad[index * window..][..window]);
            Arch::new().dispatch(BackwardWindow { outputs, inputs, grads, normalised: 2 * group * row, row });
        })
    }

    /// One window of [`forward`]: its first `normalised` values are rows of `row` to normalise;
    /// its loops vectorise at the CPU's widest SIMD level.
    struct ForwardWindow<'a> {
        outputs: &'a mut [f32],
        inputs: &'a [f32],
        normalised: usize,
        row: usize,
    }

    impl WithSimd for ForwardWindow<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let (normalised, row) = (self.normalised, self.row);
            for (output, input) in self.outputs[..normalised].chunks_exact_mut(row).zip(self.inputs[..normalised].chunks_exact(row)) {
                let inverse = 1.0 / norm(simd, input);
                output.iter_mut().zip(input).for_each(|(out, value)| *out = value * inverse);
            }
            self.outputs[normalised..].copy_from_slice(&self.inputs[normalised..]);
        }
    }

    /// One window of [`backward`], laid out as in [`ForwardWindow`].
    struct BackwardWindow<'a> {
        outputs: &'a mut [f32],
        inputs: &'a [f32],
        grads: &'a [f32],
        normalised: usize,
        row: usize,
    }

    impl WithSimd for BackwardWindow<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let (normalised, row) = (self.normalised, self.row);
            let rows = self.outputs[..normalised]
                .chunks_exact_mut(row)
                .zip(self.inputs[..normalised].chunks_exact(row))
                .zip(self.grads[..normalised].chunks_exact(row));
            for ((output, input), grad) in rows {
                let norm = norm(simd, input);
                let inverse = 1.0 / norm;
                // g . y, with y = x / n; zero where the norm was clamped (y does not depend on |x| there).
                let dot = if norm > NORMALIZE_EPSILON { dot_in(simd, grad, input) * inverse } else { 0.0 };
                output.iter_mut().zip(grad).zip(input).for_each(|((out, g), x)| *out = (g - x * inverse * dot) * inverse);
            }
            self.outputs[normalised..].copy_from_slice(&self.grads[normalised..]);
        }
    }
}

#[cfg(feature = "flex")]
mod cpu {
    use crate::cpu_backend::{CpuBackendOp, from_host, host_values};
    use crate::glue::unary_op;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::Tensor;

    use super::host;

    /// The window tensor, for `on_flex`.
    pub(super) struct QkNorm<'a> {
        pub(super) windows: &'a Tensor<5>,
    }

    impl CpuBackendOp for QkNorm<'_> {
        type Output = Tensor<5>;

        fn dtype(&self) -> burn::tensor::DType {
            self.windows.dtype()
        }

        /// On `B`'s autodiff tensors the tracked op; on its plain tensors the forward kernel.
        fn on<B: Backend>(&self) -> Option<Tensor<5>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            unary_op(self.windows, QkNormBackward, forward::<B>, |_, x, _| x.primitive().clone())
        }
    }

    /// Values per row and rows per third of a window, from the shape `[N, 3, heads, d, T]`.
    fn rows<B: Backend>(x: &FloatTensor<B>) -> (usize, usize) {
        let [_, _, heads, dim, pixels] = x.shape().dims::<5>();
        (pixels, heads * dim)
    }

    fn forward<B: Backend>(x: &FloatTensor<B>) -> FloatTensor<B> {
        let (device, shape) = (x.device(), x.shape());
        let (row, group) = rows::<B>(x);
        let y = host::forward(&host_values::<B>(x), row, group);
        from_host::<B>(y, shape, &device)
    }

    #[derive(Debug)]
    struct QkNormBackward;

    impl<B: Backend> Backward<B, 1> for QkNormBackward {
        /// The op's input.
        type State = FloatTensor<B>;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            if let Some(node) = node {
                let x = ops.state;
                let (device, shape) = (x.device(), x.shape());
                let (row, group) = rows::<B>(&x);
                let dx = host::backward(&host_values::<B>(&x), &host_values::<B>(&grad), row, group);
                grads.register::<B>(node.id, from_host::<B>(dx, shape, &device));
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tolerance};

    fn close(ours: Tensor<5>, theirs: Tensor<5>) {
        ours.into_data().assert_approx_eq::<f32>(&theirs.into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    }

    /// The generic formulation on the same tensor (the non-flex path), as one tensor.
    fn generic(windows: Tensor<5>) -> Tensor<5> {
        let [q, k, v] = split(windows);
        Tensor::cat(vec![l2_normalize(q), l2_normalize(k), v], 1)
    }

    /// Plain and autodiff flex tensors take the kernel; its output and gradient equal the generic
    /// ops', for rows shorter than, equal to and longer than the reduction lanes.
    #[test]
    fn kernel_equals_the_generic_normalisation() {
        for row in [5, 8, 64, 67] {
            let shape = [3, 3, 2, 4, row];
            let plain = Tensor::<5>::random(shape, Distribution::Normal(0.0, 2.0), &Device::flex());
            let fast = crate::cpu_backend::on_flex(&cpu::QkNorm { windows: &plain }).expect("flex tensors take the kernel");
            close(fast, generic(plain));

            let device = Device::flex().autodiff();
            let x = Tensor::<5>::random(shape, Distribution::Normal(0.0, 2.0), &device).require_grad();
            let upstream = Tensor::<5>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let fast = Tensor::cat(normalized_qkv(x.clone()).to_vec(), 1);
            let reference = generic(x.clone());
            close(fast.clone(), reference.clone());
            let (fast_grads, reference_grads) = ((fast * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
            close(x.grad(&fast_grads).unwrap(), x.grad(&reference_grads).unwrap());
        }
    }

    /// q's and k's rows come out with unit norm, v's unchanged.
    #[test]
    fn normalised_rows_have_unit_norm() {
        let device = Device::flex();
        let x = Tensor::<5>::random([2, 3, 2, 3, 5], Distribution::Normal(0.0, 3.0), &device);
        let [q, k, v] = normalized_qkv(x.clone());
        for normalised in [q, k] {
            close(normalised.square().sum_dim(4).sqrt(), Tensor::ones([2, 1, 2, 3, 1], &device));
        }
        v.into_data().assert_eq(&x.slice([0..2, 2..3]).into_data(), true);
    }
}
