//! Ops with kernels of their own on the CPU backends (flex, libtorch), for the layers whose
//! formulation in Burn 0.22.1's generic ops is slow there (README, Benchmarks): how such an op
//! finds the backend its tensors live on, and reads them on the host. Built only with the
//! `flex` or `tch` feature; elsewhere (GPUs) the generic formulation runs.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor};
use std::borrow::Cow;
#[cfg(feature = "flex")]
use std::any::Any;

#[cfg(feature = "flex")]
use burn::tensor::DType;
use burn::tensor::{Shape, TensorData, read_sync};

/// An op that can run on a concrete CPU backend `B`, on its plain or its autodiff tensors.
pub trait CpuBackendOp {
    /// What the op returns.
    type Output;

    /// The op on `B`, or `None` when its tensors are not `B`'s.
    fn on<B: Backend>(&self) -> Option<Self::Output>
    where
        DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>;
}

/// Runs `op` on the first CPU backend built in that holds its tensors; `None` when none does.
pub fn on_cpu_backend<O: CpuBackendOp>(op: &O) -> Option<O::Output> {
    #[cfg(feature = "flex")]
    if let Some(output) = on_flex(op) {
        return Some(output);
    }
    // Deprecated in Burn 0.22, still the fastest CPU backend for training (README, Benchmarks).
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    if let Some(output) = op.on::<burn::backend::LibTorch>() {
        return Some(output);
    }
    None
}

/// Runs `op` when its tensors are flex's; `None` otherwise. For kernels that beat flex's own ops
/// but not libtorch's (README, Benchmarks).
#[cfg(feature = "flex")]
pub fn on_flex<O: CpuBackendOp>(op: &O) -> Option<O::Output> {
    op.on::<burn::backend::Flex>()
}

/// A tensor's f32 values on the host, row-major: borrowed in place from a contiguous f32 flex
/// tensor (no copy, however many others hold it), else read back (a copy).
pub fn host_values<B: Backend>(tensor: &FloatTensor<B>) -> Cow<'_, [f32]> {
    #[cfg(feature = "flex")]
    if let Some(flex) = (tensor as &dyn Any).downcast_ref::<burn_flex::FlexTensor>()
        && flex.is_contiguous()
        && flex.dtype() == DType::F32
    {
        let start = flex.layout().start_offset();
        return Cow::Borrowed(&flex.storage::<f32>()[start..start + flex.layout().num_elements()]);
    }
    let data = read_sync(B::float_into_data(tensor.clone())).expect("a CPU tensor reads back").convert::<f32>();
    Cow::Owned(data.try_into_vec::<f32>().expect("f32 values"))
}

/// A tensor of `B` on `device` holding `values` with `shape`.
pub fn from_host<B: Backend>(values: Vec<f32>, shape: impl Into<Shape>, device: &B::Device) -> FloatTensor<B> {
    B::float_from_data(TensorData::new(values, shape), device)
}
