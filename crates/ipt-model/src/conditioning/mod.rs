//! Feature-adaptation conditioning: the peers' ways of telling one backbone which task to do
//! (docs/design.md §2), so Instruct-IPT's weight modulation can be compared with them on the same
//! backbone (paper Table 1) and users get them in one codebase.
//!
//! Each method lives in its own module and reaches the backbone only through the fixed hook
//! points of [`Hooks`]: after each encoder level, before each decoder up-sampling, after each
//! decoder level, beside each block's FFN and in place of the output layer. A model without
//! conditioning runs none of them. Methods read the per-sample task weights of the forward pass
//! (`[batch, tasks]`, one-hot for a known task, soft for an instruction); a pass without task
//! weights conditions on all-zero weights ("no task").
//!
//! | method | where | starts as the backbone |
//! |---|---|---|
//! | [`InstructIrIcb`] | after encoder levels 0-2 and decoder levels 0-2 | no (gates scale the features) |
//! | [`PromptIr`] | before up-sampling levels 3, 2, 1 | no (task-blind: prompts picked from the features) |
//! | [`ExternalControl`] | added after every encoder level | yes (zero convs) |
//! | [`Pip`] | before up-sampling levels 3, 2, 1 | yes (zero output projections) |
//! | [`AdaptIr`] | beside every FFN, one adapter per task | yes (zero up-projections) |
//! | [`TaskOutputs`] | replaces the output layer, one per task | no (no shared output weight) |

mod adapt_ir;
mod control;
mod dft;
mod icb;
mod naf;
mod pip;
mod prompt_ir;
mod replacement;
#[cfg(test)]
mod tests;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use ipt_modulation::{ModulatedConv2d, TaskWeights};
use serde::{Deserialize, Serialize};

use crate::config::LEVELS;
use crate::{IptConfig, ModelError, Task};

pub use adapt_ir::{AdaptIr, Adapter, TaskAdapters};
pub use control::ExternalControl;
pub use icb::{Icb, InstructIrIcb};
pub use naf::NafBlock;
pub use pip::{Pip, PromptToFeature};
pub use prompt_ir::{PromptIr, PromptStage};
pub use replacement::TaskOutputs;

/// A feature-adaptation method and its sizes. Defaults are sized for the `tiny` preset.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeatureMethod {
    /// InstructIR's instruction-conditioned blocks.
    InstructIrIcb {
        /// Width of the learned task embedding `t` (InstructIR: 256).
        #[serde(default = "default_embedding")]
        embedding: usize,
    },
    /// PromptIR's prompt blocks in the decoder.
    PromptIr {
        /// Learned prompt tensors per level (PromptIR: 5).
        #[serde(default = "default_prompts")]
        prompts: usize,
        /// Side of the level-1 prompts; halved at each deeper level.
        #[serde(default = "default_prompt_size")]
        prompt_size: usize,
    },
    /// A task-aware parallel copy of the encoder joined by zero convs (ControlNet-like).
    ExternalControl,
    /// PIP's degradation-aware and basic restoration prompts.
    Pip {
        /// Degradation-aware tokens per task (1 = PIP's single vector per task).
        #[serde(default = "default_tokens")]
        tokens: usize,
        /// Prompt channels.
        #[serde(default = "default_prompt_channels")]
        channels: usize,
        /// Side of the basic restoration prompt map.
        #[serde(default = "default_map_size")]
        size: usize,
    },
    /// AdaptIR's adapters beside each FFN, one set per task.
    AdaptIr {
        /// Adapter width = block channels / `reduction` (at least 4, a multiple of 4).
        #[serde(default = "default_reduction")]
        reduction: usize,
        /// Rank of the local branch's grouped-conv weight.
        #[serde(default = "default_local_rank")]
        rank: usize,
    },
    /// A separate output layer per task and no shared output weight (paper Table 9).
    WeightReplacement,
}

fn default_embedding() -> usize {
    64
}
fn default_prompts() -> usize {
    5
}
fn default_prompt_size() -> usize {
    16
}
fn default_tokens() -> usize {
    4
}
fn default_prompt_channels() -> usize {
    32
}
fn default_map_size() -> usize {
    8
}
fn default_reduction() -> usize {
    8
}
fn default_local_rank() -> usize {
    2
}

impl FeatureMethod {
    /// Every method with its default sizes, in the order of docs/design.md §2.
    pub fn all() -> [FeatureMethod; 6] {
        [
            FeatureMethod::InstructIrIcb { embedding: default_embedding() },
            FeatureMethod::PromptIr { prompts: default_prompts(), prompt_size: default_prompt_size() },
            FeatureMethod::ExternalControl,
            FeatureMethod::Pip { tokens: default_tokens(), channels: default_prompt_channels(), size: default_map_size() },
            FeatureMethod::AdaptIr { reduction: default_reduction(), rank: default_local_rank() },
            FeatureMethod::WeightReplacement,
        ]
    }

    /// The `kind` name used in configs.
    pub fn name(&self) -> &'static str {
        match self {
            FeatureMethod::InstructIrIcb { .. } => "instruct_ir_icb",
            FeatureMethod::PromptIr { .. } => "prompt_ir",
            FeatureMethod::ExternalControl => "external_control",
            FeatureMethod::Pip { .. } => "pip",
            FeatureMethod::AdaptIr { .. } => "adapt_ir",
            FeatureMethod::WeightReplacement => "weight_replacement",
        }
    }

    /// Checks the sizes, naming the bad one.
    pub fn validate(&self) -> Result<(), ModelError> {
        let positive = |name: &str, value: usize| {
            if value == 0 { Err(ModelError::invalid(format!("{}: {name}", self.name()), "must be positive")) } else { Ok(()) }
        };
        match *self {
            FeatureMethod::InstructIrIcb { embedding } => positive("embedding", embedding),
            FeatureMethod::PromptIr { prompts, prompt_size } => positive("prompts", prompts).and(positive("prompt_size", prompt_size)),
            FeatureMethod::Pip { tokens, channels, size } => {
                positive("tokens", tokens).and(positive("channels", channels)).and(positive("size", size))
            }
            FeatureMethod::AdaptIr { reduction, rank } => positive("reduction", reduction).and(positive("rank", rank)),
            FeatureMethod::ExternalControl | FeatureMethod::WeightReplacement => Ok(()),
        }
    }
}

/// A model's feature conditioning: the method and the tasks of its task-weight columns.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureConditioning {
    /// The tasks, in the order of the task-weight columns.
    pub tasks: Vec<Task>,
    /// The method and its sizes.
    pub method: FeatureMethod,
}

impl FeatureConditioning {
    /// Checks the method and that tasks are listed once.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.method.validate()?;
        if self.tasks.is_empty() {
            return Err(ModelError::invalid(format!("{}: tasks", self.method.name()), "conditioning needs at least one task"));
        }
        crate::modulation::check_unique(&self.tasks)
    }

    /// Whether the method replaces the backbone's shared output layer.
    pub fn replaces_output(&self) -> bool {
        matches!(self.method, FeatureMethod::WeightReplacement)
    }
}

/// The conditioning layers of one method (a model field; its tensors live under
/// `conditioning.<Method>.`).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Conditioner {
    /// See [`InstructIrIcb`].
    InstructIrIcb(InstructIrIcb),
    /// See [`PromptIr`].
    PromptIr(PromptIr),
    /// See [`ExternalControl`].
    ExternalControl(ExternalControl),
    /// See [`Pip`].
    Pip(Pip),
    /// See [`AdaptIr`].
    AdaptIr(AdaptIr),
    /// See [`TaskOutputs`].
    WeightReplacement(TaskOutputs),
}

impl Conditioner {
    /// Fresh layers of `conditioning` for a backbone of `config`.
    pub(crate) fn new(config: &IptConfig, conditioning: &FeatureConditioning, device: &Device) -> Self {
        let tasks = conditioning.tasks.len();
        match conditioning.method {
            FeatureMethod::InstructIrIcb { embedding } => Self::InstructIrIcb(InstructIrIcb::new(config, tasks, embedding, device)),
            FeatureMethod::PromptIr { prompts, prompt_size } => Self::PromptIr(PromptIr::new(config, prompts, prompt_size, device)),
            FeatureMethod::ExternalControl => Self::ExternalControl(ExternalControl::new(config, tasks, device)),
            FeatureMethod::Pip { tokens, channels, size } => Self::Pip(Pip::new(config, tasks, tokens, channels, size, device)),
            FeatureMethod::AdaptIr { reduction, rank } => Self::AdaptIr(AdaptIr::new(config, tasks, reduction, rank, device)),
            FeatureMethod::WeightReplacement => Self::WeightReplacement(TaskOutputs::new(config, tasks, device)),
        }
    }
}

/// Where a stage sits in the backbone (AdaptIR's adapters follow the blocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StagePlace {
    /// Encoder level `i` (3 is the bottleneck).
    Encoder(usize),
    /// Decoder level `i`.
    Decoder(usize),
    /// The full-resolution refinement stage.
    Refinement,
}

/// The conditioning of one forward pass: the conditioner, its task weights and what it computes
/// once per pass. Every hook is the identity without a conditioner.
pub(crate) struct Hooks<'a> {
    active: Option<(&'a Conditioner, TaskWeights)>,
    prepared: Prepared,
}

/// What a method computes once per forward pass and its hooks then read.
enum Prepared {
    /// Nothing.
    Nothing,
    /// External control's features, one per encoder level.
    Control(Vec<Tensor<4>>),
    /// InstructIR's task embedding, `[batch, embedding]`.
    Embedding(Tensor<2>),
    /// PIP's fused prompt, `[batch, S * S, D]`.
    Prompt(Tensor<3>),
}

impl<'a> Hooks<'a> {
    /// Hooks for a pass over `image`; `tasks` are the pass's task weights (`None`: all zero).
    pub fn new(conditioner: Option<&'a Conditioner>, image: &Tensor<4>, tasks: Option<&TaskWeights>, task_count: usize) -> Self {
        let Some(conditioner) = conditioner else { return Self { active: None, prepared: Prepared::Nothing } };
        let weights = match tasks {
            Some(tasks) => tasks.clone(),
            None => TaskWeights::new(Tensor::zeros([image.dims()[0], task_count], &image.device())),
        };
        let prepared = match conditioner {
            Conditioner::ExternalControl(control) => Prepared::Control(control.features(image.clone(), &weights)),
            Conditioner::InstructIrIcb(icb) => Prepared::Embedding(icb.embed(&weights)),
            Conditioner::Pip(pip) => Prepared::Prompt(pip.fused_prompt(&weights)),
            _ => Prepared::Nothing,
        };
        Self { active: Some((conditioner, weights)), prepared }
    }

    /// After encoder level `level` (the bottleneck included), before its skip is taken.
    pub fn after_encoder(&self, level: usize, x: Tensor<4>) -> Tensor<4> {
        match (&self.active, &self.prepared) {
            (Some((Conditioner::InstructIrIcb(icb), _)), Prepared::Embedding(embedding)) if level < LEVELS - 1 => {
                icb.encoder[level].forward(x, embedding)
            }
            (_, Prepared::Control(features)) => x + features[level].clone(),
            _ => x,
        }
    }

    /// On level `level`'s features just before they are up-sampled to `level - 1`.
    pub fn before_upsample(&self, level: usize, x: Tensor<4>) -> Tensor<4> {
        match (&self.active, &self.prepared) {
            (Some((Conditioner::PromptIr(prompts), _)), _) => prompts.levels[level - 1].forward(x),
            (Some((Conditioner::Pip(pip), _)), Prepared::Prompt(prompt)) => pip.inject[level - 1].forward(x, prompt.clone()),
            _ => x,
        }
    }

    /// After decoder level `level`.
    pub fn after_decoder(&self, level: usize, x: Tensor<4>) -> Tensor<4> {
        match (&self.active, &self.prepared) {
            (Some((Conditioner::InstructIrIcb(icb), _)), Prepared::Embedding(embedding)) => icb.decoder[level].forward(x, embedding),
            _ => x,
        }
    }

    /// The branch beside the FFNs of the stage at `place`, as `(block, normalised input) ->
    /// output`, if the method has one.
    pub fn ffn_side(&self, place: StagePlace) -> Option<impl Fn(usize, Tensor<4>) -> Tensor<4> + '_> {
        match &self.active {
            Some((Conditioner::AdaptIr(adapters), tasks)) => {
                let stage = adapters.stage(place);
                Some(move |block: usize, normed: Tensor<4>| stage[block].forward(normed, tasks))
            }
            _ => None,
        }
    }

    /// The output layer's result when the method replaces it.
    pub fn output(&self, x: &Tensor<4>) -> Option<Tensor<4>> {
        match &self.active {
            Some((Conditioner::WeightReplacement(outputs), tasks)) => Some(outputs.forward(x.clone(), tasks)),
            _ => None,
        }
    }
}

/// A 1x1 convolution whose weight and bias start at zero: a branch that adds nothing until it
/// has learned something (ControlNet's zero conv, the adapters' output projections).
pub(crate) fn zero_pointwise(channels_in: usize, channels_out: usize, device: &Device) -> ModulatedConv2d {
    let mut conv = ModulatedConv2d::new(channels_in, channels_out, 1, 1, true, device);
    conv.weight = Param::from_tensor(Tensor::zeros([channels_out, channels_in, 1, 1], device));
    conv.bias = Some(Param::from_tensor(Tensor::zeros([channels_out], device)));
    conv
}

/// A linear layer `d_in -> d_out` (PyTorch's default initialisation).
pub(crate) fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).init(device)
}

/// `sum_t weights[:, t] * branch(t)` over the tasks active in the batch; zeros (of `shape`) when
/// none is. Per-task branches cost one pass per active task.
pub(crate) fn mix_tasks(tasks: &TaskWeights, shape: [usize; 4], device: &Device, branch: impl Fn(usize) -> Tensor<4>) -> Tensor<4> {
    let batch = shape[0];
    tasks
        .active()
        .iter()
        .map(|&task| branch(task) * tasks.column(task).reshape([batch, 1, 1, 1]))
        .reduce(|sum, term| sum + term)
        .unwrap_or_else(|| Tensor::zeros(shape, device))
}

/// The plain backbone's parameter count and what each conditioning option adds to it for
/// `tasks` (weight modulation with its defaults, then every feature method with its defaults),
/// as `(kind, extra parameters)`; weight replacement counts its per-task output layers minus
/// the shared one it removes.
pub fn option_costs(config: &IptConfig, tasks: &[Task], device: &Device) -> (usize, Vec<(&'static str, i64)>) {
    let plain = config.init(device).num_params() as i64;
    let modulated = config.init_modulated(&crate::ModulationConfig::new(tasks.to_vec()), device).num_params() as i64;
    let mut costs = vec![("none", 0), ("weight_modulation", modulated - plain)];
    for method in FeatureMethod::all() {
        let name = method.name();
        let model = config.init_conditioned(&FeatureConditioning { tasks: tasks.to_vec(), method }, device);
        costs.push((name, model.num_params() as i64 - plain));
    }
    (plain as usize, costs)
}
