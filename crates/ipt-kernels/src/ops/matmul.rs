//! The attention's batched matrix products on flex, read in place from strided views.
//!
//! flex 0.22.1 multiplies strided views without copying them, but allocates every output zeroed
//! and then copies it once more to align it (`FlexTensor::empty`), serially on the calling
//! thread, and its backward is two more such products. The kernel here writes each product into
//! its own buffer (one `gemm` call per matrix of the batch) and records a backward of its own:
//! `dA = dY B^T`, `dB = A^T dY`, read in place through the strides.

use burn::tensor::Tensor;

/// `lhs.matmul(rhs)` for operands of the same batch shape.
pub fn matmul<const D: usize>(lhs: Tensor<D>, rhs: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = crate::cpu_backend::on_flex(&cpu::Matmul { lhs: &lhs, rhs: &rhs }) {
        return y;
    }
    lhs.matmul(rhs)
}

/// The host kernel on strided views.
#[cfg(feature = "flex")]
mod host {
    use crate::buffers::per_sample;
    use crate::cpu_backend::Matrix;

    /// A tensor's values from its first one on, and its strides.
    pub(super) struct View<'a> {
        pub(super) values: &'a [f32],
        pub(super) strides: Vec<usize>,
    }

    impl View<'_> {
        /// The same values with the last two axes swapped.
        pub(super) fn transposed(&self) -> View<'_> {
            let mut strides = self.strides.clone();
            let rank = strides.len();
            strides.swap(rank - 2, rank - 1);
            View { values: self.values, strides }
        }

        /// Matrix `index` of the batch (row-major order over `batch` axes).
        fn matrix(&self, index: usize, batch: &[usize]) -> Matrix<'_> {
            let mut offset = 0;
            let mut rest = index;
            for (axis, size) in batch.iter().enumerate().rev() {
                offset += rest % size * self.strides[axis];
                rest /= size;
            }
            let rank = self.strides.len();
            Matrix::strided(&self.values[offset..], self.strides[rank - 2], self.strides[rank - 1])
        }
    }

    /// `lhs @ rhs` per matrix of the `batch` axes: `[batch..., m, n]`, row-major.
    pub(super) fn batched(lhs: &View, rhs: &View, batch: &[usize], (m, k, n): (usize, usize, usize)) -> Vec<f32> {
        per_sample(batch.iter().product(), m * n, |index, part, parallelism| {
            part.product((m, n, k), lhs.matrix(index, batch), rhs.matrix(index, batch), parallelism).1
        })
    }
}

#[cfg(feature = "flex")]
mod cpu {
    use crate::cpu_backend::{CpuBackendOp, from_host, strided_values};
    use crate::glue::record;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::{Shape, Tensor};

    use super::host::{self, View};

    /// The operands, for `on_flex`.
    pub(super) struct Matmul<'a, const D: usize> {
        pub(super) lhs: &'a Tensor<D>,
        pub(super) rhs: &'a Tensor<D>,
    }

    impl<const D: usize> CpuBackendOp for Matmul<'_, D> {
        type Output = Tensor<D>;

        fn dtype(&self) -> burn::tensor::DType {
            self.lhs.dtype()
        }

        /// On `B`'s autodiff tensors the tracked op; on its plain tensors the forward kernel;
        /// `None` for operands of different batch shapes or that flex does not hold as f32.
        fn on<B: Backend>(&self) -> Option<Tensor<D>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            let (lhs_shape, rhs_shape) = (self.lhs.shape(), self.rhs.shape());
            if lhs_shape[..D - 2] != rhs_shape[..D - 2] {
                return None;
            }
            if let Ok(lhs) = self.lhs.clone().try_into_primitive::<Autodiff<B>>() {
                let rhs = self.rhs.clone().try_into_primitive::<Autodiff<B>>().ok()?;
                let y = forward::<B>(lhs.primitive(), rhs.primitive())?;
                let state = (lhs.primitive().clone(), rhs.primitive().clone());
                let output = record(MatmulBackward, &[lhs, rhs], y, |_, _| state);
                return Some(Tensor::from_primitive::<Autodiff<B>>(output));
            }
            let lhs = self.lhs.clone().try_into_primitive::<B>().ok()?;
            let rhs = self.rhs.clone().try_into_primitive::<B>().ok()?;
            Some(Tensor::from_primitive::<B>(forward::<B>(&lhs, &rhs)?))
        }
    }

    /// A tensor read in place, or `None` when flex does not hold it as f32 at non-negative strides.
    fn view<B: Backend>(tensor: &FloatTensor<B>) -> Option<View<'_>> {
        strided_values::<B>(tensor).map(|(values, strides)| View { values, strides })
    }

    /// `lhs @ rhs` of two views with the same batch axes.
    fn product<B: Backend>(lhs: &View, rhs: &View, lhs_shape: &Shape, rhs_shape: &Shape, device: &B::Device) -> FloatTensor<B> {
        let rank = lhs_shape.num_dims();
        let (m, k, n) = (lhs_shape[rank - 2], lhs_shape[rank - 1], rhs_shape[rank - 1]);
        let batch = &lhs_shape[..rank - 2];
        let mut dims = batch.to_vec();
        dims.extend([m, n]);
        from_host::<B>(host::batched(lhs, rhs, batch, (m, k, n)), dims, device)
    }

    fn forward<B: Backend>(lhs: &FloatTensor<B>, rhs: &FloatTensor<B>) -> Option<FloatTensor<B>> {
        let (lhs_view, rhs_view) = (view::<B>(lhs)?, view::<B>(rhs)?);
        Some(product::<B>(&lhs_view, &rhs_view, &lhs.shape(), &rhs.shape(), &lhs.device()))
    }

    /// `shape` with its last two axes swapped.
    fn transposed(shape: &Shape) -> Shape {
        let mut dims = shape.to_vec();
        let rank = dims.len();
        dims.swap(rank - 2, rank - 1);
        Shape::from(dims)
    }

    #[derive(Debug)]
    struct MatmulBackward;

    impl<B: Backend> Backward<B, 2> for MatmulBackward {
        /// The operands.
        type State = (FloatTensor<B>, FloatTensor<B>);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_lhs, node_rhs] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (lhs, rhs) = ops.state;
            let (lhs_shape, rhs_shape, grad_shape, device) = (lhs.shape(), rhs.shape(), grad.shape(), lhs.device());
            let [grad_view, lhs_view, rhs_view] =
                [&grad, &lhs, &rhs].map(|tensor| view::<B>(tensor).expect("the forward read these in place"));
            if let Some(node) = node_lhs {
                let dlhs = product::<B>(&grad_view, &rhs_view.transposed(), &grad_shape, &transposed(&rhs_shape), &device);
                grads.register::<B>(node.id, dlhs);
            }
            if let Some(node) = node_rhs {
                let drhs = product::<B>(&lhs_view.transposed(), &grad_view, &transposed(&lhs_shape), &grad_shape, &device);
                grads.register::<B>(node.id, drhs);
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::test_tolerance::assert_close_at_scale as close;
    use burn::tensor::{Device, Distribution};

    /// On strided views as the attention makes them (chunks of one tensor, one of them
    /// transposed), output and both gradients equal flex's own matmul's; plain tensors too.
    #[test]
    fn kernel_equals_the_generic_product() {
        let device = Device::flex().autodiff();
        let tokens = Tensor::<5>::random([3, 2, 2, 4, 6], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let split = || -> [Tensor<5>; 2] { tokens.clone().chunk(2, 1).try_into().unwrap() };
        let upstream = Tensor::<5>::random([3, 1, 2, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let ([q, k], [q_reference, k_reference]) = (split(), split());
        let fast = matmul(q.swap_dims(3, 4), k);
        let reference = q_reference.swap_dims(3, 4).matmul(k_reference);
        close(fast.clone(), reference.clone());
        let (fast_grads, reference_grads) = ((fast * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
        close(tokens.grad(&fast_grads).unwrap(), tokens.grad(&reference_grads).unwrap());

        let plain = tokens.inner();
        let (a, b) = (plain.clone().slice([0..3, 0..1]), plain.slice([0..3, 1..2]).swap_dims(3, 4));
        let op = cpu::Matmul { lhs: &a, rhs: &b };
        close(crate::cpu_backend::on_flex(&op).expect("flex tensors take the kernel"), a.clone().matmul(b.clone()));
    }
}
