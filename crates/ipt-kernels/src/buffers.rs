//! New output buffers for the CPU kernels, filled in parallel and zeroed only where a kernel
//! needs zeros.
//!
//! `vec![0.0; len]` is a `memset` on the calling thread while the pool waits (4.5% of the tiny
//! training step's samples in `perf` when every kernel allocated its output that way), and even
//! spread over the pool, zeroing memory that is overwritten next was 8.8% of the step's samples.
//! [`per_sample`] hands each part out uninitialised, as a [`Part`] whose only ways out
//! initialise all of it (and prove it with [`Written`]); [`filled`] zeroes each part on the
//! thread that fills it.

use std::mem::MaybeUninit;

use rayon::prelude::*;

#[cfg(feature = "flex")]
use crate::cpu_backend::{Matrix, Parallelism, product_into};

/// A part of a new buffer, not yet initialised.
pub struct Part<'a>(&'a mut [MaybeUninit<f32>]);

/// Proof that a [`Part`] was initialised whole: only its initialising methods make one.
pub struct Written(());

impl<'a> Part<'a> {
    /// The part, zeroed.
    pub fn zeroed(self) -> (&'a mut [f32], Written) {
        self.0.fill(MaybeUninit::new(0.0));
        self.initialised()
    }

    /// The part as rows of `row` values, row `i` filled with `values[i]` (a bias per channel).
    pub fn rows_of(self, row: usize, values: &[f32]) -> (&'a mut [f32], Written) {
        assert_eq!(self.0.len(), row * values.len(), "{} rows of {row} values in a part of {}", values.len(), self.0.len());
        for (line, value) in self.0.chunks_exact_mut(row.max(1)).zip(values) {
            line.fill(MaybeUninit::new(*value));
        }
        self.initialised()
    }

    /// The part holding `lhs @ rhs` (`m x n`, inner size `k`: see `cpu_backend::product`).
    #[cfg(feature = "flex")]
    pub fn product(self, dims: (usize, usize, usize), lhs: Matrix, rhs: Matrix, parallelism: Parallelism) -> (&'a mut [f32], Written) {
        // SAFETY: the part is valid for writes of its length; without `add`, `gemm` does not
        // read it and writes all `m x n` values (`product_into` checks the length).
        unsafe { product_into(self.0.as_mut_ptr().cast(), self.0.len(), dims, lhs, rhs, false, parallelism) };
        self.initialised()
    }

    /// The part as the `f32` values its callers have just initialised.
    fn initialised(self) -> (&'a mut [f32], Written) {
        // SAFETY: every caller initialised all values of the part first, and
        // `MaybeUninit<f32>` has the layout of `f32`.
        (unsafe { &mut *(self.0 as *mut [MaybeUninit<f32>] as *mut [f32]) }, Written(()))
    }
}

/// A new buffer of `count * chunk` values from `work(index, part, parallelism)` on each
/// `chunk`-sized part: parts in parallel when there are enough to keep every thread busy, else
/// one after the other with the work itself told to go parallel.
#[cfg(feature = "flex")]
pub fn per_sample(count: usize, chunk: usize, work: impl Fn(usize, Part<'_>, Parallelism) -> Written + Sync) -> Vec<f32> {
    let len = count * chunk;
    let mut buffer: Vec<f32> = Vec::with_capacity(len);
    let parts = &mut buffer.spare_capacity_mut()[..len];
    if count >= rayon::current_num_threads() {
        parts.par_chunks_mut(chunk.max(1)).enumerate().for_each(|(index, part)| {
            let Written(()) = work(index, Part(part), Parallelism::None);
        });
    } else {
        parts.chunks_mut(chunk.max(1)).enumerate().for_each(|(index, part)| {
            let Written(()) = work(index, Part(part), Parallelism::Rayon(0));
        });
    }
    // SAFETY: the parts cover the first `len` values of the capacity, and the work on each
    // returned the `Written` that only initialising all of its part gives.
    unsafe { buffer.set_len(len) };
    buffer
}

/// Values per part when [`zeros`] splits its work.
const ZEROING_CHUNK: usize = 1 << 16;

/// `len` zeros, written by all threads.
pub fn zeros(len: usize) -> Vec<f32> {
    filled(len, ZEROING_CHUNK, |_, _| {})
}

/// A new buffer of `len` values made by `fill(index, part)` on each `chunk`-sized part (the last
/// may be shorter), parts in parallel. Each part is zeroed just before its `fill`, by the same
/// thread, so the zeroing is spread over the pool and leaves the part in that core's cache.
pub fn filled(len: usize, chunk: usize, fill: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    per_part(len, chunk, |index, part| {
        let (part, written) = part.zeroed();
        fill(index, part);
        written
    })
}

/// A new buffer of `len` values from `work(index, part)` on each `chunk`-sized part (the last may
/// be shorter), parts in parallel.
fn per_part(len: usize, chunk: usize, work: impl Fn(usize, Part<'_>) -> Written + Sync) -> Vec<f32> {
    let mut buffer: Vec<f32> = Vec::with_capacity(len);
    buffer.spare_capacity_mut()[..len].par_chunks_mut(chunk.max(1)).enumerate().for_each(|(index, part)| {
        let Written(()) = work(index, Part(part));
    });
    // SAFETY: the parts cover the first `len` values of the capacity, and the work on each
    // returned the `Written` that only initialising all of its part gives.
    unsafe { buffer.set_len(len) };
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each way out of a part initialises all of it, in every part, for part counts below and
    /// above the thread count.
    #[test]
    fn parts_come_back_initialised() {
        assert_eq!(
            filled(10, 4, |index, part| part.iter_mut().for_each(|value| *value += index as f32)),
            [0., 0., 0., 0., 1., 1., 1., 1., 2., 2.]
        );
        assert_eq!(zeros(3), [0.0; 3]);
        let bias = [1.0, -2.0];
        assert_eq!(per_part(8, 4, |_, part| part.rows_of(2, &bias).1), [1., 1., -2., -2., 1., 1., -2., -2.]);
        #[cfg(feature = "flex")]
        for count in [1, 5] {
            let (lhs, rhs) = ([1.0f32, 2.0, 3.0, 4.0], [1.0f32, 0.0, 0.0, 1.0]);
            let products = per_sample(count, 4, |_, part, parallelism| {
                part.product((2, 2, 2), Matrix::rows(&lhs, 2), Matrix::rows(&rhs, 2), parallelism).1
            });
            assert_eq!(products, lhs.repeat(count));
        }
    }
}
