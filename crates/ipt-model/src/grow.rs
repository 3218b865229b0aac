//! Deepening a trained model: more blocks per stage, each starting as the identity.
//!
//! A run that continues from trained weights can add capacity where it is cheap (blocks at the
//! coarse levels cost as many operations as one at full resolution but see far more of the
//! image, which motion deblurring needs; NAFNet's GoPro model puts most of its blocks there)
//! without losing what was learnt: every new block's three output projections start at zero,
//! so its residual branches add nothing and the grown model computes exactly what the trained
//! one did until training moves them (Net2Net's function-preserving deepening).
//!
//! Measured once, on the deblurring probe (ipt-data's crate docs): four bottleneck blocks grown
//! this way were barely used in 1,200 steps at 2e-4 and changed nothing; the tool is sound, the
//! gain is not yet shown.

use burn::module::Param;
use burn::tensor::Tensor;
use burn_store::ModuleSnapshot;
use ipt_modulation::ModulatedConv2d;

use crate::ModelError;
use crate::block::{IptBlock, Stage};
use crate::config::IptConfig;
use crate::model::IptModel;

impl IptConfig {
    /// Whether `deeper` is this architecture with as many or more blocks in every stage and
    /// nothing else changed, so that [`IptModel::grown_to`] can turn a model of this config
    /// into one of `deeper`'s.
    pub fn grows_into(&self, deeper: &IptConfig) -> bool {
        let same_otherwise = IptConfig {
            encoder_blocks: deeper.encoder_blocks,
            decoder_blocks: deeper.decoder_blocks,
            refinement_blocks: deeper.refinement_blocks,
            ..self.clone()
        } == *deeper;
        let at_least = |own: &[usize], other: &[usize]| own.iter().zip(other).all(|(own, other)| own <= other);
        same_otherwise
            && at_least(&self.encoder_blocks, &deeper.encoder_blocks)
            && at_least(&self.decoder_blocks, &deeper.decoder_blocks)
            && self.refinement_blocks <= deeper.refinement_blocks
    }
}

impl IptModel {
    /// The model with `deeper`'s architecture (see [`IptConfig::grows_into`]) holding this
    /// model's tensors bit for bit, its new blocks appended to their stages as identities (zero
    /// output projections and zero task biases; the other layers of a new block start random,
    /// from the device's generator, so that they learn once the projections move). Task biases
    /// are kept; feature conditioning, whose layers may be sized per block, is refused.
    pub fn grown_to(&self, deeper: &IptConfig) -> Result<IptModel, ModelError> {
        const OPERATION: &str = "growing the model";
        if self.feature_conditioning().is_some() {
            let reason = "only plain and task-biased models grow; feature conditioning may hold per-block layers".into();
            return Err(ModelError::Unsupported { operation: OPERATION, reason });
        }
        if !self.config().grows_into(deeper) {
            let reason = format!(
                "the new architecture must equal this one except for as many or more blocks per stage (this one: encoder {:?}, \
                 decoder {:?}, refinement {}; asked: encoder {:?}, decoder {:?}, refinement {})",
                self.config().encoder_blocks,
                self.config().decoder_blocks,
                self.config().refinement_blocks,
                deeper.encoder_blocks,
                deeper.decoder_blocks,
                deeper.refinement_blocks
            );
            return Err(ModelError::Unsupported { operation: OPERATION, reason });
        }
        let mut grown = deeper.init_with(self.modulation(), None, &self.device());
        let result = grown.apply(self.collect(None, None, false), None, None, false);
        let new_blocks = self.new_block_prefixes(deeper);
        let only_new_blocks_missing = result.missing.iter().all(|(name, _)| new_blocks.iter().any(|prefix| name.starts_with(prefix)));
        assert!(
            result.errors.is_empty() && result.unused.is_empty() && only_new_blocks_missing,
            "growing kept every existing tensor: {result}"
        );
        let kept = self.stage_lengths();
        let stages = grown.encoder.iter_mut().chain(grown.decoder.iter_mut()).chain(std::iter::once(&mut grown.refinement));
        for (stage, kept) in stages.zip(kept) {
            start_new_blocks_as_identity(stage, kept);
        }
        Ok(grown)
    }

    /// Block counts of the encoder stages, the decoder stages and the refinement stage, in
    /// that order.
    fn stage_lengths(&self) -> Vec<usize> {
        let stages = self.encoder.iter().chain(&self.decoder).chain(std::iter::once(&self.refinement));
        stages.map(|stage| stage.blocks.len()).collect()
    }

    /// Checkpoint-key prefixes of the blocks `deeper` has and this model lacks.
    fn new_block_prefixes(&self, deeper: &IptConfig) -> Vec<String> {
        let config = self.config();
        let mut prefixes = Vec::new();
        let mut add = |stage: String, from: usize, to: usize| prefixes.extend((from..to).map(|block| format!("{stage}.blocks.{block}.")));
        for (level, (own, other)) in config.encoder_blocks.iter().zip(deeper.encoder_blocks).enumerate() {
            add(format!("encoder.{level}"), *own, other);
        }
        for (level, (own, other)) in config.decoder_blocks.iter().zip(deeper.decoder_blocks).enumerate() {
            add(format!("decoder.{level}"), *own, other);
        }
        add("refinement".into(), config.refinement_blocks, deeper.refinement_blocks);
        prefixes
    }
}

/// Zeroes the output projections of the blocks of `stage` from index `kept` on.
fn start_new_blocks_as_identity(stage: &mut Stage, kept: usize) {
    for block in stage.blocks.iter_mut().skip(kept) {
        let IptBlock { focal, grid, ffn, .. } = block;
        for projection in [&mut focal.attn_proj, &mut grid.attn_proj, &mut ffn.project_out] {
            zero(projection);
        }
    }
}

/// Sets a convolution's general weight and output bias to zero (its task biases already start
/// at zero: `B1 = 0`).
fn zero(conv: &mut ModulatedConv2d) {
    conv.weight = zeroed(conv.weight.clone());
    conv.bias = conv.bias.take().map(zeroed);
}

fn zeroed<const D: usize>(param: Param<Tensor<D>>) -> Param<Tensor<D>> {
    param.map(|tensor| tensor.zeros_like())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{micro_config, modulated_micro_model};
    use crate::{ModulationConfig, Task, TaskWeights};
    use burn::module::Module;
    use burn::tensor::{Device, Distribution};

    fn deeper(config: &IptConfig) -> IptConfig {
        let mut deeper = config.clone();
        deeper.encoder_blocks[3] += 2;
        deeper.decoder_blocks[0] += 1;
        deeper.refinement_blocks += 1;
        deeper
    }

    #[test]
    fn a_grown_model_computes_what_the_trained_one_did() {
        let device = Device::default();
        let model = modulated_micro_model(&device);
        let grown = model.grown_to(&deeper(model.config())).expect("grows");
        assert_eq!(grown.config(), &deeper(model.config()));
        assert_eq!(grown.encoder[3].blocks.len(), model.encoder[3].blocks.len() + 2);
        assert!(grown.num_params() > model.num_params(), "the new blocks add parameters");
        let input = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
        let tasks = TaskWeights::one_hot(&[0, 2], 3, &device);
        let (before, after) = (model.forward(input.clone(), Some(&tasks)), grown.forward(input, Some(&tasks)));
        let difference: f32 = (before - after).abs().max().into_scalar();
        assert_eq!(difference, 0.0, "identity blocks change nothing");
    }

    #[test]
    fn growing_keeps_every_trained_tensor() {
        let device = Device::default();
        let model = modulated_micro_model(&device);
        let grown = model.grown_to(&deeper(model.config())).expect("grows");
        let before = model.encoder[3].blocks[0].focal.qkv.task_biases[1].b1.val();
        let after = grown.encoder[3].blocks[0].focal.qkv.task_biases[1].b1.val();
        let difference: f32 = (before - after).abs().max().into_scalar();
        assert_eq!(difference, 0.0);
        let new_projection: f32 = grown.encoder[3].blocks[2].ffn.project_out.weight.val().abs().max().into_scalar();
        assert_eq!(new_projection, 0.0);
        let new_qkv: f32 = grown.encoder[3].blocks[2].focal.qkv.weight.val().abs().max().into_scalar();
        assert!(new_qkv > 0.0, "the rest of a new block starts random, so it can learn");
    }

    #[test]
    fn only_deeper_versions_of_the_same_architecture_grow() {
        let device = Device::default();
        let model = micro_config().init_modulated(&ModulationConfig::new(vec![Task::Denoise]), &device);
        let mut shallower = micro_config();
        shallower.refinement_blocks = 0;
        let mut wider = micro_config();
        wider.width *= 2;
        for (config, why) in [(shallower, "fewer blocks"), (wider, "another width")] {
            assert!(!micro_config().grows_into(&config), "{why}");
            let error = model.grown_to(&config).expect_err(why).to_string();
            assert!(error.contains("as many or more blocks per stage"), "{why}: {error}");
        }
        assert!(micro_config().grows_into(&micro_config()), "the same architecture grows trivially");
    }
}
