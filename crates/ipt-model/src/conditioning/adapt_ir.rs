//! AdaptIR: parameter-efficient adapters beside the FFNs of a frozen backbone (Guo et al., 2024).

use burn::module::{Module, Param};
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use ipt_modulation::{ModulatedConv2d, TaskWeights};

use super::{StagePlace, dft, mix_tasks, zero_pointwise};
use crate::IptConfig;
use crate::config::LEVELS;

/// Channels per group of the local branch's grouped convolution.
const GROUP_WIDTH: usize = 4;

/// Amplitudes are `sqrt(re^2 + im^2 + this)`: finite gradients at empty frequencies.
const AMPLITUDE_FLOOR: f64 = 1e-8;

/// One adapter per task beside every block's FFN, mirroring the backbone's stages; a sample's
/// adapter output is the task-weighted sum. AdaptIR adapts a trained backbone to one task; with
/// one adapter set per task it becomes the all-in-one baseline (train with the backbone frozen:
/// `trainable = "conditioning_only"`).
#[derive(Module, Debug)]
pub struct AdaptIr {
    /// `encoder[level][block]`.
    pub encoder: Vec<Vec<TaskAdapters>>,
    /// `decoder[level][block]`.
    pub decoder: Vec<Vec<TaskAdapters>>,
    /// `refinement[block]`.
    pub refinement: Vec<TaskAdapters>,
}

impl AdaptIr {
    /// Adapters for every block of `config`, one per task.
    pub fn new(config: &IptConfig, tasks: usize, reduction: usize, rank: usize, device: &Device) -> Self {
        let stage = |level: usize, blocks: usize| -> Vec<TaskAdapters> {
            (0..blocks).map(|_| TaskAdapters::new(config.channels(level), tasks, reduction, rank, device)).collect()
        };
        Self {
            encoder: (0..LEVELS).map(|level| stage(level, config.encoder_blocks[level])).collect(),
            decoder: (0..LEVELS - 1).map(|level| stage(level, config.decoder_blocks[level])).collect(),
            refinement: stage(0, config.refinement_blocks),
        }
    }

    /// The adapters of the stage at `place`, one per block.
    pub(crate) fn stage(&self, place: StagePlace) -> &[TaskAdapters] {
        match place {
            StagePlace::Encoder(level) => &self.encoder[level],
            StagePlace::Decoder(level) => &self.decoder[level],
            StagePlace::Refinement => &self.refinement,
        }
    }
}

/// The adapters of one block, one per task.
#[derive(Module, Debug)]
pub struct TaskAdapters {
    /// `tasks[t]` adapts task `t`.
    pub tasks: Vec<Adapter>,
}

impl TaskAdapters {
    fn new(channels: usize, tasks: usize, reduction: usize, rank: usize, device: &Device) -> Self {
        Self { tasks: (0..tasks).map(|_| Adapter::new(channels, reduction, rank, device)).collect() }
    }

    /// `sum_t w_t * adapter_t(x)` over the tasks active in the batch.
    pub fn forward(&self, x: Tensor<4>, tasks: &TaskWeights) -> Tensor<4> {
        let device = x.device();
        mix_tasks(tasks, x.dims(), &device, |task| self.tasks[task].forward(x.clone()))
    }
}

/// Down-projection to `d` channels; a local branch (grouped 3x3 conv whose weight is the
/// low-rank product `A B`), a global branch (2-D DFT, 1x1 mixing of amplitudes and of phases
/// across channels, inverse DFT) and a channel branch (pooled MLP scores); the local and global
/// branches gate each other (`l * sigmoid(g) + g * sigmoid(l)`), the channel scores scale the
/// result, and a zero-initialised 1x1 conv projects back, so a fresh adapter adds nothing.
#[derive(Module, Debug)]
pub struct Adapter {
    /// 1x1 `C -> d`.
    pub down: ModulatedConv2d,
    /// Left factor of the local weight, `[d, rank]`.
    pub local_a: Param<Tensor<2>>,
    /// Right factor of the local weight, `[rank, group width * 9]`.
    pub local_b: Param<Tensor<2>>,
    /// 1x1 `d -> d` on the amplitude spectrum.
    pub amplitude: ModulatedConv2d,
    /// 1x1 `d -> d` (no bias: keeps the spectrum's symmetry) on the phase spectrum.
    pub phase: ModulatedConv2d,
    /// 1x1 `d -> d`, then GELU: first layer of the channel scores.
    pub channel_hidden: ModulatedConv2d,
    /// 1x1 `d -> d`, then sigmoid: the channel scores.
    pub channel_scores: ModulatedConv2d,
    /// 1x1 `d -> C`, zero at start.
    pub up: ModulatedConv2d,
}

impl Adapter {
    fn new(channels: usize, reduction: usize, rank: usize, device: &Device) -> Self {
        let hidden = (channels / reduction).max(GROUP_WIDTH).next_multiple_of(GROUP_WIDTH);
        let pointwise = |bias| ModulatedConv2d::new(hidden, hidden, 1, 1, bias, device);
        let bound = (1.0 / (GROUP_WIDTH * 9) as f64).sqrt();
        Self {
            down: ModulatedConv2d::new(channels, hidden, 1, 1, true, device),
            local_a: Param::from_tensor(Tensor::random([hidden, rank], Distribution::Uniform(-1.0, 1.0), device)),
            local_b: Param::from_tensor(Tensor::random([rank, GROUP_WIDTH * 9], Distribution::Uniform(-bound, bound), device)),
            amplitude: pointwise(true),
            phase: pointwise(false),
            channel_hidden: pointwise(true),
            channel_scores: pointwise(true),
            up: zero_pointwise(hidden, channels, device),
        }
    }

    /// # Shapes
    /// - input and output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.down.forward(x, None); // [B, d, H, W]
        let local = self.local(h.clone());
        let global = self.global(h.clone());
        let pooled = h.mean_dim(2).mean_dim(3); // [B, d, 1, 1]
        let scores = sigmoid(self.channel_scores.forward(gelu(self.channel_hidden.forward(pooled, None)), None));
        let gated = local.clone() * sigmoid(global.clone()) + global * sigmoid(local);
        self.up.forward(gated * scores, None)
    }

    fn local(&self, h: Tensor<4>) -> Tensor<4> {
        let [_, hidden, _, _] = h.dims();
        let weight = self.local_a.val().matmul(self.local_b.val()).reshape([hidden, GROUP_WIDTH, 3, 3]);
        conv2d(h, weight, None, ConvOptions::new([1, 1], [1, 1], [1, 1], hidden / GROUP_WIDTH))
    }

    fn global(&self, h: Tensor<4>) -> Tensor<4> {
        let (real, imaginary) = dft::forward(h);
        let amplitude = (real.clone().square() + imaginary.clone().square()).add_scalar(AMPLITUDE_FLOOR).sqrt();
        let phase = imaginary.atan2(real);
        let amplitude = self.amplitude.forward(amplitude, None);
        let phase = self.phase.forward(phase, None);
        dft::inverse(amplitude.clone() * phase.clone().cos(), amplitude * phase.sin())
    }
}
