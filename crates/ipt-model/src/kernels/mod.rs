//! Layers as single ops with kernels of their own on flex, where Burn 0.22.1's generic
//! formulation is slow; other backends run the generic formulation (GPUs fuse it; on libtorch
//! these kernels made the tiny training step slower, 399-403 -> 454-489 ms, as its own ops are
//! fast and the kernels copy to the host). Each kernel is tested against the generic one.

mod channel_norm;
#[cfg(feature = "flex")]
mod fast_math;
mod gated_gelu;
mod matmul;
mod permute;
mod qk_norm;
mod softmax;

pub(crate) use channel_norm::channel_layer_norm;
pub(crate) use gated_gelu::gated_gelu;
pub(crate) use matmul::matmul;
pub(crate) use permute::permute_contiguous;
pub(crate) use qk_norm::normalized_qkv;
pub(crate) use softmax::softmax_last;
