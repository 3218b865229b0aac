//! Down- and up-sampling between levels: a 3x3 conv followed by pixel-unshuffle / pixel-shuffle.

use burn::module::Module;
use burn::nn::{PixelShuffle, PixelShuffleConfig, PixelUnshuffle, PixelUnshuffleConfig};
use burn::tensor::Tensor;
use ipt_modulation::{ModulatedConv2d, TaskWeights};

use crate::LayerGroup;
use crate::modulation::LayerBuilder;

/// Halves the resolution and doubles the channels: conv `C -> C/2`, pixel-unshuffle by 2.
#[derive(Module, Debug)]
pub struct Downsample {
    /// 3x3 conv `C -> C/2` (paper group: down-sampling).
    pub conv: ModulatedConv2d,
    unshuffle: PixelUnshuffle,
}

impl Downsample {
    /// Down-sampling from `channels` to `2 * channels`.
    pub(crate) fn new(channels: usize, layers: &LayerBuilder) -> Self {
        Self {
            conv: layers.conv(LayerGroup::Downsample, channels, channels / 2, 3, 1, false),
            unshuffle: PixelUnshuffleConfig::new(2).init(),
        }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, 2C, H/2, W/2]`
    pub fn forward(&self, x: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        self.unshuffle.forward(self.conv.forward(x, tasks))
    }
}

/// Doubles the resolution and halves the channels: conv `C -> 2C`, pixel-shuffle by 2.
#[derive(Module, Debug)]
pub struct Upsample {
    /// 3x3 conv `C -> 2C` (paper group: up-sampling).
    pub conv: ModulatedConv2d,
    shuffle: PixelShuffle,
}

impl Upsample {
    /// Up-sampling from `channels` to `channels / 2`.
    pub(crate) fn new(channels: usize, layers: &LayerBuilder) -> Self {
        Self { conv: layers.conv(LayerGroup::Upsample, channels, 2 * channels, 3, 1, false), shuffle: PixelShuffleConfig::new(2).init() }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, C/2, 2H, 2W]`
    pub fn forward(&self, x: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        self.shuffle.forward(self.conv.forward(x, tasks))
    }
}
