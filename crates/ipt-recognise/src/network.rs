//! The recogniser network: two small convolutional trunks, one over the shrunk whole photo and
//! one shared by the full-resolution crops, pooled and joined by a two-layer head into one
//! logit per class ([`crate::Class`]): each of the six degradations and "clean", scored
//! independently (a photo may have two degradations at once).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::Class;
use crate::views::LOCAL_CROPS;

/// Channels of the trunks' three convolutions.
const CHANNELS: [usize; 3] = [24, 48, 96];

/// Hidden units of the head.
const HIDDEN: usize = 128;

/// Three 3x3 convolutions with ReLU, each halving the resolution.
#[derive(Module, Debug)]
pub struct Trunk {
    /// The convolutions, in order.
    pub convs: Vec<Conv2d>,
}

impl Trunk {
    fn new(device: &Device) -> Self {
        let mut inputs = 3;
        let convs = CHANNELS
            .iter()
            .map(|&outputs| {
                let conv =
                    Conv2dConfig::new([inputs, outputs], [3, 3]).with_stride([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
                inputs = outputs;
                conv.init(device)
            })
            .collect();
        Self { convs }
    }

    /// Mean and maximum of the last feature maps: `[batch, 3, h, w]` -> `[batch, 2 x 64]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let features = self.convs.iter().fold(x, |x, conv| relu(conv.forward(x)));
        let [batch, channels, height, width] = features.dims();
        let flat = features.reshape([batch, channels, height * width]);
        let mean = flat.clone().mean_dim(2).reshape([batch, channels]);
        let max = flat.max_dim(2).reshape([batch, channels]);
        Tensor::cat(vec![mean, max], 1)
    }
}

/// The whole network.
#[derive(Module, Debug)]
pub struct RecogniserNet {
    /// Over the shrunk whole photo.
    pub global: Trunk,
    /// Over each full-resolution crop.
    pub local: Trunk,
    /// Joined features to hidden units.
    pub hidden: Linear,
    /// Hidden units to one logit per class.
    pub output: Linear,
}

impl RecogniserNet {
    /// A randomly initialised network.
    pub fn new(device: &Device) -> Self {
        let pooled = 2 * CHANNELS[2];
        Self {
            global: Trunk::new(device),
            local: Trunk::new(device),
            hidden: LinearConfig::new(3 * pooled, HIDDEN).init(device),
            output: LinearConfig::new(HIDDEN, Class::ALL.len()).init(device),
        }
    }

    /// Logits `[batch, classes]` of `global` `[batch, 3, G, G]` and `local`
    /// `[batch x LOCAL_CROPS, 3, L, L]` views (each photo's crops together).
    pub fn forward(&self, global: Tensor<4>, local: Tensor<4>) -> Tensor<2> {
        let batch = global.dims()[0];
        let whole = self.global.forward(global);
        let crops = self.local.forward(local);
        let width = crops.dims()[1];
        let crops = crops.reshape([batch, LOCAL_CROPS, width]);
        // Mean over the crops finds what is everywhere (noise), the maximum what is somewhere (a streak).
        let mean = crops.clone().mean_dim(1).reshape([batch, width]);
        let max = crops.max_dim(1).reshape([batch, width]);
        let joined = Tensor::cat(vec![whole, mean, max], 1);
        self.output.forward(relu(self.hidden.forward(joined)))
    }
}
