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

use burn::tensor::{DType, Shape, TensorData, read_sync};

/// An op that can run on a concrete CPU backend `B`, on its plain or its autodiff tensors.
pub trait CpuBackendOp {
    /// What the op returns.
    type Output;

    /// The float type of the op's tensors (its first input's): the kernels read and write
    /// `f32`, so other types (half-precision training) take the generic formulation.
    fn dtype(&self) -> DType;

    /// The op on `B`, or `None` when its tensors are not `B`'s.
    fn on<B: Backend>(&self) -> Option<Self::Output>
    where
        DispatchTensor: DispatchKindConversion<B> + DispatchKindConversion<Autodiff<B>>;
}

/// Runs `op` on the first CPU backend built in that holds its tensors; `None` when none does
/// or they are not `f32`.
pub fn on_cpu_backend<O: CpuBackendOp>(op: &O) -> Option<O::Output> {
    if op.dtype() != DType::F32 {
        return None;
    }
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

/// Runs `op` when its tensors are flex's `f32` ones; `None` otherwise. For kernels that beat flex's own ops
/// but not libtorch's (README, Benchmarks).
#[cfg(feature = "flex")]
pub fn on_flex<O: CpuBackendOp>(op: &O) -> Option<O::Output> {
    if op.dtype() != DType::F32 {
        return None;
    }
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

/// A matrix for [`product`]: values borrowed from a slice, read from its first value at row
/// and column strides (in values). The strides are free; [`product`] checks that every value of
/// the shape it reads lies inside the slice before `gemm` touches it.
#[cfg(feature = "flex")]
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    data: &'a [f32],
    row_stride: usize,
    column_stride: usize,
}

#[cfg(feature = "flex")]
impl<'a> Matrix<'a> {
    /// The row-major matrix in `data` with `columns` columns.
    pub fn rows(data: &'a [f32], columns: usize) -> Self {
        Self::strided(data, columns, 1)
    }

    /// The transpose of the row-major matrix in `data` with `columns` columns.
    pub fn transposed(data: &'a [f32], columns: usize) -> Self {
        Self::strided(data, 1, columns)
    }

    /// The matrix whose first value is `data[0]`, at the given strides.
    pub fn strided(data: &'a [f32], row_stride: usize, column_stride: usize) -> Self {
        Self { data, row_stride, column_stride }
    }

    /// Panics unless the `rows x columns` values this matrix reads lie inside its slice, so
    /// that `gemm` can read them through a raw pointer.
    fn check_extent(&self, rows: usize, columns: usize, name: &str) {
        if rows == 0 || columns == 0 {
            return; // nothing is read
        }
        let last = (rows - 1)
            .checked_mul(self.row_stride)
            .zip((columns - 1).checked_mul(self.column_stride))
            .and_then(|(down, across)| down.checked_add(across));
        assert!(
            last.is_some_and(|last| last < self.data.len()),
            "{name}: a {rows}x{columns} matrix at strides ({}, {}) does not fit in {} values",
            self.row_stride,
            self.column_stride,
            self.data.len()
        );
    }

    /// A stride as `gemm` takes it (in range: the extent check bounds it by the slice length).
    fn signed(stride: usize) -> isize {
        isize::try_from(stride).expect("a stride within a slice fits isize")
    }
}

/// `out = lhs @ rhs` (`add` false) or `out += lhs @ rhs` (`add` true) with flex's own matrix
/// kernels (`gemm`); `out` is row-major `m x n` and the product's inner size `k`. Panics when
/// `out` does not hold `m x n` values or `lhs` / `rhs` do not hold `m x k` / `k x n` values at
/// their strides.
#[cfg(feature = "flex")]
pub fn product(out: &mut [f32], dims: (usize, usize, usize), lhs: Matrix, rhs: Matrix, add: bool, parallelism: Parallelism) {
    // SAFETY: `out` is an initialised slice, so `gemm` may read it when `add`.
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
    lhs.check_extent(m, k, "lhs");
    rhs.check_extent(k, n, "rhs");
    // SAFETY: `out` holds `m x n` values written at row stride `n` (checked above, and valid
    // by this function's contract); `lhs` and `rhs` read `m x k` and `k x n` values at their
    // strides, all inside their borrowed slices (checked above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            n as isize,
            add,
            lhs.data.as_ptr(),
            Matrix::signed(lhs.column_stride),
            Matrix::signed(lhs.row_stride),
            rhs.data.as_ptr(),
            Matrix::signed(rhs.column_stride),
            Matrix::signed(rhs.row_stride),
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
pub fn strided_values<B: Backend>(tensor: &FloatTensor<B>) -> Option<(&[f32], Vec<usize>)> {
    let flex = (tensor as &dyn Any).downcast_ref::<burn_flex::FlexTensor>()?;
    let strides = flex.layout().strides().iter().map(|&stride| usize::try_from(stride).ok()).collect::<Option<Vec<usize>>>()?;
    if flex.dtype() != DType::F32 {
        return None;
    }
    Some((&flex.storage::<f32>()[flex.layout().start_offset()..], strides))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    #[test]
    fn products_read_strided_and_transposed_matrices() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
        let mut out = [0.0; 4];
        product(&mut out, (2, 2, 3), Matrix::rows(&a, 3), Matrix::rows(&b, 2), false, Parallelism::None);
        assert_eq!(out, [4.0, 5.0, 10.0, 11.0]);
        // a^T (3x2) @ a (2x3) read from the same buffer, accumulated onto 9 ones.
        let mut gram = [1.0; 9];
        product(&mut gram, (3, 3, 2), Matrix::transposed(&a, 3), Matrix::rows(&a, 3), true, Parallelism::None);
        assert_eq!(gram, [18.0, 23.0, 28.0, 23.0, 30.0, 37.0, 28.0, 37.0, 46.0]);
    }

    #[test]
    #[should_panic(expected = "rhs: a 3x2 matrix at strides (2, 1) does not fit in 5 values")]
    fn a_matrix_shorter_than_its_shape_is_refused_before_any_read() {
        let (a, b) = ([1.0; 6], [1.0; 5]);
        product(&mut [0.0; 4], (2, 2, 3), Matrix::rows(&a, 3), Matrix::rows(&b, 2), false, Parallelism::None);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn strides_that_overflow_are_refused() {
        let a = [1.0; 6];
        product(&mut [0.0; 4], (2, 2, 3), Matrix::strided(&a, usize::MAX / 2, 1), Matrix::rows(&a, 2), false, Parallelism::None);
    }
}
