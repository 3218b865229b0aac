//! Which layers get task biases, for which tasks, at which rank (docs/design.md §1, paper Table 2).

use burn::tensor::Device;
use ipt_modulation::{ModulatedConv2d, RankPolicy, TaskBiased};
use serde::{Deserialize, Serialize};

use crate::{LayerGroup, ModelError, Task};

/// The weight-modulation set-up of a model: its tasks, the rank policy and the targeted groups.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModulationConfig {
    /// The tasks, in the order of the task-weight columns.
    pub tasks: Vec<Task>,
    /// Rank of every task bias.
    #[serde(default)]
    pub rank: RankPolicy,
    /// The layer groups that get task biases.
    #[serde(default = "ModulationConfig::paper_targets")]
    pub targets: Vec<LayerGroup>,
}

impl ModulationConfig {
    /// Biases on the paper's task-sensitive groups (Table 2), with the default constant rank.
    pub fn new(tasks: Vec<Task>) -> Self {
        Self { tasks, rank: RankPolicy::default(), targets: Self::paper_targets() }
    }

    /// qkv, post-attention projection, FFN, down/up-sampling, channel reduction and output; not
    /// the embedder (cosine similarity 0.97) nor the norms (0.99).
    pub fn paper_targets() -> Vec<LayerGroup> {
        vec![
            LayerGroup::Qkv,
            LayerGroup::AttnProj,
            LayerGroup::Ffn,
            LayerGroup::Downsample,
            LayerGroup::Upsample,
            LayerGroup::ChannelReduction,
            LayerGroup::Output,
        ]
    }

    /// Checks that every target is a group of convolutions and that tasks are unique.
    pub fn validate(&self) -> Result<(), ModelError> {
        for group in &self.targets {
            if matches!(group, LayerGroup::Norm | LayerGroup::AttentionScale) {
                return Err(ModelError::invalid("targets", format!("'{}' holds no convolution weight to modulate", group.name())));
            }
        }
        check_unique(&self.tasks)
    }

    /// Index of `task` among the task-weight columns.
    pub fn index_of(&self, task: Task) -> Option<usize> {
        self.tasks.iter().position(|&t| t == task)
    }
}

/// Fails naming the first task listed twice.
pub(crate) fn check_unique(tasks: &[Task]) -> Result<(), ModelError> {
    match tasks.iter().enumerate().find(|(index, task)| tasks[..*index].contains(task)) {
        Some((_, task)) => Err(ModelError::invalid("tasks", format!("'{task}' is listed twice"))),
        None => Ok(()),
    }
}

/// Builds the backbone's convolutions, giving task biases to the targeted groups.
pub(crate) struct LayerBuilder<'a> {
    /// Where parameters are created.
    pub device: &'a Device,
    modulation: Option<&'a ModulationConfig>,
}

impl<'a> LayerBuilder<'a> {
    /// A builder for a plain (`None`) or modulated model.
    pub fn new(device: &'a Device, modulation: Option<&'a ModulationConfig>) -> Self {
        Self { device, modulation }
    }

    /// A stride-1 "same" convolution of layer group `group`.
    pub fn conv(
        &self,
        group: LayerGroup,
        channels_in: usize,
        channels_out: usize,
        kernel: usize,
        groups: usize,
        bias: bool,
    ) -> ModulatedConv2d {
        let conv = ModulatedConv2d::new(channels_in, channels_out, kernel, groups, bias, self.device);
        match self.modulation {
            Some(modulation) if modulation.targets.contains(&group) => conv.with_task_biases(modulation.tasks.len(), &modulation.rank),
            _ => conv,
        }
    }
}
