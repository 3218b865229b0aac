//! PromptIR's prompt blocks (Potlapalli et al., 2023).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Tensor};
use ipt_modulation::ModulatedConv2d;

use super::linear;
use crate::IptConfig;
use crate::block::IptBlock;
use crate::config::LEVELS;
use crate::modulation::LayerBuilder;

/// A prompt block on levels 3, 2 and 1 just before each is up-sampled (PromptIR's placement).
/// Task-blind, as in PromptIR: the prompts are chosen from the features, not from the task.
#[derive(Module, Debug)]
pub struct PromptIr {
    /// `levels[i]` works on level `i + 1`.
    pub levels: Vec<PromptStage>,
}

impl PromptIr {
    /// Prompt blocks for a backbone of `config`: `prompts` learned prompts per level, of side
    /// `prompt_size` at level 1, halved at each deeper level.
    pub fn new(config: &IptConfig, prompts: usize, prompt_size: usize, device: &Device) -> Self {
        let levels =
            (1..LEVELS).map(|level| PromptStage::new(config, level, prompts, (prompt_size >> (level - 1)).max(1), device)).collect();
        Self { levels }
    }
}

/// Prompt generation (mix `N` learned `[C, S, S]` prompts by `softmax(Linear(mean_hw(x)))`,
/// resize to the features, 3x3 conv), concatenation with the features, a transformer block over
/// `2C` channels and a 1x1 reduction back to `C`.
#[derive(Module, Debug)]
pub struct PromptStage {
    /// The learned prompts, `[N, C, S, S]`.
    pub prompts: Param<Tensor<4>>,
    /// `C -> N`: prompt weights from the pooled features.
    pub select: Linear,
    /// 3x3 conv `C -> C` on the resized prompt.
    pub prompt_conv: ModulatedConv2d,
    /// Transformer block over features and prompt (`2C` channels).
    pub block: IptBlock,
    /// 1x1 conv `2C -> C`.
    pub reduce: ModulatedConv2d,
}

impl PromptStage {
    fn new(config: &IptConfig, level: usize, prompts: usize, size: usize, device: &Device) -> Self {
        let channels = config.channels(level);
        let layers = LayerBuilder::new(device, None);
        Self {
            prompts: Param::from_tensor(Tensor::random([prompts, channels, size, size], Distribution::Uniform(0.0, 1.0), device)),
            select: linear(channels, prompts, device),
            prompt_conv: ModulatedConv2d::new(channels, channels, 3, 1, false, device),
            block: IptBlock::with_channels(config, 2 * channels, config.heads[level], false, &layers),
            reduce: ModulatedConv2d::new(2 * channels, channels, 1, 1, false, device),
        }
    }

    /// # Shapes
    /// - input and output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        let [count, _, size, _] = self.prompts.dims();
        let pooled = x.clone().mean_dim(2).mean_dim(3).reshape([batch, channels]);
        let weights = softmax(self.select.forward(pooled), 1); // [B, N]
        let prompt = weights.matmul(self.prompts.val().reshape([count, channels * size * size])).reshape([batch, channels, size, size]);
        let options = InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size([height, width]);
        let prompt = self.prompt_conv.forward(interpolate(prompt, options), None);
        self.reduce.forward(self.block.forward(Tensor::cat(vec![x, prompt], 1), None), None)
    }
}
