//! Every feature-conditioning method: shapes, gradients, identity at initialisation where the
//! method promises it, save/load, and that it really listens to the task.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use burn_store::{ModuleSnapshot, bridge};

use crate::test_support::micro_config;
use crate::{FeatureConditioning, FeatureMethod, IptModel, Task, TaskWeights, load_weights, save_weights};

const TASKS: [Task; 3] = [Task::Denoise, Task::Deblur, Task::Derain];

/// Methods whose added layers start at zero, so a fresh model is its backbone.
fn starts_as_backbone(method: &FeatureMethod) -> bool {
    matches!(method, FeatureMethod::ExternalControl | FeatureMethod::Pip { .. } | FeatureMethod::AdaptIr { .. })
}

fn conditioned(method: FeatureMethod, device: &Device) -> IptModel {
    micro_config().init_conditioned(&FeatureConditioning { tasks: TASKS.to_vec(), method }, device)
}

/// Replaces every all-zero conditioning tensor (zero convs, NAF residual scales) by small
/// random values, so gradients flow everywhere and outputs depend on the task.
fn wake_zero_parameters(model: IptModel) -> IptModel {
    let device = model.device();
    let mut model = model;
    let tensors = model
        .collect(None, None, false)
        .into_iter()
        .filter(|tensor| tensor.name.starts_with("conditioning."))
        .filter_map(|tensor| {
            let values: Vec<f32> = bridge::to_data(&tensor).unwrap().try_to_vec().unwrap();
            if values.iter().any(|&value| value != 0.0) {
                return None;
            }
            let shape = tensor.shape.as_slice().to_vec();
            let random: Vec<f32> =
                Tensor::<1>::random([values.len()], Distribution::Normal(0.0, 0.1), &device).into_data().try_to_vec().unwrap();
            Some(bridge::from_data(burn::tensor::TensorData::new(random, shape), tensor.name.clone(), None))
        })
        .collect();
    let result = model.apply(tensors, None, None, false);
    assert!(result.errors.is_empty(), "{result}");
    model
}

fn image(batch: usize, device: &Device) -> Tensor<4> {
    Tensor::random([batch, 3, 16, 16], Distribution::Default, device)
}

fn max_difference(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn every_method_keeps_the_image_shape_at_any_size() {
    let device = Device::flex();
    for method in FeatureMethod::all() {
        let name = method.name();
        let model = conditioned(method, &device);
        let tasks = TaskWeights::one_hot(&[0, 2], 3, &device);
        let output = model.restore(Tensor::random([2, 3, 37, 53], Distribution::Default, &device), Some(&tasks));
        assert_eq!(output.dims(), [2, 3, 37, 53], "{name}");
        assert_eq!(model.tasks(), TASKS, "{name}");
    }
}

/// Path of every float parameter with its gradient's largest magnitude (0 when it has none).
struct GradientMagnitudes<'a> {
    grads: &'a GradientsParams,
    path: Vec<String>,
    found: Vec<(String, f32)>,
}

impl<'a> GradientMagnitudes<'a> {
    fn of(model: &IptModel, grads: &'a GradientsParams) -> Vec<(String, f32)> {
        let mut visitor = Self { grads, path: Vec::new(), found: Vec::new() };
        model.visit(&mut visitor);
        visitor.found
    }
}

impl ModuleVisitor for GradientMagnitudes<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let magnitude = self.grads.get::<D>(param.id).map_or(0.0, |grad| grad.abs().max().into_scalar::<f32>());
        self.found.push((self.path.join("."), magnitude));
    }
}

#[test]
fn gradients_reach_every_conditioning_parameter() {
    let device = Device::flex().autodiff();
    for method in FeatureMethod::all() {
        let name = method.name();
        let model = wake_zero_parameters(conditioned(method, &Device::flex())).fork(&device).train();
        let tasks = TaskWeights::one_hot(&[0, 1, 2], 3, &device);
        let loss = model.forward(image(3, &device), Some(&tasks)).abs().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let found = GradientMagnitudes::of(&model, &grads);
        let conditioning: Vec<_> = found.iter().filter(|(path, _)| path.starts_with("conditioning.")).collect();
        assert!(!conditioning.is_empty(), "{name} has conditioning parameters");
        for (path, magnitude) in conditioning {
            assert!(*magnitude > 0.0, "{name}: no gradient reaches {path}");
        }
    }
}

#[test]
fn zero_initialised_methods_start_as_their_backbone() {
    let device = Device::flex();
    for method in FeatureMethod::all().into_iter().filter(starts_as_backbone) {
        let name = method.name();
        let model = conditioned(method, &device);
        let mut backbone = micro_config().init(&device);
        let shared = model.collect(None, None, false).into_iter().filter(|tensor| !tensor.name.starts_with("conditioning.")).collect();
        let result = backbone.apply(shared, None, None, false);
        assert!(result.errors.is_empty() && result.missing.is_empty(), "{name}: {result}");
        let x = image(2, &device);
        let tasks = TaskWeights::one_hot(&[1, 2], 3, &device);
        let difference = max_difference(model.forward(x.clone(), Some(&tasks)), backbone.forward(x, None));
        assert!(difference <= 1e-6, "{name}: differs from its backbone by {difference}");
    }
}

#[test]
fn task_aware_methods_answer_to_the_task() {
    let device = Device::flex();
    // PromptIR is task-blind by design: its prompts are chosen from the features.
    for method in FeatureMethod::all().into_iter().filter(|method| !matches!(method, FeatureMethod::PromptIr { .. })) {
        let name = method.name();
        let model = wake_zero_parameters(conditioned(method, &device));
        let x = image(1, &device);
        let run = |task: usize| model.forward(x.clone(), Some(&TaskWeights::one_hot(&[task], 3, &device)));
        assert!(max_difference(run(0), run(2)) > 1e-5, "{name}: two tasks give the same output");
    }
}

#[test]
fn every_method_round_trips_through_a_weight_file() {
    let device = Device::flex();
    let folder = tempfile::tempdir().unwrap();
    for method in FeatureMethod::all() {
        let name = method.name();
        let model = wake_zero_parameters(conditioned(method, &device));
        let path = folder.path().join(format!("{name}.safetensors"));
        save_weights(&model, &crate::WeightMetadata::new(micro_config(), TASKS.to_vec()), &path).unwrap();
        let (loaded, metadata) = load_weights(&path, &device).unwrap();
        assert_eq!(metadata.conditioning.as_ref(), model.feature_conditioning(), "{name}");
        assert_eq!(loaded.num_params(), model.num_params(), "{name}");
        let x = image(2, &device);
        let tasks = TaskWeights::one_hot(&[2, 0], 3, &device);
        let (a, b) = (model.forward(x.clone(), Some(&tasks)), loaded.forward(x, Some(&tasks)));
        a.into_data().assert_eq(&b.into_data(), true);
    }
}

#[test]
fn weight_replacement_has_no_shared_output_layer() {
    let device = Device::flex();
    let model = conditioned(FeatureMethod::WeightReplacement, &device);
    assert!(model.output.is_none());
    let backbone = micro_config().init(&device).num_params();
    let output_layer = 4 * 3 * 9 + 3;
    assert_eq!(model.num_params(), backbone - output_layer + TASKS.len() * output_layer);
    // Without task weights no output layer speaks: the image passes unchanged.
    let x = image(1, &device);
    assert!(max_difference(model.forward(x.clone(), None), x) <= 1e-6);
}

#[test]
fn methods_parse_from_config_text_with_defaults_and_reject_typos() {
    let parsed: FeatureMethod = toml::from_str("kind = \"adapt_ir\"\nrank = 3").unwrap();
    assert_eq!(parsed, FeatureMethod::AdaptIr { reduction: 8, rank: 3 });
    let parsed: FeatureMethod = toml::from_str("kind = \"external_control\"").unwrap();
    assert_eq!(parsed, FeatureMethod::ExternalControl);
    let error = toml::from_str::<FeatureMethod>("kind = \"pip\"\ntokenz = 2").unwrap_err().to_string();
    assert!(error.contains("tokenz"), "{error}");
    for method in FeatureMethod::all() {
        let text = toml::to_string(&method).unwrap();
        assert_eq!(toml::from_str::<FeatureMethod>(&text).unwrap(), method, "{text}");
    }
}

#[test]
fn conditioning_only_training_freezes_the_backbone() {
    use crate::TrainableSet;
    let device = Device::flex().autodiff();
    let model = wake_zero_parameters(conditioned(FeatureMethod::ExternalControl, &Device::flex()))
        .fork(&device)
        .train()
        .with_trainable(&TrainableSet::ConditioningOnly)
        .unwrap();
    let tasks = TaskWeights::one_hot(&[0, 1], 3, &device);
    let loss = model.forward(image(2, &device), Some(&tasks)).abs().mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let found = GradientMagnitudes::of(&model, &grads);
    assert!(found.iter().any(|(path, _)| path.starts_with("conditioning.")));
    for (path, magnitude) in found {
        assert_eq!(magnitude > 0.0, path.starts_with("conditioning."), "{path}: gradient {magnitude}");
    }
    assert!(micro_config().init(&Device::flex()).with_trainable(&TrainableSet::ConditioningOnly).is_err());
}
