//! The IPT-V2 transformer block and a stage (a sequence of blocks at one resolution).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::attention::{FocalContextAttention, GridAttention};
use crate::config::IptConfig;
use crate::ffn::LocallyEnhancedFfn;
use crate::layers::ChannelNorm;

/// Pre-norm residual block: focal context attention, then global grid attention, then the
/// locally-enhanced FFN, each as `x + f(norm(x))`.
#[derive(Module, Debug)]
pub struct IptBlock {
    /// Norm before the focal context attention.
    pub norm_focal: ChannelNorm,
    /// Channel attention inside (shifted) windows.
    pub focal: FocalContextAttention,
    /// Norm before the grid attention.
    pub norm_grid: ChannelNorm,
    /// Spatial attention across a sparse grid.
    pub grid: GridAttention,
    /// Norm before the FFN.
    pub norm_ffn: ChannelNorm,
    /// Gated FFN with a depth-wise 3x3 conv.
    pub ffn: LocallyEnhancedFfn,
}

impl IptBlock {
    /// A block at `level` of `config`; `shifted` shifts its focal windows by half a window.
    pub fn new(config: &IptConfig, level: usize, shifted: bool, device: &Device) -> Self {
        let channels = config.channels(level);
        let heads = config.heads[level];
        Self {
            norm_focal: ChannelNorm::new(channels, device),
            focal: FocalContextAttention::new(channels, heads, config.window_size, shifted, device),
            norm_grid: ChannelNorm::new(channels, device),
            grid: GridAttention::new(channels, heads, config.grid_size, device),
            norm_ffn: ChannelNorm::new(channels, device),
            ffn: LocallyEnhancedFfn::new(channels, config.ffn_hidden(channels), device),
        }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = x.clone() + self.focal.forward(self.norm_focal.forward(x));
        let x = x.clone() + self.grid.forward(self.norm_grid.forward(x));
        x.clone() + self.ffn.forward(self.norm_ffn.forward(x))
    }
}

/// Blocks at one resolution; odd-numbered blocks shift their windows (Swin's alternation).
#[derive(Module, Debug)]
pub struct Stage {
    /// The blocks, applied in order.
    pub blocks: Vec<IptBlock>,
}

impl Stage {
    /// `count` blocks at `level` of `config`.
    pub fn new(config: &IptConfig, level: usize, count: usize, device: &Device) -> Self {
        let blocks = (0..count)
            .map(|index| IptBlock::new(config, level, index % 2 == 1, device))
            .collect();
        Self { blocks }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.blocks.iter().fold(x, |x, block| block.forward(x))
    }
}
