//! Sums of products at the widest SIMD level the CPU has (`pulp` dispatches at run time; our
//! crates are compiled for the baseline target, SSE2 on x86-64, where plain loops stay narrow).
//!
//! [`row_products`] is `A @ B^T` for row-major `A` `[m, K]` and `B` `[n, K]` whose shared inner
//! dimension is the contiguous one, so every output value is a dot product of two rows: the
//! shape of a convolution's weight gradient (output gradient `[C_out, pixels]` against input or
//! patch rows `[C_in * k * k, pixels]`). `gemm` wants one operand laid out along the output
//! rows instead and first packed (transposed) the patch matrix: 10% of the tiny training step's
//! samples in `perf`. Here blocks of rows are multiplied in registers straight from the buffers.

use pulp::{Arch, Simd, WithSimd};

/// Independent vector sums in [`dot`] and [`sum`]: enough to hide the add latency.
const CHAINS: usize = 4;

/// `sum(a[i] * b[i])`; `a` and `b` of one length.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot product of {} and {} values", a.len(), b.len());
    Arch::new().dispatch(Dot { a, b })
}

/// [`dot`] inside a kernel already dispatched at `simd`'s level.
#[cfg(feature = "flex")]
#[inline(always)]
pub(crate) fn dot_in<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    Dot { a, b }.with_simd(simd)
}

/// `sum(values)`.
#[cfg(feature = "flex")]
pub(crate) fn sum(values: &[f32]) -> f32 {
    Arch::new().dispatch(Sum(values))
}

/// [`sum`] inside a kernel already dispatched at `simd`'s level.
#[cfg(feature = "flex")]
#[inline(always)]
pub(crate) fn sum_in<S: Simd>(simd: S, values: &[f32]) -> f32 {
    Sum(values).with_simd(simd)
}

/// [`dot`]'s operands, for the dispatch.
struct Dot<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl WithSimd for Dot<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let ((a, a_tail), (b, b_tail)) = (S::as_simd_f32s(self.a), S::as_simd_f32s(self.b));
        let mut sums = [simd.splat_f32s(0.0); CHAINS];
        let (a_chunks, b_chunks) = (a.chunks_exact(CHAINS), b.chunks_exact(CHAINS));
        for (sum, (x, y)) in sums.iter_mut().zip(a_chunks.remainder().iter().zip(b_chunks.remainder())) {
            *sum = simd.mul_add_e_f32s(*x, *y, *sum);
        }
        for (x, y) in a_chunks.zip(b_chunks) {
            for (sum, (x, y)) in sums.iter_mut().zip(x.iter().zip(y)) {
                *sum = simd.mul_add_e_f32s(*x, *y, *sum);
            }
        }
        let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
        simd.reduce_sum_f32s(sums.into_iter().reduce(|x, y| simd.add_f32s(x, y)).expect("CHAINS > 0")) + tail
    }
}

/// [`sum`]'s operand, for the dispatch.
#[cfg(feature = "flex")]
struct Sum<'a>(&'a [f32]);

#[cfg(feature = "flex")]
impl WithSimd for Sum<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let (values, tail) = S::as_simd_f32s(self.0);
        let mut sums = [simd.splat_f32s(0.0); CHAINS];
        let chunks = values.chunks_exact(CHAINS);
        for (sum, value) in sums.iter_mut().zip(chunks.remainder()) {
            *sum = simd.add_f32s(*sum, *value);
        }
        for chunk in chunks {
            for (sum, value) in sums.iter_mut().zip(chunk) {
                *sum = simd.add_f32s(*sum, *value);
            }
        }
        simd.reduce_sum_f32s(sums.into_iter().reduce(|x, y| simd.add_f32s(x, y)).expect("CHAINS > 0")) + tail.iter().sum::<f32>()
    }
}

/// Rows of `A` per register block of [`row_products`].
#[cfg(feature = "flex")]
const BLOCK_ROWS: usize = 4;
/// Rows of `B` per register block of [`row_products`].
#[cfg(feature = "flex")]
const BLOCK_COLUMNS: usize = 3;

/// `out = A @ B^T`, or `out += A @ B^T` when `add`: `out` row-major `[m, n]` with
/// `m = a.len() / inner` and `n = b.len() / inner`.
#[cfg(feature = "flex")]
pub(crate) fn row_products(out: &mut [f32], a: &[f32], b: &[f32], inner: usize, add: bool) {
    let (m, n) = (a.len() / inner.max(1), b.len() / inner.max(1));
    assert!(
        inner > 0 && out.len() == m * n && a.len() == m * inner && b.len() == n * inner,
        "row products of {m}x{inner} and {n}x{inner} into {}",
        out.len()
    );
    Arch::new().dispatch(RowProducts { out, a, b, inner, add });
}

/// [`row_products`]' arguments, for `pulp`'s dispatch to the widest SIMD level the CPU has.
#[cfg(feature = "flex")]
struct RowProducts<'a> {
    out: &'a mut [f32],
    a: &'a [f32],
    b: &'a [f32],
    inner: usize,
    add: bool,
}

#[cfg(feature = "flex")]
impl WithSimd for RowProducts<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(mut self, simd: S) {
        let (m, n) = (self.a.len() / self.inner, self.b.len() / self.inner);
        let (full_rows, full_columns) = (m - m % BLOCK_ROWS, n - n % BLOCK_COLUMNS);
        for row in (0..m).step_by(BLOCK_ROWS) {
            for column in (0..n).step_by(BLOCK_COLUMNS) {
                match (row < full_rows, column < full_columns) {
                    (true, true) => self.block::<S, BLOCK_ROWS, BLOCK_COLUMNS>(simd, row, column),
                    (true, false) => (column..n).for_each(|column| self.block::<S, BLOCK_ROWS, 1>(simd, row, column)),
                    (false, true) => (row..m).for_each(|row| self.block::<S, 1, BLOCK_COLUMNS>(simd, row, column)),
                    (false, false) => (row..m).for_each(|row| (column..n).for_each(|column| self.block::<S, 1, 1>(simd, row, column))),
                }
            }
        }
    }
}

#[cfg(feature = "flex")]
impl RowProducts<'_> {
    /// The `R x C` block of outputs from row `row` of `A` and row `column` of `B` on: `R * C`
    /// vector sums, kept in registers over the whole inner dimension.
    #[inline(always)]
    fn block<S: Simd, const R: usize, const C: usize>(&mut self, simd: S, row: usize, column: usize) {
        let inner = self.inner;
        let lhs: [(&[S::f32s], &[f32]); R] = std::array::from_fn(|r| S::as_simd_f32s(&self.a[(row + r) * inner..][..inner]));
        let rhs: [(&[S::f32s], &[f32]); C] = std::array::from_fn(|c| S::as_simd_f32s(&self.b[(column + c) * inner..][..inner]));
        let mut sums = [[simd.splat_f32s(0.0); C]; R];
        for index in 0..lhs[0].0.len() {
            for (sums, (x, _)) in sums.iter_mut().zip(&lhs) {
                for (sum, (y, _)) in sums.iter_mut().zip(&rhs) {
                    *sum = simd.mul_add_e_f32s(x[index], y[index], *sum);
                }
            }
        }
        let n = self.b.len() / inner;
        for (r, sums) in sums.iter().enumerate() {
            for (c, sum) in sums.iter().enumerate() {
                let tail: f32 = lhs[r].1.iter().zip(rhs[c].1).map(|(x, y)| x * y).sum();
                let (target, value) = (&mut self.out[(row + r) * n + column + c], simd.reduce_sum_f32s(*sum) + tail);
                *target = if self.add { *target + value } else { value };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with a remainder in every split (SIMD width, chains, blocks).
    fn values(count: usize, step: usize, modulus: usize, scale: f32) -> Vec<f32> {
        (0..count).map(|i| ((i * step) % modulus) as f32 * scale - 1.0).collect()
    }

    fn close(x: f32, y: f32) -> bool {
        (x - y).abs() <= 1e-4 * y.abs().max(1.0)
    }

    /// `dot` and `sum` equal the sequential ones for lengths around every split.
    #[test]
    fn dot_and_sum_equal_the_sequential_ones() {
        for length in [0, 1, 7, 16, 63, 64, 65, 200] {
            let (a, b) = (values(length, 7, 11, 0.25), values(length, 5, 13, 0.5));
            let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(close(dot(&a, &b), expected), "dot of {length}");
            #[cfg(feature = "flex")]
            assert!(close(sum(&a), a.iter().sum()), "sum of {length}");
        }
    }

    #[cfg(feature = "flex")]
    /// Every output equals the plain dot product of its rows, for sizes with and without
    /// remainders in every dimension, written and accumulated.
    #[test]
    fn products_equal_plain_dot_products() {
        for (m, n, inner) in [(1, 1, 1), (4, 3, 8), (5, 7, 19), (9, 2, 64), (3, 10, 5)] {
            let (a, b) = (values(m * inner, 7, 11, 0.25), values(n * inner, 5, 13, 0.5));
            let expected: Vec<f32> = (0..m * n)
                .map(|index| {
                    let (row, column) = (index / n, index % n);
                    a[row * inner..][..inner].iter().zip(&b[column * inner..][..inner]).map(|(x, y)| x * y).sum()
                })
                .collect();
            let mut out = vec![f32::NAN; m * n];
            row_products(&mut out, &a, &b, inner, false);
            assert!(out.iter().zip(&expected).all(|(x, y)| close(*x, *y)), "{m}x{n}x{inner}: {out:?} vs {expected:?}");
            row_products(&mut out, &a, &b, inner, true);
            assert!(out.iter().zip(&expected).all(|(x, y)| close(*x, 2.0 * y)), "{m}x{n}x{inner} accumulated");
        }
    }
}
