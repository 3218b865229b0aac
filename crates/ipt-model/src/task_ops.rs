//! Whole-model operations on task biases: merge a task into the backbone, add a task, and choose
//! which parameters train (synchronous vs bias-only).
//!
//! They work on the model's named tensors (`collect`/`apply`), so they need no per-layer code.

use std::collections::BTreeMap;

use burn::module::{Module, ParamGroup};
use burn::tensor::{Device, Tensor};
use burn_store::{ModuleSnapshot, bridge};
use serde::{Deserialize, Serialize};

use crate::{IptModel, ModelError, ModulationConfig, Task};

/// The path segment under which a layer keeps its task biases.
pub(crate) const TASK_BIASES: &str = ".task_biases.";

/// The path prefix of the feature-conditioning layers.
pub(crate) const CONDITIONING: &str = "conditioning.";

/// Which parameters a training phase updates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TrainableSet {
    /// The backbone and every task bias learn together: the paper's synchronous training.
    Synchronous,
    /// Only these tasks' biases learn; the backbone and the other tasks are frozen.
    BiasOnly {
        /// The tasks whose biases train.
        tasks: Vec<Task>,
    },
    /// The backbone learns; task biases and conditioning layers are frozen.
    BackboneOnly,
    /// Only the feature-conditioning layers learn (AdaptIR's adapters on a frozen backbone).
    ConditioningOnly,
}

/// `(layer prefix, task index, "b1" | "b2")` of a task-bias tensor name.
pub(crate) fn parse_bias_name(name: &str) -> Option<(&str, usize, &str)> {
    let (prefix, rest) = name.split_once(TASK_BIASES)?;
    let (index, factor) = rest.split_once('.')?;
    Some((prefix, index.parse().ok()?, factor))
}

impl IptModel {
    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.devices().into_iter().next().expect("a model has parameters, hence a device")
    }

    /// The error for `task` missing from this model's tasks.
    pub(crate) fn not_conditioned(&self, operation: &'static str, task: Task) -> ModelError {
        ModelError::TaskNotConditioned { operation, task, known: self.tasks().to_vec() }
    }

    /// Sets which parameters require gradients, or says which task has no bias here.
    pub fn with_trainable(self, set: &TrainableSet) -> Result<Self, ModelError> {
        let group = |pattern: &str| ParamGroup::from_regex(pattern).expect("the parameter patterns are valid regexes");
        match set {
            TrainableSet::Synchronous => Ok(self.set_require_grad(true)),
            TrainableSet::BackboneOnly => {
                let extras = group(r"\.task_biases\.|^conditioning\.");
                Ok(self.set_require_grad(true).set_require_grad_group(extras, false))
            }
            TrainableSet::ConditioningOnly => {
                if self.conditioning.is_none() {
                    let reason = "the model has no feature conditioning".into();
                    return Err(ModelError::Unsupported { operation: "conditioning-only training", reason });
                }
                Ok(self.set_require_grad(false).set_require_grad_group(group(r"^conditioning\."), true))
            }
            TrainableSet::BiasOnly { tasks } => {
                let indices = tasks
                    .iter()
                    .map(|&task| {
                        self.modulation()
                            .and_then(|modulation| modulation.index_of(task))
                            .map(|index| index.to_string())
                            .ok_or_else(|| self.not_conditioned("bias-only training", task))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let pattern = format!(r"\.task_biases\.({})\.", indices.join("|"));
                Ok(self.set_require_grad(false).set_require_grad_group(group(&pattern), true))
            }
        }
    }

    /// The plain backbone with `W + B_task` folded in: same output as the modulated model with
    /// task `task`, and exactly the backbone's inference cost.
    pub fn merge_task(&self, task: Task) -> Result<IptModel, ModelError> {
        if self.feature_conditioning().is_some() {
            let reason = "feature conditioning has no bias to fold into the weights".into();
            return Err(ModelError::Unsupported { operation: "merging a task", reason });
        }
        let index = self
            .modulation()
            .and_then(|modulation| modulation.index_of(task))
            .ok_or_else(|| self.not_conditioned("merging a task", task))?;
        let mut mix = vec![0.0; self.tasks().len()];
        mix[index] = 1.0;
        Ok(self.merge(&mix))
    }

    /// The plain backbone with `W + sum_t mix[t] B_t` folded in (a soft task vector, e.g. from an
    /// instruction); `mix` has one weight per task.
    pub fn merge(&self, mix: &[f32]) -> IptModel {
        assert!(self.feature_conditioning().is_none(), "feature conditioning cannot be merged into the backbone");
        assert_eq!(mix.len(), self.tasks().len(), "merge needs one weight per task");
        let device = self.device();
        let mut general = Vec::new();
        // Per layer prefix, per task with a non-zero weight: [B1, B2].
        let mut biases: BTreeMap<String, BTreeMap<usize, [Option<Tensor<2>>; 2]>> = BTreeMap::new();
        for snapshot in self.collect(None, None, false) {
            match parse_bias_name(&snapshot.name) {
                Some((prefix, task, factor)) if mix[task] != 0.0 => {
                    let tensor = Tensor::<2>::from_data(bridge::to_data(&snapshot).expect("readable tensor"), &device);
                    let slot = if factor == "b1" { 0 } else { 1 };
                    biases.entry(prefix.to_string()).or_default().entry(task).or_default()[slot] = Some(tensor);
                }
                Some(_) => {} // a task with zero weight adds nothing
                None => general.push(snapshot),
            }
        }
        let merged = general
            .into_iter()
            .map(|snapshot| {
                let Some(layer_biases) = snapshot.name.strip_suffix(".weight").and_then(|prefix| biases.get(prefix)) else {
                    return snapshot;
                };
                let weight = Tensor::<4>::from_data(bridge::to_data(&snapshot).expect("readable tensor"), &device);
                let shape = weight.dims();
                let weight = layer_biases.iter().fold(weight, |weight, (task, [b1, b2])| {
                    let (b1, b2) = (b1.clone().expect("every bias has a B1"), b2.clone().expect("every bias has a B2"));
                    weight + b1.matmul(b2).reshape(shape) * mix[*task]
                });
                bridge::from_data(weight.into_data(), snapshot.name.clone(), None)
            })
            .collect();
        let mut plain = self.config().init(&device);
        let result = plain.apply(merged, None, None, false);
        assert!(
            result.errors.is_empty() && result.missing.is_empty() && result.unused.is_empty(),
            "merging kept the backbone's layout: {result}"
        );
        plain
    }

    /// The model with a bias for one more task, initialised so the task starts exactly at the
    /// general model (`B1 = 0`); existing weights and biases are kept bit for bit. A plain
    /// backbone gets biases on the paper's targets with the default rank.
    pub fn with_added_task(&self, task: Task) -> Result<IptModel, ModelError> {
        if self.feature_conditioning().is_some() {
            let reason = "tasks can be added to task biases only, not to feature conditioning".into();
            return Err(ModelError::Unsupported { operation: "adding a task", reason });
        }
        let mut modulation = self.modulation().cloned().unwrap_or_else(|| ModulationConfig::new(Vec::new()));
        if modulation.tasks.contains(&task) {
            return Err(ModelError::Unsupported {
                operation: "adding a task",
                reason: format!("the model already has a bias for '{task}'"),
            });
        }
        modulation.tasks.push(task);
        Ok(self.regrow(&modulation))
    }

    /// A model with `modulation`, whose tasks extend this model's, holding this model's tensors;
    /// the new tasks' biases start at zero.
    pub(crate) fn regrow(&self, modulation: &ModulationConfig) -> IptModel {
        let kept = self.tasks().len();
        assert_eq!(&modulation.tasks[..kept], self.tasks(), "regrowing keeps the existing task order");
        let mut grown = self.config().init_modulated(modulation, &self.device());
        let result = grown.apply(self.collect(None, None, false), None, None, false);
        let only_new_tasks_missing =
            result.missing.iter().all(|(name, _)| parse_bias_name(name).is_some_and(|(_, index, _)| index >= kept));
        assert!(
            result.errors.is_empty() && result.unused.is_empty() && only_new_tasks_missing,
            "growing the model kept every existing tensor: {result}"
        );
        grown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskWeights;
    use crate::test_support::{micro_config, modulated_micro_model};
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::{Distribution, TensorData};

    const TASKS: [Task; 3] = [Task::Denoise, Task::Deblur, Task::Derain];

    fn image(batch: usize, device: &Device) -> Tensor<4> {
        Tensor::random([batch, 3, 16, 16], Distribution::Default, device)
    }

    /// What two code paths computing the same network in f32 (grouped against plain convs)
    /// differ by: measured up to 1e-6 on random inputs (the vectorised softmax's exponential
    /// is within a few ulp, not exactly rounded); any real mismatch is orders of magnitude larger.
    const SAME_NETWORK: f32 = 3e-6;

    fn relative_error(a: Tensor<4>, b: Tensor<4>) -> f32 {
        let scale = b.clone().abs().max().into_scalar::<f32>();
        (a - b).abs().max().into_scalar::<f32>() / scale
    }

    fn snapshot_bytes(model: &IptModel) -> BTreeMap<String, Vec<u8>> {
        model.collect(None, None, false).iter().map(|t| (t.name.clone(), t.to_bytes().unwrap().to_vec())).collect()
    }

    #[test]
    fn zero_biases_reproduce_the_backbone() {
        let device = Device::flex();
        let model = micro_config().init_modulated(&ModulationConfig::new(TASKS.to_vec()), &device);
        let x = image(2, &device);
        let tasks = TaskWeights::one_hot(&[0, 2], 3, &device);
        let error = relative_error(model.forward(x.clone(), Some(&tasks)), model.forward(x, None));
        assert!(error <= SAME_NETWORK, "relative error {error}");
    }

    #[test]
    fn merged_equals_modulated_and_costs_the_backbone() {
        let device = Device::flex();
        let model = modulated_micro_model(&device);
        let x = image(1, &device);
        for (index, task) in TASKS.into_iter().enumerate() {
            let merged = model.merge_task(task).unwrap();
            assert!(merged.tasks().is_empty());
            assert_eq!(merged.num_params(), micro_config().init(&device).num_params());
            let modulated = model.forward(x.clone(), Some(&TaskWeights::one_hot(&[index], 3, &device)));
            let error = relative_error(merged.forward(x.clone(), None), modulated.clone());
            assert!(error <= 1e-5, "{task}: relative error {error}");
            let general = model.forward(x.clone(), None);
            assert!(relative_error(general, modulated) > 1e-4, "{task}: the bias changes the output");
        }
        let mix = [0.5f32, 0.0, 0.5];
        let soft = TaskWeights::new(Tensor::from_data(TensorData::new(mix.to_vec(), [1, 3]), &device));
        let error = relative_error(model.merge(&mix).forward(x.clone(), None), model.forward(x, Some(&soft)));
        assert!(error <= 1e-5, "soft mix: relative error {error}");
    }

    #[test]
    fn a_mixed_batch_equals_per_task_batches() {
        let device = Device::flex();
        let model = modulated_micro_model(&device);
        let x = image(3, &device);
        let mixed = model.forward(x.clone(), Some(&TaskWeights::one_hot(&[2, 0, 1], 3, &device)));
        let single = |sample: usize, task: usize| {
            let xs = x.clone().slice([sample..sample + 1, 0..3, 0..16, 0..16]);
            model.forward(xs, Some(&TaskWeights::one_hot(&[task], 3, &device)))
        };
        let separate = Tensor::cat(vec![single(0, 2), single(1, 0), single(2, 1)], 0);
        assert!(relative_error(mixed, separate) <= 1e-5);
    }

    #[test]
    fn adding_a_task_leaves_existing_tasks_bit_identical() {
        let device = Device::flex();
        let model = modulated_micro_model(&device);
        let grown = model.with_added_task(Task::Dehaze).unwrap();
        assert_eq!(grown.tasks(), [Task::Denoise, Task::Deblur, Task::Derain, Task::Dehaze]);
        let x = image(1, &device);
        for index in 0..3 {
            let before = model.forward(x.clone(), Some(&TaskWeights::one_hot(&[index], 3, &device)));
            let after = grown.forward(x.clone(), Some(&TaskWeights::one_hot(&[index], 4, &device)));
            before.into_data().assert_eq(&after.into_data(), true);
        }
        let general = model.forward(x.clone(), None);
        let new_task = grown.forward(x, Some(&TaskWeights::one_hot(&[3], 4, &device)));
        assert!(relative_error(new_task, general) <= SAME_NETWORK, "a new task starts at the general model");
        assert!(model.with_added_task(Task::Denoise).is_err());
    }

    /// One AdamW step on a mixed batch of tasks 0 and 1, returning parameter bytes before and after.
    fn one_step(set: &TrainableSet) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
        let device = Device::flex().autodiff();
        let model = modulated_micro_model(&Device::flex()).fork(&device).train().with_trainable(set).unwrap();
        let before = snapshot_bytes(&model);
        let tasks = TaskWeights::one_hot(&[0, 1], 3, &device);
        let loss = model.forward(image(2, &device), Some(&tasks)).abs().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut optimizer = AdamWConfig::new().init();
        let model = optimizer.step(1e-3, model, grads);
        (before, snapshot_bytes(&model))
    }

    #[test]
    fn bias_only_training_changes_only_the_chosen_task() {
        let (before, after) = one_step(&TrainableSet::BiasOnly { tasks: vec![Task::Deblur] });
        for (name, bytes) in &before {
            let trains = parse_bias_name(name).is_some_and(|(_, task, _)| task == 1);
            assert_eq!(&after[name] != bytes, trains, "{name} should {}change", if trains { "" } else { "not " });
        }
    }

    #[test]
    fn synchronous_training_updates_the_backbone_and_active_tasks_only() {
        let (before, after) = one_step(&TrainableSet::Synchronous);
        for (name, bytes) in &before {
            let inactive_task = parse_bias_name(name).is_some_and(|(_, task, _)| task == 2);
            if inactive_task {
                assert_eq!(&after[name], bytes, "{name} of the inactive task changed");
            }
        }
        let changed = |needle: &str| before.iter().any(|(name, bytes)| name.contains(needle) && &after[name] != bytes);
        assert!(changed(".qkv.weight") && changed("task_biases.0.") && changed("task_biases.1."));
    }

    #[test]
    fn bias_names_parse() {
        assert_eq!(parse_bias_name("encoder.0.blocks.1.ffn.dwconv.task_biases.3.b2"), Some(("encoder.0.blocks.1.ffn.dwconv", 3, "b2")));
        assert_eq!(parse_bias_name("output.weight"), None);
    }
}
