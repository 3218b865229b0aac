//! The U-shaped backbone: embedder, 4-level encoder/decoder, refinement, output, global residual.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use ipt_modulation::{ModulatedConv2d, TaskWeights};

use crate::block::Stage;
use crate::conditioning::{Conditioner, FeatureConditioning, Hooks, StagePlace};
use crate::config::{IptConfig, LEVELS};
use crate::modulation::{LayerBuilder, ModulationConfig};
use crate::padding::{crop, reflect_pad};
use crate::sampling::{Downsample, Upsample};
use crate::{LayerGroup, ModelError, Task};

/// IPT-V2-style image processing transformer (see the crate docs for the design).
///
/// Field names are the checkpoint keys and the paper's layer groups, so weight modulation and
/// parameter reports can target them by path. With a [`ModulationConfig`], the targeted
/// convolutions carry one low-rank bias per task; with a [`FeatureConditioning`], one of the
/// peers' feature-adaptation methods conditions it (see [`crate::conditioning`]); with neither,
/// the model is the plain backbone.
#[derive(Module, Debug)]
pub struct IptModel {
    /// 3x3 conv `image -> width` (paper group: image embedder; never task-biased).
    pub embedder: ModulatedConv2d,
    /// Encoder stages, level 0 (full resolution) to level 3 (the bottleneck).
    pub encoder: Vec<Stage>,
    /// `downsample[i]` goes from level `i` to level `i + 1`.
    pub downsample: Vec<Downsample>,
    /// `upsample[i]` goes from level `i + 1` back to level `i`.
    pub upsample: Vec<Upsample>,
    /// `channel_reduction[i]`: 1x1 conv fusing the skip concatenation at level `i` (`2C -> C`).
    pub channel_reduction: Vec<ModulatedConv2d>,
    /// Decoder stages, `decoder[i]` at level `i`.
    pub decoder: Vec<Stage>,
    /// Full-resolution blocks after the decoder.
    pub refinement: Stage,
    /// 3x3 conv `width -> image` predicting the residual (paper group: output layer); `None`
    /// when the conditioning replaces it with one output layer per task.
    pub output: Option<ModulatedConv2d>,
    /// The feature-adaptation layers, if any (checkpoint keys `conditioning.<Method>.`).
    pub conditioning: Option<Conditioner>,
    #[module(skip)]
    config: IptConfig,
    #[module(skip)]
    modulation: Option<ModulationConfig>,
    #[module(skip)]
    feature: Option<FeatureConditioning>,
}

impl IptConfig {
    /// Builds a randomly initialised plain backbone; panics if [`IptConfig::validate`] fails.
    pub fn init(&self, device: &Device) -> IptModel {
        self.build(None, None, device)
    }

    /// Builds a randomly initialised model whose targeted layers carry zero task biases (so it
    /// starts equal to its backbone); panics if either config is invalid.
    pub fn init_modulated(&self, modulation: &ModulationConfig, device: &Device) -> IptModel {
        if let Err(problem) = modulation.validate() {
            panic!("invalid ModulationConfig: {problem}");
        }
        self.build(Some(modulation), None, device)
    }

    /// Builds a randomly initialised backbone with a feature-adaptation method; panics if either
    /// config is invalid.
    pub fn init_conditioned(&self, conditioning: &FeatureConditioning, device: &Device) -> IptModel {
        if let Err(problem) = conditioning.validate() {
            panic!("invalid FeatureConditioning: {problem}");
        }
        self.build(None, Some(conditioning), device)
    }

    /// The model a weight file's set-up describes: plain, modulated or conditioned.
    pub(crate) fn init_with(
        &self,
        modulation: Option<&ModulationConfig>,
        feature: Option<&FeatureConditioning>,
        device: &Device,
    ) -> IptModel {
        match (modulation, feature) {
            (Some(modulation), _) => self.init_modulated(modulation, device),
            (None, Some(feature)) => self.init_conditioned(feature, device),
            (None, None) => self.init(device),
        }
    }

    fn build(&self, modulation: Option<&ModulationConfig>, feature: Option<&FeatureConditioning>, device: &Device) -> IptModel {
        if let Err(problem) = self.validate() {
            panic!("invalid IptConfig: {problem}");
        }
        let layers = LayerBuilder::new(device, modulation);
        let encoder = (0..LEVELS).map(|level| Stage::new(self, level, self.encoder_blocks[level], &layers)).collect();
        let decoder = (0..LEVELS - 1).map(|level| Stage::new(self, level, self.decoder_blocks[level], &layers)).collect();
        let downsample = (0..LEVELS - 1).map(|level| Downsample::new(self.channels(level), &layers)).collect();
        let upsample = (0..LEVELS - 1).map(|level| Upsample::new(self.channels(level + 1), &layers)).collect();
        let channel_reduction = (0..LEVELS - 1)
            .map(|level| {
                let channels = self.channels(level);
                layers.conv(LayerGroup::ChannelReduction, 2 * channels, channels, 1, 1, false)
            })
            .collect();
        IptModel {
            embedder: layers.conv(LayerGroup::Embedder, self.image_channels, self.width, 3, 1, true),
            encoder,
            downsample,
            upsample,
            channel_reduction,
            decoder,
            refinement: Stage::new(self, 0, self.refinement_blocks, &layers),
            output: (!feature.is_some_and(FeatureConditioning::replaces_output))
                .then(|| layers.conv(LayerGroup::Output, self.width, self.image_channels, 3, 1, true)),
            conditioning: feature.map(|feature| Conditioner::new(self, feature, device)),
            config: self.clone(),
            modulation: modulation.cloned(),
            feature: feature.cloned(),
        }
    }
}

impl IptModel {
    /// Input sides must be multiples of this for [`IptModel::forward`].
    pub fn size_multiple(&self) -> usize {
        self.config.size_multiple()
    }

    /// The architecture.
    pub fn config(&self) -> &IptConfig {
        &self.config
    }

    /// The modulation set-up, or `None` for a plain backbone.
    pub fn modulation(&self) -> Option<&ModulationConfig> {
        self.modulation.as_ref()
    }

    /// The feature-adaptation set-up, or `None`.
    pub fn feature_conditioning(&self) -> Option<&FeatureConditioning> {
        self.feature.as_ref()
    }

    /// The tasks the model is conditioned on (by task biases or feature adaptation), in
    /// task-weight column order; empty for a plain backbone.
    pub fn tasks(&self) -> &[Task] {
        match (&self.modulation, &self.feature) {
            (Some(modulation), _) => &modulation.tasks,
            (None, Some(feature)) => &feature.tasks,
            (None, None) => &[],
        }
    }

    /// One-hot task weights selecting `tasks[b]` for sample `b`, or why a task is not one of
    /// the model's.
    pub fn task_weights(&self, tasks: &[Task], device: &Device) -> Result<TaskWeights, ModelError> {
        let own = self.tasks();
        if own.is_empty() {
            return Err(ModelError::Unsupported { operation: "task weights", reason: "this model has no task conditioning".into() });
        }
        let indices = tasks
            .iter()
            .map(|&task| own.iter().position(|&t| t == task).ok_or_else(|| self.not_conditioned("task weights", task)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TaskWeights::one_hot(&indices, own.len(), device))
    }

    /// Restores images of any size: reflect-pads to [`IptModel::size_multiple`], runs
    /// [`IptModel::forward`] and crops back.
    ///
    /// # Shapes
    /// - input: `[batch, 3, H, W]`, values in `[0, 1]`
    /// - tasks: `[batch, tasks]` task weights, or `None` for the general weights
    /// - output: `[batch, 3, H, W]`
    pub fn restore(&self, image: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        let [_, _, height, width] = image.dims();
        let padded = reflect_pad(image, self.size_multiple());
        crop(self.forward(padded, tasks), height, width)
    }

    /// The network on inputs whose sides are multiples of [`IptModel::size_multiple`].
    ///
    /// # Shapes
    /// - input: `[batch, 3, H, W]`
    /// - output: `[batch, 3, H, W]`
    pub fn forward(&self, image: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        let [_, _, height, width] = image.dims();
        let multiple = self.size_multiple();
        assert!(
            height % multiple == 0 && width % multiple == 0,
            "forward needs sides that are multiples of {multiple} (got {height}x{width}); use restore"
        );
        let hooks = Hooks::new(self.conditioning.as_ref(), &image, tasks, self.tasks().len());
        let stage = |stage: &Stage, place: StagePlace, x: Tensor<4>| match hooks.ffn_side(place) {
            Some(side) => stage.forward_with(x, tasks, Some(&side)),
            None => stage.forward(x, tasks),
        };
        let mut x = self.embedder.forward(image.clone(), tasks); // [B, C, H, W]
        let mut skips = Vec::with_capacity(LEVELS - 1);
        for level in 0..LEVELS {
            x = stage(&self.encoder[level], StagePlace::Encoder(level), x);
            x = hooks.after_encoder(level, x);
            if level < LEVELS - 1 {
                skips.push(x.clone());
                x = self.downsample[level].forward(x, tasks); // [B, 2C, H/2, W/2]
            }
        }
        for level in (0..LEVELS - 1).rev() {
            let skip = skips.pop().expect("one skip per encoder level");
            x = hooks.before_upsample(level + 1, x);
            x = self.upsample[level].forward(x, tasks); // [B, C_level, H_level, W_level]
            x = self.channel_reduction[level].forward(Tensor::cat(vec![x, skip], 1), tasks);
            x = stage(&self.decoder[level], StagePlace::Decoder(level), x);
            x = hooks.after_decoder(level, x);
        }
        let x = stage(&self.refinement, StagePlace::Refinement, x);
        let residual = match (&self.output, hooks.output(&x)) {
            (_, Some(replaced)) => replaced,
            (Some(output), None) => output.forward(x, tasks),
            (None, None) => unreachable!("a model without a shared output layer has per-task ones"),
        };
        residual + image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;
    use crate::test_support::micro_config;
    use burn::tensor::Distribution;

    #[test]
    fn odd_sizes_keep_their_shape() {
        let device = Device::flex();
        let model = micro_config().init(&device);
        let image = Tensor::<4>::random([2, 3, 37, 53], Distribution::Default, &device);
        assert_eq!(model.restore(image, None).dims(), [2, 3, 37, 53]);
    }

    #[test]
    fn every_preset_keeps_odd_shapes() {
        let device = Device::flex();
        for preset in Preset::ALL {
            let model = preset.config().init(&device);
            let image = Tensor::<4>::random([1, 3, 37, 53], Distribution::Default, &device);
            assert_eq!(model.restore(image, None).dims(), [1, 3, 37, 53], "{preset:?}");
        }
    }

    #[test]
    fn preset_sizes_match_their_promise() {
        let device = Device::flex();
        let count = |preset: Preset| preset.config().init(&device).num_params();
        let (tiny, small, base) = (count(Preset::Tiny), count(Preset::Small), count(Preset::Base));
        assert!((500_000..=1_500_000).contains(&tiny), "tiny has {tiny}");
        assert!((4_000_000..=8_000_000).contains(&small), "small has {small}");
        assert!((20_000_000..=30_000_000).contains(&base), "base has {base}");
    }

    #[test]
    fn parameters_counted_from_the_config_equal_the_built_model() {
        let device = Device::flex();
        let odd = IptConfig { ffn_expansion: 2.66, encoder_blocks: [2, 0, 1, 3], refinement_blocks: 2, ..micro_config() };
        for config in [Preset::Tiny.config(), Preset::Small.config(), micro_config(), odd] {
            assert_eq!(config.backbone_parameters(), config.init(&device).num_params() as u128, "{config:?}");
        }
    }

    #[test]
    fn output_depends_on_the_whole_image() {
        // Grid attention mixes distant pixels: changing one corner changes the opposite one.
        let device = Device::flex();
        let model = micro_config().init(&device);
        let image = Tensor::<4>::random([1, 3, 32, 32], Distribution::Default, &device);
        let changed = image.clone().slice_assign([0..1, 0..3, 0..1, 0..1], Tensor::ones([1, 3, 1, 1], &device));
        let far = |x: Tensor<4>| model.forward(x, None).slice([0..1, 0..3, 31..32, 31..32]);
        let difference = (far(image) - far(changed)).abs().sum().into_scalar::<f32>();
        assert!(difference > 0.0);
    }
}
