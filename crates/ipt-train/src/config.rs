//! Training configs (`configs/*.toml`): typed, `deny_unknown_fields`, overridable with
//! `--set a.b=c`, and written resolved into the run folder.

use std::path::{Path, PathBuf};

use ipt_model::{FeatureMethod, IptConfig, LayerGroup, ModulationConfig, Preset, RankPolicy, Task};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::precision::Precision;

/// Everything a training run needs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name: the run folder is `runs/<name>/`.
    pub name: String,
    /// Seed of the initial weights and of every data choice.
    pub seed: u64,
    /// The backbone.
    pub model: ModelChoice,
    /// How tasks condition the model.
    pub conditioning: Conditioning,
    /// Data spec and batching.
    pub data: DataConfig,
    /// Optimiser and learning-rate schedule.
    pub optim: OptimConfig,
    /// Loss terms.
    #[serde(default)]
    pub loss: LossConfig,
    /// Total steps and the optional phased schedule.
    pub schedule: ScheduleConfig,
    /// Exponential moving average of the weights.
    #[serde(default)]
    pub ema: EmaConfig,
    /// Checkpoints, validation and logging intervals.
    pub intervals: Intervals,
    /// The float type of the forward and backward passes (`"f32"`, `"bf16"`, `"f16"`); the
    /// parameters, optimiser state and EMA stay `f32` ([`crate::precision`]).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Non-finite losses tolerated in a row before training stops.
    #[serde(default = "default_nonfinite")]
    pub max_consecutive_nonfinite: usize,
    /// Start from the backbone of this weight file (relative to the config file, or to the
    /// working folder when given with `--set`) instead of
    /// random weights; task biases or conditioning layers keep their fresh initialisation. A
    /// file of a shallower architecture (fewer blocks per stage, nothing else changed) is grown
    /// to the config's, its new blocks starting as identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_backbone: Option<PathBuf>,
    /// Start from every tensor of this weight file, backbone and task biases or conditioning
    /// layers (relative like `init_backbone`): a new run that continues from shipped or earlier
    /// weights. The file must have this config's conditioning and tasks, and its architecture
    /// or a shallower one that grows into it (see `init_backbone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_weights: Option<PathBuf>,
}

fn default_nonfinite() -> usize {
    5
}

/// A named preset or a full architecture config.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum ModelChoice {
    /// `model = { preset = "tiny" }`.
    Preset(PresetChoice),
    /// Every architecture field written out.
    Custom(IptConfig),
}

/// `model = { preset = "..." }`; any other field is refused rather than ignored (a table
/// mixing a preset with architecture fields would otherwise silently mean the preset).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PresetChoice {
    /// The preset.
    pub preset: Preset,
}

impl ModelChoice {
    /// The architecture.
    pub fn config(&self) -> IptConfig {
        match self {
            Self::Preset(choice) => choice.preset.config(),
            Self::Custom(config) => config.clone(),
        }
    }
}

/// How the task reaches the network: `conditioning = { kind = "..." }` with `none`,
/// `weight_modulation` or one of the peers' methods ([`FeatureMethod`]: `instruct_ir_icb`,
/// `prompt_ir`, `external_control`, `pip`, `adapt_ir`, `weight_replacement`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Conditioning {
    /// No task conditioning: plain mixed training of one backbone (the baseline).
    None,
    /// Instruct-IPT: low-rank task biases on the task-sensitive weights.
    WeightModulation(ModulationChoice),
    /// One of the peers' feature-adaptation methods.
    #[serde(untagged)]
    Feature(FeatureMethod),
}

/// The rank and targets of Instruct-IPT's task biases (the tasks come from the data spec).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModulationChoice {
    /// Rank of every task bias.
    #[serde(default)]
    pub rank: RankPolicy,
    /// The layer groups that get task biases (default: the paper's Table 2 groups).
    #[serde(default = "ModulationConfig::paper_targets")]
    pub targets: Vec<LayerGroup>,
}

/// Where patches come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset spec, relative to the config file.
    pub spec: PathBuf,
    /// Folders of clean photos that replace the spec's `clean` folders (its tasks and validation
    /// rules stay): training on one's own photos (`cargo xtask train --data <folder>`). Relative
    /// to the config file, or to the working folder when given with `--set`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<PathBuf>,
    /// Side of the training patches.
    pub patch_size: usize,
    /// Patches per step.
    pub batch_size: usize,
    /// Sampler worker threads.
    #[serde(default = "one")]
    pub workers: usize,
    /// Flips and rotations.
    #[serde(default = "yes")]
    pub augment: bool,
    /// How each patch's task is chosen (left out of the resolved config when balanced, so
    /// runs recorded before the option existed resume).
    #[serde(default, skip_serializing_if = "TaskSampling::is_balanced")]
    pub task_sampling: TaskSampling,
}

/// How the sampler chooses each patch's task.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskSampling {
    /// Every run of as many patches as tasks holds each task once.
    #[default]
    Balanced,
    /// After each validation, tasks are drawn with shares that favour the tasks gaining least
    /// over their degraded inputs ([`crate::task_shares::lagging_shares`]).
    Lagging,
}

impl TaskSampling {
    fn is_balanced(&self) -> bool {
        *self == Self::Balanced
    }
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// AdamW with linear warm-up and cosine decay, gradient clipping.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Linear warm-up steps from 0 to `lr`.
    pub warmup_steps: usize,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// Adam's first-moment decay.
    #[serde(default = "beta1")]
    pub beta1: f32,
    /// Adam's second-moment decay.
    #[serde(default = "beta2")]
    pub beta2: f32,
    /// Clip the gradient to this global L2 norm (0 = off).
    pub grad_clip: f32,
}

fn beta1() -> f32 {
    0.9
}

fn beta2() -> f32 {
    0.999
}

impl OptimConfig {
    /// The learning rate at `step` (0-based) of `total`: linear warm-up, then cosine decay to
    /// `min_lr`. A pure function of the step, so a resumed run needs no scheduler state.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        ipt_core::warmup_cosine(self.lr, self.min_lr, self.warmup_steps, step, total)
    }
}

/// Weights of the loss terms.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Mean absolute error.
    pub l1: f32,
    /// Charbonnier error `sqrt(d² + ε²)` averaged (a smooth L1; left out of the resolved
    /// config when zero, so runs recorded before the term existed resume).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub charbonnier: f32,
    /// Negative PSNR (dB) of each patch, averaged (HINet's PSNR loss).
    pub psnr: f32,
    /// Mean absolute error between the 2-D spectra (patch sides must be powers of two).
    pub fft: f32,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self { l1: 1.0, charbonnier: 0.0, psnr: 0.0, fft: 0.0 }
    }
}

fn is_zero(value: &f32) -> bool {
    *value == 0.0
}

/// Length of training and its phases.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Total optimiser steps.
    pub steps: usize,
    /// Phases run in order; empty = one synchronous phase over every task of the data spec.
    #[serde(default)]
    pub phases: Vec<Phase>,
}

/// One phase of a phased schedule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Steps in this phase.
    pub steps: usize,
    /// Tasks sampled in this phase (each must be in the data spec).
    pub tasks: Vec<Task>,
    /// Which parameters learn.
    pub trainable: Trainable,
}

/// Which parameters learn in a phase.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Trainable {
    /// Backbone and task biases together (the paper's synchronous training).
    Synchronous,
    /// The backbone only (task biases frozen): the first stage of two-stage training.
    BackboneOnly,
    /// Only the phase's tasks' biases: fine-tuning downstream tasks on a trained backbone.
    BiasOnly,
    /// Only the feature-conditioning layers (AdaptIR's adapters on a frozen backbone).
    ConditioningOnly,
}

impl Trainable {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Trainable::Synchronous => "synchronous",
            Trainable::BackboneOnly => "backbone_only",
            Trainable::BiasOnly => "bias_only",
            Trainable::ConditioningOnly => "conditioning_only",
        }
    }
}

impl Conditioning {
    /// The config's `kind`.
    pub fn name(&self) -> &'static str {
        match self {
            Conditioning::None => "none",
            Conditioning::WeightModulation(_) => "weight_modulation",
            Conditioning::Feature(method) => method.name(),
        }
    }
}

/// Exponential moving average of the weights (validated and exported).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmaConfig {
    /// Decay per step (0 = the EMA is the current weights).
    pub decay: f32,
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self { decay: 0.999 }
    }
}

/// How often things happen, in steps.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Intervals {
    /// Checkpoint every this many steps (and on Ctrl-C and at the end).
    pub checkpoint: usize,
    /// Validate every this many steps (and at the end).
    pub validation: usize,
    /// Append to `metrics.jsonl` every this many steps.
    pub log: usize,
}

impl TrainConfig {
    /// Reads `path` (and the files it `extends`), applies `a.b=c` overrides, checks the result.
    /// Errors name the file and key.
    ///
    /// `extends = "other.toml"` (relative to the file) starts from that config and overrides it
    /// key by key (tables merge, other values replace), so an ablation states only what differs.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, TrainError> {
        let config_error = |message: String| TrainError::Config { path: path.into(), message };
        let mut value = read_tree(path, 0)?;
        for assignment in overrides {
            apply_override(&mut value, assignment).map_err(config_error)?;
        }
        check_conditioning(&value).map_err(config_error)?;
        let mut config: Self = value.try_into().map_err(|error: toml::de::Error| config_error(error.to_string()))?;
        // Paths in files are relative to the file; paths given with `--set`, to the working folder.
        let folder = path.parent().unwrap_or(Path::new("."));
        let overridden =
            |key: &str| overrides.iter().any(|assignment| assignment.split_once('=').is_some_and(|(name, _)| name.trim() == key));
        let files = [("data.spec", &mut config.data.spec)]
            .into_iter()
            .chain(config.init_backbone.as_mut().map(|file| ("init_backbone", file)))
            .chain(config.init_weights.as_mut().map(|file| ("init_weights", file)))
            .chain(config.data.photos.iter_mut().map(|folder| ("data.photos", folder)));
        for (key, file) in files {
            if file.is_relative() && !overridden(key) {
                *file = folder.join(&*file);
            }
        }
        config.check().map_err(config_error)?;
        Ok(config)
    }

    /// Reads the headers of `init_backbone` / `init_weights`, so a missing or unreadable file is
    /// refused, naming the key and the file, before a new run creates its folder. A resumed run
    /// does not need them (its checkpoint holds every weight), so it may outlive them.
    pub fn check_init_files(&self) -> Result<(), TrainError> {
        for (key, weights) in [("init_backbone", &self.init_backbone), ("init_weights", &self.init_weights)] {
            if let Some(weights) = weights {
                ipt_model::read_metadata(weights).map_err(|error| TrainError::Invalid(format!("{key}: {}", with_causes(&error))))?;
            }
        }
        Ok(())
    }

    /// Checks values serde cannot; the message names the key ([`TrainConfig::load`] adds the file).
    fn check(&self) -> Result<(), String> {
        self.model.config().validate().map_err(|error| format!("model: {error}"))?;
        if self.init_backbone.is_some() && self.init_weights.is_some() {
            return Err("init_backbone and init_weights exclude each other: init_weights already holds a backbone".into());
        }
        if self.schedule.steps == 0 || self.data.batch_size == 0 || self.data.patch_size == 0 {
            return Err("schedule.steps, data.batch_size and data.patch_size must be positive".into());
        }
        let batch_pixels = self.data.patch_size.checked_mul(self.data.patch_size).and_then(|side| side.checked_mul(self.data.batch_size));
        if batch_pixels.is_none_or(|pixels| pixels > MAX_BATCH_PIXELS) {
            return Err(format!(
                "data.batch_size x data.patch_size^2 ({} x {}^2) is above {MAX_BATCH_PIXELS} pixels a batch",
                self.data.batch_size, self.data.patch_size
            ));
        }
        if self.data.workers > MAX_WORKERS {
            return Err(format!("data.workers {} is above {MAX_WORKERS}", self.data.workers));
        }
        let multiple = self.model.config().size_multiple();
        if !self.data.patch_size.is_multiple_of(multiple) {
            return Err(format!("data.patch_size {} must be a multiple of {multiple}, the model's size multiple", self.data.patch_size));
        }
        if self.loss.fft != 0.0 && !self.data.patch_size.is_power_of_two() {
            return Err(format!("loss.fft needs a power-of-two data.patch_size, got {}", self.data.patch_size));
        }
        if self.intervals.checkpoint == 0 || self.intervals.validation == 0 || self.intervals.log == 0 {
            return Err("intervals.checkpoint, intervals.validation and intervals.log must be positive".into());
        }
        if !(0.0..1.0).contains(&self.ema.decay) {
            return Err(format!("ema.decay must be in [0, 1), got {}", self.ema.decay));
        }
        let phase_steps: usize = self.schedule.phases.iter().map(|phase| phase.steps).sum();
        if !self.schedule.phases.is_empty() && phase_steps != self.schedule.steps {
            return Err(format!("schedule.phases add up to {phase_steps} steps but schedule.steps is {}", self.schedule.steps));
        }
        if let Conditioning::Feature(method) = &self.conditioning {
            method.validate().map_err(|problem| format!("conditioning: {problem}"))?;
        }
        for (index, phase) in self.schedule.phases.iter().enumerate() {
            let fits = match phase.trainable {
                Trainable::Synchronous => true,
                Trainable::BiasOnly => {
                    matches!(self.conditioning, Conditioning::WeightModulation(_))
                }
                Trainable::BackboneOnly => !matches!(self.conditioning, Conditioning::None),
                Trainable::ConditioningOnly => {
                    matches!(self.conditioning, Conditioning::Feature(_))
                }
            };
            if !fits {
                return Err(format!(
                    "schedule.phases[{index}]: trainable = \"{}\" does not fit conditioning.kind = \"{}\"",
                    phase.trainable.name(),
                    self.conditioning.name()
                ));
            }
        }
        Ok(())
    }

    /// The resolved config as TOML (written into the run folder).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("train configs serialise to TOML")
    }
}

/// Most pixels a training batch may hold (`batch_size x patch_size^2`): 64 patches of
/// 1024x1024, far above what any accelerator trains on, so that a config cannot ask for
/// unbounded memory.
pub const MAX_BATCH_PIXELS: usize = 64 << 20;

/// Most sampler worker threads a config may ask for.
pub const MAX_WORKERS: usize = 1024;

/// Longest `extends` chain followed (a longer one is taken for a cycle): long runs that each
/// continue the last one's recipe chain a dozen files.
const MAX_EXTENDS: usize = 32;

/// Keys holding file paths, relative to the config file that sets them.
const PATH_KEYS: [&[&str]; 3] = [&["data", "spec"], &["init_backbone"], &["init_weights"]];

/// The TOML tree of `path` merged over the tree of the file it extends, if any; the relative
/// paths ([`PATH_KEYS`]) of an extended file are rewritten relative to the extending one.
fn read_tree(path: &Path, depth: usize) -> Result<toml::Value, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io { path: path.into(), source })?;
    let config_error = |message: String| TrainError::Config { path: path.into(), message };
    let mut value: toml::Value = toml::from_str(&text).map_err(|error| config_error(error.to_string()))?;
    let table = value.as_table_mut().ok_or_else(|| config_error("not a TOML table".into()))?;
    let Some(extends) = table.remove("extends") else {
        return Ok(value);
    };
    let extends = extends.as_str().map(PathBuf::from).ok_or_else(|| config_error("extends: expected a file name".into()))?;
    if depth >= MAX_EXTENDS {
        return Err(config_error(format!("extends: more than {MAX_EXTENDS} files deep (a cycle?)")));
    }
    let mut base = read_tree(&path.parent().unwrap_or(Path::new(".")).join(&extends), depth + 1)?;
    for key in PATH_KEYS {
        let Some(file) = key.iter().try_fold(&mut base, |node, part| node.get_mut(*part)) else {
            continue;
        };
        if let Some(relative) = file.as_str().map(Path::new).filter(|file| file.is_relative()) {
            let moved = extends.parent().unwrap_or(Path::new("")).join(relative);
            *file = toml::Value::String(moved.to_string_lossy().into_owned());
        }
    }
    merge(&mut base, value);
    Ok(base)
}

/// Writes `over` into `base`: tables merge key by key, anything else replaces, and so does a
/// table naming a `kind` (another variant: `conditioning = { kind = "pip" }` drops the base's
/// weight-modulation rank) and the `model` table (one architecture: a preset or every field).
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) if !over.contains_key("kind") => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) if key != "model" => merge(existing, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Names an unknown `conditioning.kind`, or the bad field of a feature method, before serde's
/// untagged fallback would blur both into "did not match any variant".
fn check_conditioning(root: &toml::Value) -> Result<(), String> {
    let Some(table) = root.get("conditioning") else {
        return Ok(());
    };
    let kind = table.get("kind").and_then(toml::Value::as_str).unwrap_or_default();
    let features = FeatureMethod::all().map(|method| method.name());
    let problem = |error: toml::de::Error| format!("conditioning: {error}");
    if features.contains(&kind) {
        return table.clone().try_into::<FeatureMethod>().map(drop).map_err(problem);
    }
    let mut fields = table.as_table().cloned().unwrap_or_default();
    fields.remove("kind");
    match kind {
        "weight_modulation" => {
            return toml::Value::Table(fields).try_into::<ModulationChoice>().map(drop).map_err(problem);
        }
        "none" if fields.is_empty() => return Ok(()),
        "none" => {
            return Err(format!(
                "conditioning: kind \"none\" takes no other field (found {})",
                fields.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        _ => {}
    }
    Err(format!("conditioning.kind: unknown kind '{kind}' (expected none, weight_modulation, {})", features.join(", ")))
}

/// Sets `a.b.c = value` in a TOML tree; `value` is parsed as TOML, else taken as a string.
fn apply_override(root: &mut toml::Value, assignment: &str) -> Result<(), String> {
    let (key, raw) = assignment.split_once('=').ok_or_else(|| format!("--set {assignment}: expected key=value"))?;
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let mut node = root;
    let parts: Vec<&str> = key.trim().split('.').collect();
    for (depth, part) in parts.iter().enumerate() {
        let table = node.as_table_mut().ok_or_else(|| format!("--set {key}: '{}' is not a table", parts[..depth].join(".")))?;
        if depth + 1 == parts.len() {
            table.insert(part.to_string(), parsed);
            return Ok(());
        }
        node = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Err(format!("--set {assignment}: empty key"))
}

/// An error and its causes on one line (`outer: inner: ...`), for messages that carry it as text.
fn with_causes(error: &dyn std::error::Error) -> String {
    std::iter::successors(Some(error), |error| error.source()).map(|error| error.to_string()).collect::<Vec<_>>().join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipt_core::fuzz::{FuzzRandom, fuzz_files, mutate_toml};

    #[test]
    fn fuzzed_configs_load_within_the_limits_or_fail_naming_the_file() {
        let valid = include_str!("../../../configs/tiny-6task-cpu.toml");
        let folder = tempfile::tempdir().unwrap();
        fuzz_files(
            folder.path(),
            "toml",
            400,
            &mut FuzzRandom::new(11),
            |random| mutate_toml(valid, random),
            |path| {
                let config = TrainConfig::load(path, &[]).map_err(|error| error.to_string())?;
                assert!(config.data.batch_size * config.data.patch_size.pow(2) <= MAX_BATCH_PIXELS);
                assert!(config.data.workers <= MAX_WORKERS && config.model.config().validate().is_ok());
                Ok(())
            },
        );
    }

    #[test]
    fn a_batch_above_the_pixel_limit_is_refused_by_key() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("huge-batch.toml");
        let text = include_str!("../../../configs/tiny-6task-cpu.toml").replace("batch_size = 8", "batch_size = 100000");
        std::fs::write(&path, text).unwrap();
        let message = TrainConfig::load(&path, &[]).unwrap_err().to_string();
        assert!(message.contains("huge-batch.toml") && message.contains("data.batch_size x data.patch_size^2"), "{message}");
    }
}
