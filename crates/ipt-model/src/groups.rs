//! The paper's layer groups (Table 2) and per-group parameter counts.

use burn::module::Module;
use burn_store::ModuleSnapshot;
use serde::Serialize;

/// A group of layers that behave alike under task fine-tuning (paper Table 2).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// Parameter count of each group present in `module`, in group order; unknown paths are an error.
pub fn parameters_per_group<M: Module + ModuleSnapshot>(module: &M) -> Result<Vec<(LayerGroup, usize)>, String> {
    let mut counts = std::collections::BTreeMap::new();
    for tensor in module.collect(None, None, false) {
        let group = LayerGroup::of_path(&tensor.name)
            .ok_or_else(|| format!("parameter '{}' belongs to no layer group", tensor.name))?;
        *counts.entry(group).or_insert(0) += tensor.shape.num_elements();
    }
    Ok(counts.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preset;
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
        let groups = parameters_per_group(&model).unwrap();
        let total: usize = groups.iter().map(|(_, count)| count).sum();
        assert_eq!(total, model.num_params());
        assert_eq!(groups.len(), 10, "{groups:?}");
    }
}
