//! The IPT-V2 transformer block and a stage (a sequence of blocks at one resolution).

use burn::module::Module;
use burn::tensor::Tensor;
use ipt_modulation::TaskWeights;

use crate::attention::{FocalContextAttention, GridAttention};
use crate::config::IptConfig;
use crate::ffn::LocallyEnhancedFfn;
use crate::layers::ChannelNorm;
use crate::modulation::LayerBuilder;

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
    pub(crate) fn new(config: &IptConfig, level: usize, shifted: bool, layers: &LayerBuilder) -> Self {
        Self::with_channels(config, config.channels(level), config.heads[level], shifted, layers)
    }

    /// A block of `config`'s kind over `channels` channels with `heads` heads (for conditioning
    /// layers that widen the features, as PromptIR's prompt concatenation does).
    pub(crate) fn with_channels(config: &IptConfig, channels: usize, heads: usize, shifted: bool, layers: &LayerBuilder) -> Self {
        Self {
            norm_focal: ChannelNorm::new(channels, layers.device),
            focal: FocalContextAttention::new(channels, heads, config.window_size, shifted, layers),
            norm_grid: ChannelNorm::new(channels, layers.device),
            grid: GridAttention::new(channels, heads, config.grid_size, layers),
            norm_ffn: ChannelNorm::new(channels, layers.device),
            ffn: LocallyEnhancedFfn::new(channels, config.ffn_hidden(channels), layers),
        }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        self.forward_with(x, tasks, None)
    }

    /// [`IptBlock::forward`] with an optional branch parallel to the FFN, fed the same
    /// normalised input and added to its output (AdaptIR's adapter).
    pub(crate) fn forward_with(
        &self,
        x: Tensor<4>,
        tasks: Option<&TaskWeights>,
        ffn_side: Option<&dyn Fn(Tensor<4>) -> Tensor<4>>,
    ) -> Tensor<4> {
        let x = x.clone() + self.focal.forward(self.norm_focal.forward(x), tasks);
        let x = x.clone() + self.grid.forward(self.norm_grid.forward(x), tasks);
        let normed = self.norm_ffn.forward(x.clone());
        match ffn_side {
            Some(side) => x + self.ffn.forward(normed.clone(), tasks) + side(normed),
            None => x + self.ffn.forward(normed, tasks),
        }
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
    pub(crate) fn new(config: &IptConfig, level: usize, count: usize, layers: &LayerBuilder) -> Self {
        let blocks = (0..count).map(|index| IptBlock::new(config, level, index % 2 == 1, layers)).collect();
        Self { blocks }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        self.blocks.iter().fold(x, |x, block| block.forward(x, tasks))
    }

    /// [`Stage::forward`] with a branch parallel to each block's FFN: `ffn_side(block, input)`.
    pub(crate) fn forward_with(
        &self,
        x: Tensor<4>,
        tasks: Option<&TaskWeights>,
        ffn_side: Option<&dyn Fn(usize, Tensor<4>) -> Tensor<4>>,
    ) -> Tensor<4> {
        self.blocks.iter().enumerate().fold(x, |x, (index, block)| match ffn_side {
            Some(side) => block.forward_with(x, tasks, Some(&|normed| side(index, normed))),
            None => block.forward(x, tasks),
        })
    }
}
