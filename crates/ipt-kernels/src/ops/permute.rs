//! A permutation of axes written out contiguously: the attention's window and grid partitions
//! and merges.
//!
//! On flex 0.22.1 a reshape of a permuted view copies it element by element through a generic
//! strided iterator on one thread: about 14% of the small preset's 256x256 inference
//! (`perf record` of `cargo xtask bench-case --preset small`). The kernel here copies blocks of
//! the two innermost output axes with fixed source strides, blocks in parallel; its backward is
//! the same copy with the inverse permutation.

use burn::tensor::Tensor;

/// `x.permute(axes)`, contiguous on flex (so a following reshape is free); a strided view
/// elsewhere.
pub fn permute_contiguous<const D: usize>(x: Tensor<D>, axes: [usize; D]) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if D >= 2
        && let Some(y) = crate::cpu_backend::on_flex(&cpu::Permute { x: &x, axes: &axes })
    {
        return y;
    }
    x.permute(axes)
}

/// The host kernel on row-major values.
#[cfg(feature = "flex")]
mod host {
    use crate::buffers::filled;

    /// Output blocks (of the two innermost axes) per parallel task.
    const BLOCKS_PER_TASK: usize = 64;

    /// The values of a row-major tensor of shape `dims` with its axes permuted by `axes`
    /// (output axis `i` is input axis `axes[i]`), row-major; `axes` has at least two entries.
    pub(super) fn permute(x: &[f32], dims: &[usize], axes: &[usize]) -> Vec<f32> {
        let mut input_strides = vec![1; dims.len()];
        for axis in (0..dims.len() - 1).rev() {
            input_strides[axis] = input_strides[axis + 1] * dims[axis + 1];
        }
        let out_dims: Vec<usize> = axes.iter().map(|&axis| dims[axis]).collect();
        let strides: Vec<usize> = axes.iter().map(|&axis| input_strides[axis]).collect();
        let rank = axes.len();
        let (rows, columns) = (out_dims[rank - 2], out_dims[rank - 1]);
        let (row_stride, column_stride) = (strides[rank - 2], strides[rank - 1]);
        let block = rows * columns;
        if block == 0 {
            return Vec::new(); // no values (an axis of size 0)
        }
        filled(x.len(), BLOCKS_PER_TASK * block, |task, outputs| {
            for (index, output) in outputs.chunks_exact_mut(block).enumerate() {
                // The block's source offset from its index over the outer output axes.
                let (mut rest, mut start) = (task * BLOCKS_PER_TASK + index, 0);
                for axis in (0..rank - 2).rev() {
                    start += rest % out_dims[axis] * strides[axis];
                    rest /= out_dims[axis];
                }
                for (row, output) in output.chunks_exact_mut(columns).enumerate() {
                    let source = &x[start + row * row_stride..];
                    if column_stride == 1 {
                        output.copy_from_slice(&source[..columns]);
                    } else {
                        output.iter_mut().zip(source.iter().step_by(column_stride)).for_each(|(out, value)| *out = *value);
                    }
                }
            }
        })
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
    use burn::tensor::{Shape, Tensor};

    use super::host;

    /// The permutation's input and axes, for `on_flex`.
    pub(super) struct Permute<'a, const D: usize> {
        pub(super) x: &'a Tensor<D>,
        pub(super) axes: &'a [usize; D],
    }

    impl<const D: usize> CpuBackendOp for Permute<'_, D> {
        type Output = Tensor<D>;

        fn dtype(&self) -> burn::tensor::DType {
            self.x.dtype()
        }

        /// On `B`'s autodiff tensors the tracked op; on its plain tensors the forward kernel.
        fn on<B: Backend>(&self) -> Option<Tensor<D>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            unary_op(
                self.x,
                PermuteBackward,
                |x| permute::<B>(x, self.axes),
                |_, _, _| {
                    let mut inverse = vec![0; D];
                    self.axes.iter().enumerate().for_each(|(output_axis, &axis)| inverse[axis] = output_axis);
                    inverse
                },
            )
        }
    }

    fn permute<B: Backend>(x: &FloatTensor<B>, axes: &[usize]) -> FloatTensor<B> {
        let (device, shape) = (x.device(), x.shape());
        let y = host::permute(&host_values::<B>(x), &shape, axes);
        let out_dims: Vec<usize> = axes.iter().map(|&axis| shape[axis]).collect();
        from_host::<B>(y, Shape::from(out_dims), &device)
    }

    #[derive(Debug)]
    struct PermuteBackward;

    impl<B: Backend> Backward<B, 1> for PermuteBackward {
        /// The inverse permutation.
        type State = Vec<usize>;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            if let Some(node) = node {
                grads.register::<B>(node.id, permute::<B>(&grad, &ops.state));
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    /// Plain and autodiff flex tensors take the kernel; its output and gradient equal Burn's
    /// permuted view's exactly, for the partitions' permutations and ones that keep the last
    /// axis in place or move it.
    #[test]
    fn kernel_equals_burns_permute() {
        let axes_cases = [[0, 2, 4, 1, 3, 5], [0, 3, 1, 4, 2, 5], [0, 3, 5, 1, 2, 4], [0, 3, 4, 1, 5, 2], [5, 4, 3, 2, 1, 0]];
        for axes in axes_cases {
            let dims = [2, 3, 2, 4, 3, 5];
            let plain = Tensor::<6>::random(dims, Distribution::Default, &Device::flex());
            let fast = crate::cpu_backend::on_flex(&cpu::Permute { x: &plain, axes: &axes }).expect("flex tensors take the kernel");
            fast.into_data().assert_eq(&plain.clone().permute(axes).into_data(), true);

            let device = Device::flex().autodiff();
            let x = Tensor::<6>::random(dims, Distribution::Default, &device).require_grad();
            let permuted_dims = axes.map(|axis| dims[axis]);
            let upstream = Tensor::<6>::random(permuted_dims, Distribution::Default, &device);
            let fast = permute_contiguous(x.clone(), axes);
            let reference = x.clone().permute(axes);
            fast.clone().into_data().assert_eq(&reference.clone().into_data(), true);
            let (fast_grads, reference_grads) = ((fast * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
            x.grad(&fast_grads).unwrap().into_data().assert_eq(&x.grad(&reference_grads).unwrap().into_data(), true);
        }
    }
}
