//! Weight replacement (paper Table 9): a separate output layer per task, no shared weight.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use ipt_modulation::{ModulatedConv2d, TaskWeights};

use super::mix_tasks;
use crate::IptConfig;

/// One 3x3 output conv per task in place of the backbone's shared one; a sample's output is
/// the task-weighted sum (zero, so the image passes unchanged, without task weights).
#[derive(Module, Debug)]
pub struct TaskOutputs {
    /// `tasks[t]`: task `t`'s output layer, `width -> image channels`.
    pub tasks: Vec<ModulatedConv2d>,
}

impl TaskOutputs {
    /// Output layers for a backbone of `config`, one per task.
    pub fn new(config: &IptConfig, tasks: usize, device: &Device) -> Self {
        Self { tasks: (0..tasks).map(|_| ModulatedConv2d::new(config.width, config.image_channels, 3, 1, true, device)).collect() }
    }

    /// # Shapes
    /// - x: `[batch, width, H, W]`
    /// - output: `[batch, image channels, H, W]`
    pub fn forward(&self, x: Tensor<4>, tasks: &TaskWeights) -> Tensor<4> {
        let [batch, _, height, width] = x.dims();
        let [channels, ..] = self.tasks[0].weight.dims();
        let device = x.device();
        mix_tasks(tasks, [batch, channels, height, width], &device, |task| self.tasks[task].forward(x.clone(), None))
    }
}
