//! Layers as single ops with kernels of their own on the CPU backends (flex, libtorch), where
//! Burn 0.22.1's generic formulation is slow there; GPUs (which fuse the generic ops) and
//! builds without a CPU backend run the generic formulation. Each kernel is tested against it.

mod channel_norm;
#[cfg(any(feature = "flex", feature = "tch"))]
mod fast_math;
mod gated_gelu;
mod softmax;

pub(crate) use channel_norm::channel_layer_norm;
pub(crate) use gated_gelu::gated_gelu;
pub(crate) use softmax::softmax_last;
