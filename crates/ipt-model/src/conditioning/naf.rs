//! NAFNet's block (Chen et al., 2022), the block inside InstructIR's ICB.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use ipt_modulation::ModulatedConv2d;

use crate::layers::ChannelNorm;

/// `y = x + beta * conv3(sca(gate(dw(conv1(norm1(x))))))`, then
/// `y + gamma * conv5(gate(conv4(norm2(y))))`, with SimpleGate (`a * b` of the two channel
/// halves) and simplified channel attention (`x * conv(mean_hw(x))`). `beta` and `gamma` start
/// at zero, so a fresh block is the identity.
#[derive(Module, Debug)]
pub struct NafBlock {
    /// Norm before the spatial half.
    pub norm1: ChannelNorm,
    /// 1x1 `C -> 2C`.
    pub conv1: ModulatedConv2d,
    /// Depth-wise 3x3 on `2C`.
    pub conv2: ModulatedConv2d,
    /// 1x1 `C -> C` of the simplified channel attention.
    pub sca: ModulatedConv2d,
    /// 1x1 `C -> C`.
    pub conv3: ModulatedConv2d,
    /// Norm before the channel half.
    pub norm2: ChannelNorm,
    /// 1x1 `C -> 2C`.
    pub conv4: ModulatedConv2d,
    /// 1x1 `C -> C`.
    pub conv5: ModulatedConv2d,
    /// Residual scale of the spatial half, `[C]`.
    pub beta: Param<Tensor<1>>,
    /// Residual scale of the channel half, `[C]`.
    pub gamma: Param<Tensor<1>>,
}

impl NafBlock {
    /// A block over `channels` channels.
    pub fn new(channels: usize, device: &Device) -> Self {
        let pointwise = |from, to| ModulatedConv2d::new(from, to, 1, 1, true, device);
        Self {
            norm1: ChannelNorm::new(channels, device),
            conv1: pointwise(channels, 2 * channels),
            conv2: ModulatedConv2d::new(2 * channels, 2 * channels, 3, 2 * channels, true, device),
            sca: pointwise(channels, channels),
            conv3: pointwise(channels, channels),
            norm2: ChannelNorm::new(channels, device),
            conv4: pointwise(channels, 2 * channels),
            conv5: pointwise(channels, channels),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            gamma: Param::from_tensor(Tensor::zeros([channels], device)),
        }
    }

    /// # Shapes
    /// - input and output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, channels, _, _] = x.dims();
        let scale = |param: &Param<Tensor<1>>| param.val().reshape([1, channels, 1, 1]);
        let h = simple_gate(self.conv2.forward(self.conv1.forward(self.norm1.forward(x.clone()), None), None));
        let attention = self.sca.forward(h.clone().mean_dim(2).mean_dim(3), None); // [B, C, 1, 1]
        let y = x + self.conv3.forward(h * attention, None) * scale(&self.beta);
        let h = simple_gate(self.conv4.forward(self.norm2.forward(y.clone()), None));
        y + self.conv5.forward(h, None) * scale(&self.gamma)
    }
}

/// NAFNet's SimpleGate: the product of the two channel halves, `[B, 2C, H, W] -> [B, C, H, W]`.
fn simple_gate(x: Tensor<4>) -> Tensor<4> {
    let [a, b] = x.chunk(2, 1).try_into().expect("chunk(2) of an even channel count gives two halves");
    a * b
}
