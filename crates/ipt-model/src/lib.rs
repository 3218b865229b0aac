//! IPT-V2-style U-shaped image processing transformer: the backbone of Instruct-IPT.
//!
//! Instruct-IPT (Tian et al., "Instruct-IPT: All-in-One Image Processing Transformer via Weight
//! Modulation", 2024) builds on IPT-V2 (Tian et al., "IPT-V2: Efficient Image Processing
//! Transformer using Hierarchical Attentions", 2024). Neither paper's code is public, so this
//! backbone is our own design from their descriptions (docs/design.md §1):
//!
//! - conv embedder -> 4-level encoder (the last level is the bottleneck) -> decoder with skip
//!   concatenation and a 1x1 channel-reduction conv -> refinement blocks -> output conv, plus a
//!   global residual (the network predicts `restored - degraded`);
//! - each block: focal context self-attention (channel attention inside shifted windows), global
//!   grid self-attention (spatial attention across a sparse grid) and a locally-enhanced FFN
//!   (gated, with a depth-wise 3x3 conv), each pre-norm and residual;
//! - down-/up-sampling: 3x3 conv with pixel-unshuffle/-shuffle.
//!
//! Where the papers are silent we chose, and say so here:
//! - the three sub-layers run in sequence in every block (IPT-V2 does not say whether they
//!   alternate between blocks);
//! - focal attention follows Restormer's MDTA (1x1 + depth-wise 3x3 qkv, L2-normalised q/k,
//!   learned per-head temperature) restricted to windows; windows shift by half a window on odd
//!   blocks, with no attention mask (channel attention has no spatial logits to mask);
//! - grid attention uses no relative position bias;
//! - the FFN is Restormer's gated form with exact (erf) GELU (on flex 0.22.1 cheaper than tanh) and one trained depth-wise
//!   conv instead of IPT-V2's re-parameterised parallel branches;
//! - every decoder level, including full resolution, reduces the skip concatenation to the
//!   level's channels (Restormer keeps `2C` at full resolution);
//! - inputs are reflect-padded at the bottom/right to [`IptConfig::size_multiple`] and cropped.
//!
//! Layer names are the paper's groups (`embedder`, `qkv`, `attn_proj`, `ffn`, `downsample`,
//! `upsample`, `channel_reduction`, `output`, norms) so task biases can target them: see
//! [`LayerGroup`].
//!
//! Library code takes a `&Device` and enables no backend: binaries choose one by feature.

mod attention;
mod block;
pub mod conditioning;
mod config;
mod error;
mod ffn;
mod groups;
mod grow;
mod layers;
mod model;
mod modulation;
mod padding;
mod sampling;
mod task_ops;
mod tiling;
mod weights;

pub use attention::{FocalContextAttention, GridAttention};
pub use block::{IptBlock, Stage};
pub use conditioning::{Conditioner, FeatureConditioning, FeatureMethod, option_costs};
pub use config::{IptConfig, LEVELS, Preset};
pub use error::ModelError;
pub use ffn::LocallyEnhancedFfn;
pub use groups::{LayerGroup, ParameterReport};
pub use ipt_core::Task;
pub use ipt_modulation::{ModulatedConv2d, ModulatedLinear, RankPolicy, TaskBias, TaskBiased, TaskWeights};
pub use layers::ChannelNorm;
pub use model::IptModel;
pub use modulation::ModulationConfig;
pub use padding::{crop, reflect_pad};
pub use sampling::{Downsample, Upsample};
pub use task_ops::TrainableSet;
pub use tiling::{TileRect, Tiling, restore_streamed, restore_tiled};
pub use weights::{
    FORMAT_VERSION, WeightContent, WeightError, WeightMetadata, config_hash, load_backbone_into, load_task_biases, load_weights,
    load_weights_from_bytes, read_metadata, save_backbone, save_task_biases, save_weights,
};

#[cfg(test)]
pub(crate) mod test_support {
    use burn::tensor::{Device, Distribution, Tensor};
    use burn_store::{ModuleSnapshot, bridge};

    use crate::{IptConfig, IptModel, ModulationConfig, Preset, Task};

    /// A micro model with biases for denoise, deblur and derain whose `B1`s are all non-zero.
    pub fn modulated_micro_model(device: &Device) -> IptModel {
        let modulation = ModulationConfig::new(vec![Task::Denoise, Task::Deblur, Task::Derain]);
        let mut model = micro_config().init_modulated(&modulation, device);
        let tensors = model
            .collect(None, None, false)
            .into_iter()
            .map(|tensor| {
                if !tensor.name.ends_with(".b1") {
                    return tensor;
                }
                let shape: [usize; 2] = tensor.shape.as_slice().try_into().expect("B1 is a matrix");
                let random = Tensor::<2>::random(shape, Distribution::Normal(0.0, 0.05), device);
                bridge::from_data(random.into_data(), tensor.name.clone(), None)
            })
            .collect();
        let result = model.apply(tensors, None, None, false);
        assert!(result.errors.is_empty(), "{result}");
        model
    }

    /// A 4-channel model for fast tests (window and grid 2: inputs in multiples of 16).
    pub fn micro_config() -> IptConfig {
        IptConfig {
            width: 4,
            encoder_blocks: [1, 1, 1, 1],
            decoder_blocks: [1, 1, 1],
            refinement_blocks: 1,
            heads: [1, 1, 2, 2],
            window_size: 2,
            grid_size: 2,
            ..Preset::Tiny.config()
        }
    }
}
