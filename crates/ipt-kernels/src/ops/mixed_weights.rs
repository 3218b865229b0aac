//! The per-sample weights of a modulated layer, `W + U diag(s_b) D` for each sample `b`: the
//! general weight plus the low-rank task biases of the tasks active in the batch (`U`: their
//! `B1` side by side, `D`: their `B2` stacked, `s_b`: sample `b`'s task weights repeated over
//! each task's rank).
//!
//! In generic ops this is a broadcast product, a batched matrix product and a sum, whose
//! backward adds two batched products and three reductions over the batch: about a dozen ops
//! per modulated layer, 82 layers in a modulated `tiny`, which cost 20-30 ms of its 330 ms
//! training step on flex (`cargo xtask bench-train`, against the same step with the biases
//! left out). On flex it is one recorded op here, whose backward sums the output gradient once
//! per distinct column of task weights (once per active task for one-hot rows) and multiplies
//! those sums by the factors; task weights that are tracked (soft weights from a trained
//! router) get their gradient too.

use burn::tensor::Tensor;

/// `general + up @ diag(scale[b]) @ down` for every sample `b`.
///
/// # Shapes
/// - general: `[rows, columns]`
/// - up: `[rows, rank]`
/// - down: `[rank, columns]`
/// - scale: `[batch, rank]`
/// - output: `[batch, rows, columns]`
pub fn mixed_weights(general: Tensor<2>, up: Tensor<2>, down: Tensor<2>, scale: Tensor<2>) -> Tensor<3> {
    #[cfg(feature = "flex")]
    if let Some(weights) = crate::cpu_backend::on_flex(&cpu::Mixed { general: &general, up: &up, down: &down, scale: &scale }) {
        return weights;
    }
    generic(general, up, down, scale)
}

/// [`mixed_weights`] in Burn's ops.
fn generic(general: Tensor<2>, up: Tensor<2>, down: Tensor<2>, scale: Tensor<2>) -> Tensor<3> {
    let [rows, columns] = general.dims();
    let [batch, rank] = scale.dims();
    let scaled = up.reshape([1, rows, rank]) * scale.reshape([batch, 1, rank]);
    general.reshape([1, rows, columns]) + scaled.matmul(down.reshape([1, rank, columns]))
}

/// The host kernels.
#[cfg(feature = "flex")]
mod host {
    use crate::buffers::per_sample;
    use crate::cpu_backend::{Matrix, Parallelism, product};

    /// The sizes of a call.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Dims {
        pub(super) batch: usize,
        pub(super) rows: usize,
        pub(super) columns: usize,
        pub(super) rank: usize,
    }

    /// `[batch, rows, columns]`: `general + (up * scale[b]) @ down` for each sample.
    pub(super) fn forward(general: &[f32], up: &[f32], down: &[f32], scale: &[f32], dims: Dims) -> Vec<f32> {
        let Dims { rows, columns, rank, .. } = dims;
        per_sample(dims.batch, rows * columns, |b, part, parallelism| {
            let weights = &scale[b * rank..(b + 1) * rank];
            let scaled: Vec<f32> = up.chunks_exact(rank).flat_map(|row| row.iter().zip(weights).map(|(u, s)| u * s)).collect();
            let (out, written) = part.zeroed();
            out.copy_from_slice(general);
            product(out, (rows, columns, rank), Matrix::rows(&scaled, rank), Matrix::rows(down, columns), true, parallelism);
            written
        })
    }

    /// The gradient of the task weights, `[batch, rank]`: `U[:, r]^T grad_b D[r, :]^T`.
    pub(super) fn scale_gradient(grad: &[f32], up: &[f32], down: &[f32], dims: Dims) -> Vec<f32> {
        let Dims { batch, rows, columns, rank } = dims;
        let mut projected = vec![0.0f32; rows];
        let mut out = vec![0.0f32; batch * rank];
        for b in 0..batch {
            let sample = Matrix::rows(&grad[b * rows * columns..(b + 1) * rows * columns], columns);
            for r in 0..rank {
                let column = Matrix::transposed(&down[r * columns..], columns);
                product(&mut projected, (rows, 1, columns), sample, column, false, Parallelism::None);
                out[b * rank + r] = projected.iter().enumerate().map(|(row, value)| value * up[row * rank + r]).sum();
            }
        }
        out
    }

    /// The gradients of `general`, `up` and `down` from the output gradient `grad`.
    pub(super) fn backward(grad: &[f32], up: &[f32], down: &[f32], scale: &[f32], dims: Dims) -> [Vec<f32>; 3] {
        let Dims { batch, rows, columns, rank } = dims;
        let size = rows * columns;
        let sample = |b: usize| &grad[b * size..(b + 1) * size];
        let mut general = sample(0).to_vec();
        (1..batch).for_each(|b| general.iter_mut().zip(sample(b)).for_each(|(sum, g)| *sum += g));

        let (mut d_up, mut d_down) = (vec![0.0f32; rows * rank], vec![0.0f32; rank * columns]);
        for (weights, ranks) in column_groups(scale, batch, rank) {
            // G = sum_b s_b grad_b, then dU[:, r] = G @ D[r, :]^T and dD[r, :] = U[:, r]^T @ G.
            let mut sum = vec![0.0f32; size];
            for (b, &weight) in weights.iter().enumerate().filter(|(_, weight)| **weight != 0.0) {
                sum.iter_mut().zip(sample(b)).for_each(|(acc, g)| *acc += weight * g);
            }
            for &r in &ranks {
                let mut column = vec![0.0f32; rows];
                product(
                    &mut column,
                    (rows, 1, columns),
                    Matrix::rows(&sum, columns),
                    Matrix::transposed(&down[r * columns..], columns),
                    false,
                    Parallelism::None,
                );
                column.iter().enumerate().for_each(|(row, value)| d_up[row * rank + r] = *value);
                let row = &mut d_down[r * columns..(r + 1) * columns];
                product(row, (1, columns, rows), Matrix::strided(&up[r..], 1, rank), Matrix::rows(&sum, columns), false, Parallelism::None);
            }
        }
        [general, d_up, d_down]
    }

    /// The rank columns grouped by their column of task weights (over the batch), each distinct
    /// non-zero column once with the ranks that share it.
    fn column_groups(scale: &[f32], batch: usize, rank: usize) -> Vec<(Vec<f32>, Vec<usize>)> {
        let mut groups: Vec<(Vec<f32>, Vec<usize>)> = Vec::new();
        for r in 0..rank {
            let weights: Vec<f32> = (0..batch).map(|b| scale[b * rank + r]).collect();
            if weights.iter().all(|&weight| weight == 0.0) {
                continue;
            }
            match groups.iter_mut().find(|(known, _)| *known == weights) {
                Some((_, ranks)) => ranks.push(r),
                None => groups.push((weights, vec![r])),
            }
        }
        groups
    }
}

#[cfg(feature = "flex")]
mod cpu {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::Tensor;

    use super::host::{self, Dims};
    use crate::cpu_backend::{CpuBackendOp, from_host, host_values};
    use crate::glue::record;

    /// The op's inputs, for `on_flex`.
    pub(super) struct Mixed<'a> {
        pub(super) general: &'a Tensor<2>,
        pub(super) up: &'a Tensor<2>,
        pub(super) down: &'a Tensor<2>,
        pub(super) scale: &'a Tensor<2>,
    }

    impl CpuBackendOp for Mixed<'_> {
        type Output = Tensor<3>;

        fn dtype(&self) -> burn::tensor::DType {
            self.general.dtype()
        }

        /// On `B`'s autodiff tensors the tracked op; on its plain tensors the forward kernel.
        fn on<B: Backend>(&self) -> Option<Tensor<3>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            if let Ok(general) = self.general.clone().try_into_primitive::<Autodiff<B>>() {
                let up = self.up.clone().try_into_primitive::<Autodiff<B>>().ok()?;
                let down = self.down.clone().try_into_primitive::<Autodiff<B>>().ok()?;
                let scale = self.scale.clone().try_into_primitive::<Autodiff<B>>().ok()?;
                let weights = host_values::<B>(scale.primitive()).into_owned();
                let dims = dims(&general, &up, &down, weights.len());
                let y = forward::<B>(general.primitive(), up.primitive(), down.primitive(), &weights, dims);
                let state = (up.primitive().clone(), down.primitive().clone(), weights, dims);
                let output = record(MixedBackward, &[general, up, down, scale], y, |_, _| state);
                return Some(Tensor::from_primitive::<Autodiff<B>>(output));
            }
            let general = self.general.clone().try_into_primitive::<B>().ok()?;
            let up = self.up.clone().try_into_primitive::<B>().ok()?;
            let down = self.down.clone().try_into_primitive::<B>().ok()?;
            let scale = self.scale.clone().try_into_primitive::<B>().ok()?;
            let scale = host_values::<B>(&scale);
            let dims = dims(&general, &up, &down, scale.len());
            Some(Tensor::from_primitive::<B>(forward::<B>(&general, &up, &down, &scale, dims)))
        }
    }

    /// The sizes of a call, checked against each other.
    fn dims<T: TensorMetadata>(general: &T, up: &T, down: &T, scale_values: usize) -> Dims {
        let ([rows, columns], [up_rows, rank], [down_rank, down_columns]) =
            (general.shape().dims::<2>(), up.shape().dims::<2>(), down.shape().dims::<2>());
        assert!(
            up_rows == rows && down_rank == rank && down_columns == columns && scale_values.is_multiple_of(rank.max(1)),
            "mixed weights: general {rows}x{columns}, up {up_rows}x{rank}, down {down_rank}x{down_columns}, {scale_values} task weights"
        );
        Dims { batch: scale_values / rank.max(1), rows, columns, rank }
    }

    fn forward<B: Backend>(
        general: &FloatTensor<B>,
        up: &FloatTensor<B>,
        down: &FloatTensor<B>,
        scale: &[f32],
        dims: Dims,
    ) -> FloatTensor<B> {
        let y = host::forward(&host_values::<B>(general), &host_values::<B>(up), &host_values::<B>(down), scale, dims);
        from_host::<B>(y, [dims.batch, dims.rows, dims.columns], &general.device())
    }

    #[derive(Debug)]
    struct MixedBackward;

    impl<B: Backend> Backward<B, 4> for MixedBackward {
        /// `up`, `down`, the task weights and the sizes.
        type State = (FloatTensor<B>, FloatTensor<B>, Vec<f32>, Dims);

        fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let grad = grads.consume::<B>(&ops.node);
            let (up, down, scale, dims) = ops.state;
            let device = up.device();
            let (grad, up, down) = (host_values::<B>(&grad), host_values::<B>(&up), host_values::<B>(&down));
            let [general_node, up_node, down_node, scale_node] = ops.parents;
            if let Some(node) = scale_node {
                let d_scale = host::scale_gradient(&grad, &up, &down, dims);
                grads.register::<B>(node.id, from_host::<B>(d_scale, [dims.batch, dims.rank], &device));
            }
            let [d_general, d_up, d_down] = host::backward(&grad, &up, &down, &scale, dims);
            let shapes = [[dims.rows, dims.columns], [dims.rows, dims.rank], [dims.rank, dims.columns]];
            for ((node, values), shape) in [general_node, up_node, down_node].into_iter().zip([d_general, d_up, d_down]).zip(shapes) {
                if let Some(node) = node {
                    grads.register::<B>(node.id, from_host::<B>(values, shape, &device));
                }
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData, Tolerance};

    /// Output and the gradients of `general`, `up`, `down` (and of tracked task weights) equal
    /// the generic formulation's, for one-hot task weights over three tasks of rank 2 (one task
    /// absent from a sample, one from the whole batch) and for soft ones, batches of 1 and 3;
    /// plain tensors too.
    #[test]
    fn kernel_equals_the_generic_formulation() {
        let device = Device::flex().autodiff();
        let (rows, columns, rank) = (5, 7, 6);
        let one_hot = vec![1.0f32, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let soft = vec![0.2f32, 0.2, 0.8, 0.8, 0.0, 0.0];
        let single = vec![0.0f32, 0.0, 0.0, 0.0, 1.0, 1.0];
        for (values, batch, tracked) in [(one_hot, 3, false), (soft, 1, true), (single, 1, false)] {
            let scale = Tensor::<2>::from_data(TensorData::new(values, [batch, rank]), &device);
            let scale = if tracked { scale.require_grad() } else { scale };
            let random = |shape: [usize; 2]| Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            let (general, up, down) = (random([rows, columns]), random([rows, rank]), random([rank, columns]));
            let probe = Tensor::<3>::random([batch, rows, columns], Distribution::Normal(0.0, 1.0), &device);
            let fast = mixed_weights(general.clone(), up.clone(), down.clone(), scale.clone());
            let reference = generic(general.clone(), up.clone(), down.clone(), scale.clone());
            let tolerance = Tolerance::rel_abs(1e-5, 1e-5);
            fast.clone().into_data().assert_approx_eq::<f32>(&reference.clone().into_data(), tolerance);
            let (fast_grads, reference_grads) = ((fast * probe.clone()).sum().backward(), (reference * probe).sum().backward());
            for parameter in [&general, &up, &down] {
                let ours = parameter.grad(&fast_grads).expect("a gradient");
                ours.into_data().assert_approx_eq::<f32>(&parameter.grad(&reference_grads).expect("a gradient").into_data(), tolerance);
            }
            assert_eq!(scale.grad(&fast_grads).is_some(), tracked, "task weights get a gradient exactly when tracked");
            if let (Some(ours), Some(theirs)) = (scale.grad(&fast_grads), scale.grad(&reference_grads)) {
                ours.into_data().assert_approx_eq::<f32>(&theirs.into_data(), tolerance);
            }
            let plain = mixed_weights(general.clone().inner(), up.clone().inner(), down.clone().inner(), scale.clone().inner());
            let expected = generic(general.inner(), up.inner(), down.inner(), scale.inner());
            plain.into_data().assert_approx_eq::<f32>(&expected.into_data(), tolerance);
        }
    }
}
