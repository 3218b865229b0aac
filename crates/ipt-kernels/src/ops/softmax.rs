//! Softmax over the last axis, the attention maps' normalisation.
//!
//! flex 0.22.1's softmax calls the C library's scalar `expf` per element, and its backward is
//! four generic ops; together they were about 15% of `tiny`'s inference (`perf record` of
//! `cargo xtask bench-case --preset tiny`). The kernel here uses an exponential written to
//! vectorise and records a one-pass backward (`dx = y * (g - sum(g * y))`).

use burn::tensor::Tensor;

/// `softmax(x, D - 1)`.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = crate::cpu_backend::on_flex(&cpu::Softmax { x: &x }) {
        return y;
    }
    burn::tensor::activation::softmax(x, D - 1)
}

/// The host kernels on rows of `row` values.
#[cfg(feature = "flex")]
mod host {
    use crate::buffers::filled;
    use pulp::{Arch, Simd, WithSimd};

    use crate::fast_math::{exp, maximum};
    use crate::simd::sum_in;

    /// Rows per parallel task.
    const ROWS_PER_TASK: usize = 64;

    /// The softmax of each row of `x`.
    pub(super) fn forward(x: &[f32], row: usize) -> Vec<f32> {
        let chunk = ROWS_PER_TASK * row;
        filled(x.len(), chunk, |task, outputs| {
            let inputs = &x[task * chunk..][..outputs.len()];
            Arch::new().dispatch(ForwardRows { outputs, inputs, row });
        })
    }

    /// The input gradient of each row, from the softmax `y` and the output gradient `grad`.
    pub(super) fn backward(y: &[f32], grad: &[f32], row: usize) -> Vec<f32> {
        let chunk = ROWS_PER_TASK * row;
        filled(y.len(), chunk, |task, outputs| {
            let (ys, grads) = (&y[task * chunk..][..outputs.len()], &grad[task * chunk..][..outputs.len()]);
            Arch::new().dispatch(BackwardRows { outputs, ys, grads, row });
        })
    }

    /// One task of [`forward`]; its loops vectorise at the CPU's widest SIMD level.
    struct ForwardRows<'a> {
        outputs: &'a mut [f32],
        inputs: &'a [f32],
        row: usize,
    }

    impl WithSimd for ForwardRows<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            for (output, input) in self.outputs.chunks_exact_mut(self.row).zip(self.inputs.chunks_exact(self.row)) {
                let max = maximum(input);
                output.iter_mut().zip(input).for_each(|(out, value)| *out = exp(value - max));
                let inverse = 1.0 / sum_in(simd, output);
                output.iter_mut().for_each(|out| *out *= inverse);
            }
        }
    }

    /// One task of [`backward`]; its loops vectorise at the CPU's widest SIMD level.
    struct BackwardRows<'a> {
        outputs: &'a mut [f32],
        ys: &'a [f32],
        grads: &'a [f32],
        row: usize,
    }

    impl WithSimd for BackwardRows<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let rows = self.outputs.chunks_exact_mut(self.row).zip(self.ys.chunks_exact(self.row)).zip(self.grads.chunks_exact(self.row));
            for ((output, y), grad) in rows {
                output.iter_mut().zip(grad).zip(y).for_each(|((out, g), y)| *out = g * y);
                let dot = sum_in(simd, output);
                output.iter_mut().zip(grad).zip(y).for_each(|((out, g), y)| *out = y * (g - dot));
            }
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

    /// The softmax's input, for `on_flex`.
    pub(super) struct Softmax<'a, const D: usize> {
        pub(super) x: &'a Tensor<D>,
    }

    impl<const D: usize> CpuBackendOp for Softmax<'_, D> {
        type Output = Tensor<D>;

        fn dtype(&self) -> burn::tensor::DType {
            self.x.dtype()
        }

        /// On `B`'s autodiff tensors the tracked op; on its plain tensors the forward kernel.
        fn on<B: Backend>(&self) -> Option<Tensor<D>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            unary_op(self.x, SoftmaxBackward, forward::<B>, |_, _, y| y.clone())
        }
    }

    fn forward<B: Backend>(x: &FloatTensor<B>) -> FloatTensor<B> {
        let (device, shape) = (x.device(), x.shape());
        let row = shape[shape.num_dims() - 1];
        let y = host::forward(&host_values::<B>(x), row);
        from_host::<B>(y, shape, &device)
    }

    #[derive(Debug)]
    struct SoftmaxBackward;

    impl<B: Backend> Backward<B, 1> for SoftmaxBackward {
        /// The softmax's output.
        type State = FloatTensor<B>;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            if let Some(node) = node {
                let y = ops.state;
                let (device, shape) = (y.device(), y.shape());
                let row = shape[shape.num_dims() - 1];
                let dx = host::backward(&host_values::<B>(&y), &host_values::<B>(&grad), row);
                grads.register::<B>(node.id, from_host::<B>(dx, shape, &device));
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Device, Distribution, Tolerance};

    /// Gradients are O(1) differences `g - sum(g * y)`: 1e-5 absolute covers their f32
    /// cancellation when `y` differs by a few ulp.
    fn close<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>) {
        ours.into_data().assert_approx_eq::<f32>(&theirs.into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    }

    /// The kernels read and write `f32`: half-precision tensors (mixed-precision training)
    /// take Burn's op and keep their type.
    #[test]
    fn half_precision_tensors_take_the_generic_op() {
        for dtype in [burn::tensor::FloatDType::F16, burn::tensor::FloatDType::BF16] {
            let x = Tensor::<3>::random([2, 3, 9], Distribution::Normal(0.0, 2.0), &Device::flex()).cast(dtype);
            assert!(crate::cpu_backend::on_flex(&cpu::Softmax { x: &x }).is_none(), "{dtype:?} skips the kernel");
            let y = softmax_last(x.clone());
            assert_eq!(y.dtype(), x.dtype());
            assert_eq!(y.into_data(), softmax(x, 2).into_data());
        }
    }

    /// Plain and autodiff flex tensors take the kernel; its output and gradient equal Burn's
    /// softmax for rows shorter than, equal to and longer than the reduction lanes.
    #[test]
    fn kernel_equals_burns_softmax() {
        for row in [5, 8, 64, 67] {
            let plain = Tensor::<5>::random([3, 1, 2, 7, row], Distribution::Normal(0.0, 4.0), &Device::flex());
            let fast = crate::cpu_backend::on_flex(&cpu::Softmax { x: &plain }).expect("flex tensors take the kernel");
            close(fast, softmax(plain, 4));

            let device = Device::flex().autodiff();
            let x = Tensor::<5>::random([3, 1, 2, 7, row], Distribution::Normal(0.0, 4.0), &device).require_grad();
            let upstream = Tensor::<5>::random([3, 1, 2, 7, row], Distribution::Normal(0.0, 1.0), &device);
            let fast = crate::cpu_backend::on_flex(&cpu::Softmax { x: &x }).expect("autodiff flex tensors take the kernel");
            let reference = softmax(x.clone(), 4);
            close(fast.clone(), reference.clone());
            let (fast_grads, reference_grads) = ((fast * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
            close(x.grad(&fast_grads).unwrap(), x.grad(&reference_grads).unwrap());
        }
    }
}
