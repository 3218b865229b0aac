//! The FFN's gate, `gelu(x1) * x2` with `x1, x2` the two channel halves of one map.
//!
//! In Burn's ops that is a chunk, an exact GELU (the C library's scalar `erff` per element on
//! flex 0.22.1) and a product forward, and about six ops backward; the kernel reads the map once
//! each way, with a vectorisable `erf`, and returns the gradient of both halves as one map.

use burn::tensor::Tensor;

/// `gelu(x[:, :h]) * x[:, h:]` (exact, erf-based GELU) for `x` `[N, 2h, H, W]`.
pub fn gated_gelu(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = crate::cpu_backend::on_flex(&cpu::GatedGelu { x: &x }) {
        return y;
    }
    generic(x)
}

/// The formulation in Burn's ops (what GPUs run, and the reference of the tests).
fn generic(x: Tensor<4>) -> Tensor<4> {
    let [gate, value] = x.chunk(2, 1).try_into().expect("chunk(2) of an even channel count gives two halves");
    burn::tensor::activation::gelu(gate) * value
}

/// The host kernels on `[N, 2h, P]` values, one task per channel plane of the output.
#[cfg(feature = "flex")]
mod host {
    use std::f32::consts::{FRAC_1_SQRT_2, PI};

    use crate::buffers::filled;
    use pulp::{Arch, Simd, WithSimd};
    use rayon::prelude::*;

    use crate::fast_math::{erf, exp};

    /// `(sample, channel)` of each output plane, in order.
    fn planes(batch: usize, half: usize) -> impl IndexedParallelIterator<Item = (usize, usize)> {
        (0..batch * half).into_par_iter().map(move |index| (index / half, index % half))
    }

    /// Offsets of the gate and value planes of output plane `(sample, channel)`.
    fn offsets(sample: usize, channel: usize, half: usize, pixels: usize) -> (usize, usize) {
        let gate = (sample * 2 * half + channel) * pixels;
        (gate, gate + half * pixels)
    }

    /// The gated GELU of `x` `[N, 2h, P]`, `[N, h, P]`.
    pub(super) fn forward(x: &[f32], batch: usize, half: usize, pixels: usize) -> Vec<f32> {
        filled(batch * half * pixels, pixels, |plane, output| {
            let (gate, value) = offsets(plane / half, plane % half, half, pixels);
            Arch::new().dispatch(ForwardPlane { output, gate: &x[gate..gate + pixels], value: &x[value..value + pixels] });
        })
    }

    /// The gradient of `x` `[N, 2h, P]` from the output gradient `grad` `[N, h, P]`.
    pub(super) fn backward(x: &[f32], grad: &[f32], batch: usize, half: usize, pixels: usize) -> Vec<f32> {
        let mut dx = crate::buffers::zeros(x.len());
        // Each sample's gradient is [gate planes | value planes]: pair plane c of each half.
        let pairs: Vec<(&mut [f32], &mut [f32])> = dx
            .chunks_mut(2 * half * pixels)
            .flat_map(|sample| {
                let (gates, values) = sample.split_at_mut(half * pixels);
                gates.chunks_mut(pixels).zip(values.chunks_mut(pixels))
            })
            .collect();
        pairs.into_par_iter().zip(planes(batch, half)).for_each(|((dgate, dvalue), (sample, channel))| {
            let (gate, value) = offsets(sample, channel, half, pixels);
            let upstream = &grad[(sample * half + channel) * pixels..][..pixels];
            Arch::new().dispatch(BackwardPlane {
                dgate,
                dvalue,
                gate: &x[gate..gate + pixels],
                value: &x[value..value + pixels],
                upstream,
            });
        });
        dx
    }

    /// One output plane of [`forward`]; its loop vectorises at the CPU's widest SIMD level.
    struct ForwardPlane<'a> {
        output: &'a mut [f32],
        gate: &'a [f32],
        value: &'a [f32],
    }

    impl WithSimd for ForwardPlane<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            for ((out, &a), &b) in self.output.iter_mut().zip(self.gate).zip(self.value) {
                *out = 0.5 * a * (1.0 + erf(a * FRAC_1_SQRT_2)) * b;
            }
        }
    }

    /// One plane pair of [`backward`]; its loop vectorises at the CPU's widest SIMD level.
    struct BackwardPlane<'a> {
        dgate: &'a mut [f32],
        dvalue: &'a mut [f32],
        gate: &'a [f32],
        value: &'a [f32],
        upstream: &'a [f32],
    }

    impl WithSimd for BackwardPlane<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let density = 1.0 / (2.0 * PI).sqrt();
            let inputs = self.gate.iter().zip(self.value).zip(self.upstream);
            for ((dgate, dvalue), ((&a, &b), &g)) in self.dgate.iter_mut().zip(self.dvalue.iter_mut()).zip(inputs) {
                let cdf = 0.5 * (1.0 + erf(a * FRAC_1_SQRT_2));
                *dvalue = g * a * cdf;
                *dgate = g * b * (cdf + a * density * exp(-0.5 * a * a));
            }
        }
    }
}

#[cfg(feature = "flex")]
mod cpu {
    use crate::cpu_backend::{CpuBackendOp, from_host, host_values};
    use crate::glue::unary_op;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor, TensorMetadata};
    use burn::tensor::Tensor;

    use super::host;

    /// The gate's input, for `on_flex`.
    pub(super) struct GatedGelu<'a> {
        pub(super) x: &'a Tensor<4>,
    }

    impl CpuBackendOp for GatedGelu<'_> {
        type Output = Tensor<4>;

        fn dtype(&self) -> burn::tensor::DType {
            self.x.dtype()
        }

        /// On `B`'s autodiff tensors the tracked op; on its plain tensors the forward kernel.
        fn on<B: Backend>(&self) -> Option<Tensor<4>>
        where
            DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>,
        {
            unary_op(self.x, GateBackward, forward::<B>, |checkpoint, x, _| checkpoint(x))
        }
    }

    /// `[N, h, H, W]` halves and pixels of a `[N, 2h, H, W]` shape.
    fn layout(shape: &[usize]) -> (usize, usize, usize) {
        (shape[0], shape[1] / 2, shape[2] * shape[3])
    }

    fn forward<B: Backend>(x: &FloatTensor<B>) -> FloatTensor<B> {
        let (device, shape) = (x.device(), x.shape());
        let (batch, half, pixels) = layout(&shape);
        let y = host::forward(&host_values::<B>(x), batch, half, pixels);
        from_host::<B>(y, [batch, half, shape[2], shape[3]], &device)
    }

    #[derive(Debug)]
    struct GateBackward;

    impl<B: Backend> Backward<B, 1> for GateBackward {
        type State = NodeId;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let [node] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(ops.state);
            if let Some(node) = node {
                let (device, shape) = (x.device(), x.shape());
                let (batch, half, pixels) = layout(&shape);
                let dx = host::backward(&host_values::<B>(&x), &host_values::<B>(&grad), batch, half, pixels);
                grads.register::<B>(node.id, from_host::<B>(dx, shape, &device));
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tolerance};

    /// Values are O(1-10): 1e-5 absolute is the f32 rounding of `1 + erf(x)` at very negative
    /// `x` (where the library's and ours both cancel), times the value half.
    fn close(ours: Tensor<4>, theirs: Tensor<4>) {
        ours.into_data().assert_approx_eq::<f32>(&theirs.into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    }

    /// Plain and autodiff flex tensors take the kernel; its output and gradient equal the
    /// generic formulation's (Burn's exact GELU).
    #[test]
    fn kernel_equals_the_generic_formulation() {
        let plain = Tensor::<4>::random([2, 6, 5, 7], Distribution::Normal(0.0, 2.0), &Device::flex());
        let fast = crate::cpu_backend::on_flex(&cpu::GatedGelu { x: &plain }).expect("flex tensors take the kernel");
        close(fast, generic(plain));

        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 6, 5, 7], Distribution::Normal(0.0, 2.0), &device).require_grad();
        let upstream = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(0.0, 1.0), &device);
        let fast = crate::cpu_backend::on_flex(&cpu::GatedGelu { x: &x }).expect("autodiff flex tensors take the kernel");
        let reference = generic(x.clone());
        close(fast.clone(), reference.clone());
        let (fast_grads, reference_grads) = ((fast * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
        close(x.grad(&fast_grads).unwrap(), x.grad(&reference_grads).unwrap());
    }
}
