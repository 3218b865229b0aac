//! External control: a task-aware parallel copy of the encoder (ControlNet-like; Zhang et al.,
//! 2023), the third feature-adaptation method of the paper's Table 1.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use ipt_modulation::{ModulatedConv2d, TaskWeights};

use super::{linear, zero_pointwise};
use crate::IptConfig;
use crate::block::Stage;
use crate::config::LEVELS;
use crate::modulation::LayerBuilder;
use crate::sampling::Downsample;

/// The copy embeds the degraded image, adds a learned task embedding, runs its own encoder
/// levels and hands each level's features through a zero-initialised 1x1 conv to the
/// backbone, which adds them after its own encoder level. The zero convs make a fresh model
/// equal to its backbone. (ControlNet copies a trained encoder's weights; trained from scratch
/// together with the backbone, as here, the copy starts from its own random weights.)
#[derive(Module, Debug)]
pub struct ExternalControl {
    /// 3x3 conv `image -> width`.
    pub embedder: ModulatedConv2d,
    /// `tasks -> width`: the task's embedding, added to every pixel after the embedder.
    pub task_embedding: Linear,
    /// Encoder levels 0-3 of the copy.
    pub encoder: Vec<Stage>,
    /// `downsample[i]`: level `i` to `i + 1` of the copy.
    pub downsample: Vec<Downsample>,
    /// `zero_convs[i]`: 1x1 `C_i -> C_i`, zero at start, into the backbone's level `i`.
    pub zero_convs: Vec<ModulatedConv2d>,
}

impl ExternalControl {
    /// A copy of the encoder of `config`, conditioned on `tasks` task weights.
    pub fn new(config: &IptConfig, tasks: usize, device: &Device) -> Self {
        let layers = LayerBuilder::new(device, None);
        Self {
            embedder: ModulatedConv2d::new(config.image_channels, config.width, 3, 1, true, device),
            task_embedding: linear(tasks, config.width, device),
            encoder: (0..LEVELS).map(|level| Stage::new(config, level, config.encoder_blocks[level], &layers)).collect(),
            downsample: (0..LEVELS - 1).map(|level| Downsample::new(config.channels(level), &layers)).collect(),
            zero_convs: (0..LEVELS).map(|level| zero_pointwise(config.channels(level), config.channels(level), device)).collect(),
        }
    }

    /// The control features added to the backbone after each encoder level.
    ///
    /// # Shapes
    /// - image: `[batch, 3, H, W]`
    /// - output: one `[batch, C_i, H / 2^i, W / 2^i]` per level `i`
    pub fn features(&self, image: Tensor<4>, tasks: &TaskWeights) -> Vec<Tensor<4>> {
        let [batch, _, _, _] = image.dims();
        let task = self.task_embedding.forward(tasks.weights().clone());
        let [_, width] = task.dims();
        let mut x = self.embedder.forward(image, None) + task.reshape([batch, width, 1, 1]);
        let mut features = Vec::with_capacity(LEVELS);
        for level in 0..LEVELS {
            x = self.encoder[level].forward(x, None);
            features.push(self.zero_convs[level].forward(x.clone(), None));
            if level < LEVELS - 1 {
                x = self.downsample[level].forward(x, None);
            }
        }
        features
    }
}
