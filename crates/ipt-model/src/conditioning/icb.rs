//! InstructIR's instruction-conditioned blocks (Conde et al., 2024).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use ipt_modulation::TaskWeights;

use super::linear;
use super::naf::NafBlock;
use crate::IptConfig;
use crate::config::LEVELS;

/// One ICB after each encoder level above the bottleneck and after each decoder level, all fed
/// the same learned task embedding `t = Linear(task weights)` (InstructIR feeds a projected
/// sentence embedding; soft task weights from an instruction play that part here).
#[derive(Module, Debug)]
pub struct InstructIrIcb {
    /// `tasks -> embedding`: the task (or instruction) embedding `t`.
    pub task_embedding: Linear,
    /// `encoder[i]` after encoder level `i` (levels 0-2).
    pub encoder: Vec<Icb>,
    /// `decoder[i]` after decoder level `i`.
    pub decoder: Vec<Icb>,
}

impl InstructIrIcb {
    /// ICBs for a backbone of `config`, conditioned on `tasks` task weights.
    pub fn new(config: &IptConfig, tasks: usize, embedding: usize, device: &Device) -> Self {
        let blocks = || (0..LEVELS - 1).map(|level| Icb::new(config.channels(level), embedding, device)).collect();
        Self { task_embedding: linear(tasks, embedding, device), encoder: blocks(), decoder: blocks() }
    }

    /// The task embedding `[batch, embedding]` of the pass's task weights.
    pub fn embed(&self, tasks: &TaskWeights) -> Tensor<2> {
        self.task_embedding.forward(tasks.weights().clone())
    }
}

/// `NafBlock((x * gamma + beta) * sigmoid(Linear(t))) + x`.
#[derive(Module, Debug)]
pub struct Icb {
    /// `embedding -> C`: the per-channel gates.
    pub gate: Linear,
    /// Feature scale, `[C]`, starts at 1.
    pub gamma: Param<Tensor<1>>,
    /// Feature shift, `[C]`, starts at 0.
    pub beta: Param<Tensor<1>>,
    /// The block after gating.
    pub block: NafBlock,
}

impl Icb {
    /// An ICB over `channels` channels reading a `embedding`-wide task embedding.
    pub fn new(channels: usize, embedding: usize, device: &Device) -> Self {
        Self {
            gate: linear(embedding, channels, device),
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            block: NafBlock::new(channels, device),
        }
    }

    /// # Shapes
    /// - x and output: `[batch, C, H, W]`
    /// - embedding: `[batch, embedding]`
    pub fn forward(&self, x: Tensor<4>, embedding: &Tensor<2>) -> Tensor<4> {
        let [batch, channels, _, _] = x.dims();
        let gates = sigmoid(self.gate.forward(embedding.clone())).reshape([batch, channels, 1, 1]);
        let affine = x.clone() * self.gamma.val().reshape([1, channels, 1, 1]) + self.beta.val().reshape([1, channels, 1, 1]);
        self.block.forward(affine * gates) + x
    }
}
