//! The fast ops behind Instruct-IPT's layers: CPU kernels (with their backward passes) for the
//! convolutions, norms, activations, attention products and permutations where Burn 0.22.1's
//! generic formulation is slow on a CPU backend, and the runtime they share (borrowing a flex
//! tensor's buffer, checked matrix products, uninitialised-free output buffers, SIMD sums and
//! dot products, recording an op on the autodiff graph).
//!
//! Every op is a plain function on [`burn::tensor::Tensor`]s: on a flex (and, for the
//! depth-wise convolution's weight gradient, libtorch) tensor it runs its own kernel; on any
//! other backend it runs the generic Burn formulation it is tested against. Library crates
//! enable no backend; the `flex` and `tch` features compile the kernels for those backends.

#[cfg(any(feature = "flex", feature = "tch"))]
pub mod buffers;
#[cfg(any(feature = "flex", feature = "tch"))]
pub mod cpu_backend;
#[cfg(feature = "flex")]
mod fast_math;
#[cfg(any(feature = "flex", feature = "tch"))]
mod glue;
mod ops;
#[cfg(any(feature = "flex", feature = "tch"))]
mod simd;
#[cfg(all(test, feature = "flex"))]
mod test_tolerance;

pub use ops::{
    AdamWHyper, FlatAdamWInputs, channel_layer_norm, depthwise_conv2d, flat_adamw, gated_gelu, matmul, mixed_weights, normalized_qkv,
    on_flex_tensor, permute_contiguous, pointwise_conv, same_conv_training, softmax_last, sums_of_squares,
};
