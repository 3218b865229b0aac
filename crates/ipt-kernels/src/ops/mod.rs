//! Layers as single ops with kernels of their own on flex, where Burn 0.22.1's generic
//! formulation is slow; other backends run the generic formulation (GPUs fuse it; on libtorch
//! these kernels made the tiny training step slower, 399-403 -> 454-489 ms, as its own ops are
//! fast and the kernels copy to the host). Each kernel is tested against the generic one.

mod adamw;
mod channel_norm;
mod depthwise;
mod gated_gelu;
mod gemm_conv;
mod matmul;
mod mixed_weights;
mod permute;
mod qk_norm;
mod softmax;

pub use adamw::{AdamWHyper, FlatAdamWInputs, flat_adamw, sums_of_squares};
pub use channel_norm::channel_layer_norm;
pub use depthwise::depthwise_conv2d;
pub use gated_gelu::gated_gelu;
pub use gemm_conv::{on_flex_tensor, pointwise_conv, same_conv_training};
pub use matmul::matmul;
pub use mixed_weights::mixed_weights;
pub use permute::permute_contiguous;
pub use qk_norm::normalized_qkv;
pub use softmax::softmax_last;
