//! Ops with kernels of their own on the CPU backends (flex, libtorch), for the layers whose
//! formulation in Burn 0.22.1's generic ops is slow there (README, Benchmarks): how such an op
//! finds the backend its tensors live on, reads them on the host (in place where it can), and,
//! on flex, multiplies matrices with flex's own kernels (`gemm`) into buffers of its own. Built
//! only with the `flex` or `tch` feature; elsewhere (GPUs) the generic formulation runs.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DispatchKindConversion, DispatchTensor};
#[cfg(feature = "flex")]
use std::any::Any;
use std::borrow::Cow;

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

/// Where the threads go in [`per_sample`] work: `gemm`'s own setting.
#[cfg(feature = "flex")]
pub use gemm::Parallelism;

/// A matrix for [`product`]: its first value and its row and column strides, in values.
#[cfg(feature = "flex")]
pub struct Matrix {
    data: *const f32,
    row_stride: isize,
    column_stride: isize,
}

#[cfg(feature = "flex")]
impl Matrix {
    /// The row-major matrix in `data` with `columns` columns.
    pub fn rows(data: &[f32], columns: usize) -> Self {
        Self::strided(data, columns as isize, 1)
    }

    /// The transpose of the row-major matrix in `data` with `columns` columns.
    pub fn transposed(data: &[f32], columns: usize) -> Self {
        Self::strided(data, 1, columns as isize)
    }

    /// The matrix whose first value is `data[0]`, at the given (non-negative) strides; its
    /// other values must lie in `data` too.
    pub fn strided(data: &[f32], row_stride: isize, column_stride: isize) -> Self {
        assert!(row_stride >= 0 && column_stride >= 0, "negative strides {row_stride}, {column_stride}");
        Self { data: data.as_ptr(), row_stride, column_stride }
    }
}

/// `out = lhs @ rhs` (`add` false) or `out += lhs @ rhs` (`add` true) with flex's own matrix
/// kernels (`gemm`); `out` is row-major `m x n`, the product's inner size `k`, and `lhs` and
/// `rhs` must hold `m x k` and `k x n` values at their strides.
#[cfg(feature = "flex")]
pub fn product(out: &mut [f32], dims: (usize, usize, usize), lhs: Matrix, rhs: Matrix, add: bool, parallelism: Parallelism) {
    // SAFETY: `out` is initialised, so `gemm` may read it when `add`.
    unsafe { product_into(out.as_mut_ptr(), out.len(), dims, lhs, rhs, add, parallelism) }
}

/// [`product`] into `len` values at `out`.
///
/// # Safety
/// `out` must be valid for writes of `len` values, and initialised when `add` (`gemm` reads
/// it then; otherwise it only writes, every one of the `m x n` values).
#[cfg(feature = "flex")]
pub(crate) unsafe fn product_into(
    out: *mut f32,
    len: usize,
    (m, n, k): (usize, usize, usize),
    lhs: Matrix,
    rhs: Matrix,
    add: bool,
    parallelism: Parallelism,
) {
    assert!(len == m * n && k > 0, "gemm output {len} for {m}x{n}, inner {k}");
    // SAFETY: `out` holds `m x n` values written at row stride `n` (checked above, and valid
    // by this function's contract); `lhs` and `rhs` point into slices holding `m x k` and
    // `k x n` values at the strides given (`Matrix`'s contract, kept by its callers' shapes).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
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

/// A flex f32 tensor's values from its first one on, and its strides (in values), in place:
/// `None` when the tensor is not flex's, not f32, or has a negative stride.
#[cfg(feature = "flex")]
pub fn strided_values<B: Backend>(tensor: &FloatTensor<B>) -> Option<(&[f32], Vec<isize>)> {
    let flex = (tensor as &dyn Any).downcast_ref::<burn_flex::FlexTensor>()?;
    let strides = flex.layout().strides().to_vec();
    if flex.dtype() != DType::F32 || strides.iter().any(|stride| *stride < 0) {
        return None;
    }
    Some((&flex.storage::<f32>()[flex.layout().start_offset()..], strides))
}
