//! Down- and up-sampling between levels: a 3x3 conv followed by pixel-unshuffle / pixel-shuffle.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{PixelShuffle, PixelShuffleConfig, PixelUnshuffle, PixelUnshuffleConfig};
use burn::tensor::{Device, Tensor};

use crate::layers::conv;

/// Halves the resolution and doubles the channels: conv `C -> C/2`, pixel-unshuffle by 2.
#[derive(Module, Debug)]
pub struct Downsample {
    /// 3x3 conv `C -> C/2` (paper group: down-sampling).
    pub conv: Conv2d,
    unshuffle: PixelUnshuffle,
}

impl Downsample {
    /// Down-sampling from `channels` to `2 * channels`.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv: conv(channels, channels / 2, 3, 1, false, device),
            unshuffle: PixelUnshuffleConfig::new(2).init(),
        }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, 2C, H/2, W/2]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.unshuffle.forward(self.conv.forward(x))
    }
}

/// Doubles the resolution and halves the channels: conv `C -> 2C`, pixel-shuffle by 2.
#[derive(Module, Debug)]
pub struct Upsample {
    /// 3x3 conv `C -> 2C` (paper group: up-sampling).
    pub conv: Conv2d,
    shuffle: PixelShuffle,
}

impl Upsample {
    /// Up-sampling from `channels` to `channels / 2`.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv: conv(channels, 2 * channels, 3, 1, false, device),
            shuffle: PixelShuffleConfig::new(2).init(),
        }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, C/2, 2H, 2W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.shuffle.forward(self.conv.forward(x))
    }
}
