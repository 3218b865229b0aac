//! PIP: prompt-in-prompt learning (Li et al., 2023).

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, Tensor};
use ipt_modulation::TaskWeights;

use super::linear;
use crate::IptConfig;
use crate::config::LEVELS;
use crate::layers::ChannelNorm;

/// A degradation-aware prompt (`tokens` learned vectors per task, mixed by the task weights)
/// and a basic restoration prompt (a learned `[D, S, S]` map shared by all tasks) are fused by
/// cross-attention, the map's positions asking the task's tokens (prompt-to-prompt). The fused
/// map is then read by each feature pixel through cross-attention on levels 3, 2 and 1 before
/// up-sampling, and added through a zero-initialised projection (prompt-to-feature), so a fresh
/// model equals its backbone.
///
/// Our choices where PIP leaves room: `tokens` vectors per task (PIP's single vector is
/// `tokens = 1`, which makes the prompt-to-prompt attention a plain broadcast); PromptIR's
/// placement; one fused prompt shared by the three levels.
#[derive(Module, Debug)]
pub struct Pip {
    /// Degradation-aware prompts, `[tasks, tokens, D]`.
    pub degradation: Param<Tensor<3>>,
    /// Basic restoration prompt, `[S * S, D]` (a `D`-channel `S x S` map, as tokens).
    pub basic: Param<Tensor<2>>,
    /// Prompt-to-prompt cross-attention.
    pub fuse: CrossAttention,
    /// `inject[i]`: prompt-to-feature on level `i + 1`.
    pub inject: Vec<PromptToFeature>,
}

impl Pip {
    /// PIP prompts for a backbone of `config` and `tasks` tasks.
    pub fn new(config: &IptConfig, tasks: usize, tokens: usize, channels: usize, size: usize, device: &Device) -> Self {
        let normal = Distribution::Normal(0.0, 0.02);
        Self {
            degradation: Param::from_tensor(Tensor::random([tasks, tokens, channels], normal, device)),
            basic: Param::from_tensor(Tensor::random([size * size, channels], normal, device)),
            fuse: CrossAttention::new(channels, channels, channels, linear(channels, channels, device), device),
            inject: (1..LEVELS).map(|level| PromptToFeature::new(config.channels(level), channels, device)).collect(),
        }
    }

    /// The fused prompt of each sample, `[batch, S * S, D]`.
    pub fn fused_prompt(&self, tasks: &TaskWeights) -> Tensor<3> {
        let [task_count, tokens, channels] = self.degradation.dims();
        let [positions, _] = self.basic.dims();
        let batch = tasks.batch();
        let degradation = tasks
            .weights()
            .clone()
            .matmul(self.degradation.val().reshape([task_count, tokens * channels]))
            .reshape([batch, tokens, channels]);
        let basic = self.basic.val().reshape([1, positions, channels]).repeat_dim(0, batch);
        basic.clone() + self.fuse.forward(basic, degradation)
    }
}

/// Single-head cross-attention `out(softmax(q(x) k(c)^T / sqrt(d)) v(c))` between token sets.
#[derive(Module, Debug)]
pub struct CrossAttention {
    /// Query projection of the asking tokens.
    pub query: Linear,
    /// Key projection of the context tokens.
    pub key: Linear,
    /// Value projection of the context tokens.
    pub value: Linear,
    /// Output projection.
    pub out: Linear,
}

impl CrossAttention {
    /// Queries from `d_query`-wide tokens, keys and values from `d_context`-wide ones, attention
    /// width `d_attention`, output projection `out`.
    fn new(d_query: usize, d_context: usize, d_attention: usize, out: Linear, device: &Device) -> Self {
        Self {
            query: linear(d_query, d_attention, device),
            key: linear(d_context, d_attention, device),
            value: linear(d_context, d_attention, device),
            out,
        }
    }

    /// # Shapes
    /// - x: `[batch, N, d_query]`, context: `[batch, M, d_context]`
    /// - output: `[batch, N, d_out]`
    pub fn forward(&self, x: Tensor<3>, context: Tensor<3>) -> Tensor<3> {
        let q = self.query.forward(x);
        let [_, _, width] = q.dims();
        let k = self.key.forward(context.clone());
        let v = self.value.forward(context);
        let attention = softmax(q.matmul(k.swap_dims(1, 2)).div_scalar((width as f32).sqrt()), 2);
        self.out.forward(attention.matmul(v))
    }
}

/// Each feature pixel reads the fused prompt by cross-attention; the result is added to the
/// features through a zero-initialised projection.
#[derive(Module, Debug)]
pub struct PromptToFeature {
    /// Norm of the features before they ask.
    pub norm: ChannelNorm,
    /// Pixel-to-prompt cross-attention, output `D -> C` starting at zero.
    pub attention: CrossAttention,
}

impl PromptToFeature {
    fn new(channels: usize, prompt_channels: usize, device: &Device) -> Self {
        let zero = LinearConfig::new(prompt_channels, channels).with_initializer(Initializer::Zeros).init(device);
        Self {
            norm: ChannelNorm::new(channels, device),
            attention: CrossAttention::new(channels, prompt_channels, prompt_channels, zero, device),
        }
    }

    /// # Shapes
    /// - x and output: `[batch, C, H, W]`
    /// - prompt: `[batch, S * S, D]`
    pub fn forward(&self, x: Tensor<4>, prompt: Tensor<3>) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        let pixels = self.norm.forward(x.clone()).reshape([batch, channels, height * width]).swap_dims(1, 2);
        let read = self.attention.forward(pixels, prompt); // [B, HW, C]
        x + read.swap_dims(1, 2).reshape([batch, channels, height, width])
    }
}
