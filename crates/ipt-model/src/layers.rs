//! Channel LayerNorm for `[batch, C, H, W]` feature maps.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use ipt_kernels::channel_layer_norm;

/// LayerNorm over the channel axis of a `[batch, C, H, W]` map (Restormer's "WithBias" LayerNorm).
///
/// Norms are task-insensitive (paper Table 2: cosine similarity 0.99), so they never get task biases.
#[derive(Module, Debug)]
pub struct ChannelNorm {
    /// Scale, `[C]`, initialised to 1.
    pub weight: Param<Tensor<1>>,
    /// Shift, `[C]`, initialised to 0.
    pub bias: Param<Tensor<1>>,
}

/// Added to the variance: the value PyTorch's `nn.LayerNorm` uses.
const NORM_EPSILON: f64 = 1e-5;

impl ChannelNorm {
    /// A norm over `channels` channels with identity initialisation.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self { weight: Param::from_tensor(Tensor::ones([channels], device)), bias: Param::from_tensor(Tensor::zeros([channels], device)) }
    }

    /// Normalises each pixel's channel vector (biased variance, as `nn.LayerNorm`).
    ///
    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        channel_layer_norm(x, self.weight.val(), self.bias.val(), NORM_EPSILON)
    }
}
