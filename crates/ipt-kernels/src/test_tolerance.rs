//! How closely a kernel must match the generic formulation it is tested against.

use burn::tensor::{Tensor, Tolerance};

/// Relative error allowed on every element, measured against the tensor's largest magnitude.
const RELATIVE_TO_SCALE: f64 = 1e-5;

/// Asserts `ours` equals `theirs` up to float32 rounding of sums taken in another order.
///
/// A sum of hundreds of products that nearly cancel keeps the rounding error of its large
/// partial sums, so an element's error is bounded by the tensor's scale, not by its own value:
/// the absolute tolerance is [`RELATIVE_TO_SCALE`] of the largest magnitude in `theirs` (at least
/// of 1). A wrong index or a missed term is off by the order of the scale and still fails.
pub fn assert_close_at_scale<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>) {
    let scale = f64::from(theirs.clone().abs().max().into_scalar::<f32>()).max(1.0);
    ours.into_data().assert_approx_eq::<f32>(&theirs.into_data(), Tolerance::rel_abs(1e-4, RELATIVE_TO_SCALE * scale));
}
