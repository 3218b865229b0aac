//! The paper's layer groups (Table 2) and per-group parameter counts.

use std::collections::BTreeMap;

use burn_store::ModuleSnapshot;
use serde::{Deserialize, Serialize};

use crate::task_ops::{CONDITIONING, parse_bias_name};
use crate::{IptModel, ModelError, Task};

/// A group of layers that behave alike under task fine-tuning (paper Table 2).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum LayerGroup {
    /// The image embedder (task-insensitive, 0.97).
    Embedder,
    /// LayerNorms (task-insensitive, 0.99).
    Norm,
    /// q/k/v projections (task-sensitive, 0.72).
    Qkv,
    /// Attention temperatures: scalars, not a weight matrix.
    AttentionScale,
    /// Post-attention projections (0.80).
    AttnProj,
    /// FFN projections and depth-wise convs (0.73).
    Ffn,
    /// Down-sampling convs (0.52).
    Downsample,
    /// Up-sampling convs (0.52).
    Upsample,
    /// Skip-fusing 1x1 convs (0.73).
    ChannelReduction,
    /// The output layer (0.68).
    Output,
}

impl LayerGroup {
    /// The group of the parameter at checkpoint key `path`, or `None` for an unknown layer.
    pub fn of_path(path: &str) -> Option<Self> {
        let has = |name: &str| path.split('.').any(|part| part == name || part.starts_with(&format!("{name}_")));
        Some(if has("embedder") {
            LayerGroup::Embedder
        } else if has("norm") {
            LayerGroup::Norm
        } else if has("temperature") {
            LayerGroup::AttentionScale
        } else if has("qkv") {
            LayerGroup::Qkv
        } else if has("attn_proj") {
            LayerGroup::AttnProj
        } else if has("ffn") {
            LayerGroup::Ffn
        } else if has("downsample") {
            LayerGroup::Downsample
        } else if has("upsample") {
            LayerGroup::Upsample
        } else if has("channel_reduction") {
            LayerGroup::ChannelReduction
        } else if has("output") {
            LayerGroup::Output
        } else {
            return None;
        })
    }

    /// Snake-case name, as in reports.
    pub fn name(self) -> &'static str {
        match self {
            LayerGroup::Embedder => "embedder",
            LayerGroup::Norm => "norm",
            LayerGroup::Qkv => "qkv",
            LayerGroup::AttentionScale => "attention_scale",
            LayerGroup::AttnProj => "attn_proj",
            LayerGroup::Ffn => "ffn",
            LayerGroup::Downsample => "downsample",
            LayerGroup::Upsample => "upsample",
            LayerGroup::ChannelReduction => "channel_reduction",
            LayerGroup::Output => "output",
        }
    }
}

/// Parameter counts of a model: general weights per layer group, task biases per layer group
/// (all tasks together) and per task.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ParameterReport {
    /// General (shared) parameters of each group present.
    pub groups: Vec<(LayerGroup, usize)>,
    /// Task-bias parameters of each modulated group, summed over tasks.
    pub bias_groups: Vec<(LayerGroup, usize)>,
    /// Task-bias parameters of each task.
    pub tasks: Vec<(Task, usize)>,
    /// Parameters of the feature-conditioning layers (all tasks together).
    pub conditioning: usize,
}

impl ParameterReport {
    /// Counts `model`'s parameters; an unknown path is an error naming it.
    pub fn of(model: &IptModel) -> Result<Self, ModelError> {
        let mut groups = BTreeMap::new();
        let mut bias_groups = BTreeMap::new();
        let mut tasks = vec![0; model.tasks().len()];
        let mut conditioning = 0;
        for tensor in model.collect(None, None, false) {
            if tensor.name.starts_with(CONDITIONING) {
                conditioning += tensor.shape.num_elements();
                continue;
            }
            let group = LayerGroup::of_path(&tensor.name).ok_or_else(|| ModelError::Unsupported {
                operation: "counting parameters",
                reason: format!("parameter '{}' belongs to no layer group", tensor.name),
            })?;
            let count = tensor.shape.num_elements();
            match parse_bias_name(&tensor.name) {
                Some((_, task, _)) => {
                    *bias_groups.entry(group).or_insert(0) += count;
                    tasks[task] += count;
                }
                None => *groups.entry(group).or_insert(0) += count,
            }
        }
        Ok(Self {
            groups: groups.into_iter().collect(),
            bias_groups: bias_groups.into_iter().collect(),
            tasks: model.modulation().map_or(&[][..], |modulation| &modulation.tasks).iter().copied().zip(tasks).collect(),
            conditioning,
        })
    }

    /// Parameters of the shared backbone.
    pub fn backbone(&self) -> usize {
        self.groups.iter().map(|(_, count)| count).sum()
    }

    /// `count` as a percentage of the backbone's parameters.
    pub fn percent_of_backbone(&self, count: usize) -> f64 {
        100.0 * count as f64 / self.backbone() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModulationConfig, Preset};
    use burn::module::Module;
    use burn::tensor::Device;

    #[test]
    fn paths_map_to_the_paper_groups() {
        let cases = [
            ("embedder.weight", LayerGroup::Embedder),
            ("encoder.0.blocks.0.norm_focal.weight", LayerGroup::Norm),
            ("encoder.0.blocks.0.focal.qkv_dwconv.weight", LayerGroup::Qkv),
            ("encoder.0.blocks.0.focal.temperature", LayerGroup::AttentionScale),
            ("decoder.1.blocks.0.grid.attn_proj.weight", LayerGroup::AttnProj),
            ("refinement.blocks.0.ffn.dwconv.bias", LayerGroup::Ffn),
            ("downsample.2.conv.weight", LayerGroup::Downsample),
            ("upsample.0.conv.weight", LayerGroup::Upsample),
            ("channel_reduction.1.weight", LayerGroup::ChannelReduction),
            ("output.bias", LayerGroup::Output),
        ];
        for (path, group) in cases {
            assert_eq!(LayerGroup::of_path(path), Some(group), "{path}");
        }
        assert_eq!(LayerGroup::of_path("mystery.weight"), None);
    }

    #[test]
    fn every_parameter_has_a_group_and_counts_add_up() {
        let model = Preset::Tiny.config().init(&Device::flex());
        let report = ParameterReport::of(&model).unwrap();
        assert_eq!(report.backbone(), model.num_params());
        assert_eq!(report.groups.len(), 10, "{:?}", report.groups);
        assert!(report.tasks.is_empty() && report.bias_groups.is_empty());
    }

    #[test]
    fn task_biases_are_counted_per_task_and_only_on_targets() {
        let config = Preset::Tiny.config();
        let plain = config.init(&Device::flex()).num_params();
        let modulation = ModulationConfig::new(vec![Task::Denoise, Task::Deblur]);
        let model = config.init_modulated(&modulation, &Device::flex());
        let report = ParameterReport::of(&model).unwrap();
        assert_eq!(report.backbone(), plain);
        let (denoise, deblur) = (report.tasks[0].1, report.tasks[1].1);
        assert_eq!(denoise, deblur);
        assert_eq!(report.backbone() + denoise + deblur, model.num_params());
        let biased: Vec<LayerGroup> = report.bias_groups.iter().map(|(group, _)| *group).collect();
        let mut expected = ModulationConfig::paper_targets();
        expected.sort();
        assert_eq!(biased, expected);
    }
}
