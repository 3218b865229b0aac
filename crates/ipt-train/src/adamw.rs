//! AdamW over the flat parameter buffer ([`FlatLayout`]): the same update as Burn's `AdamW`
//! parameter by parameter (decoupled weight decay, bias correction with each parameter's own
//! step count, `epsilon` added to the corrected second moment's square root), as about twenty
//! operations on the whole buffer instead of about fifteen per parameter tensor.
//!
//! Parameters that get no gradient in a step (tasks absent from the batch, frozen groups) keep
//! their values, moments and step count, as Burn leaves a parameter without a gradient alone;
//! a skipped step (non-finite loss) changes nothing at all.

use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::{Bool, Device, Tensor};

use ipt_kernels::{AdamWHyper, FlatAdamWInputs};

use crate::flat::FlatLayout;

/// Burn's `AdamWConfig` default, which the trainer always used.
const EPSILON: f32 = 1e-5;

/// The optimiser's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AdamWSettings {
    /// First-moment decay.
    pub beta_1: f32,
    /// Second-moment decay.
    pub beta_2: f32,
    /// Decoupled weight decay (multiplied by the learning rate).
    pub weight_decay: f32,
}

/// The optimiser's state, saved in checkpoints.
#[derive(Module, Debug)]
pub(crate) struct AdamWState {
    /// First moments, `[elements]`.
    pub moment_1: Param<Tensor<1>>,
    /// Second moments, `[elements]`.
    pub moment_2: Param<Tensor<1>>,
    /// Updates each parameter has had, `[params]` (whole numbers).
    pub steps: Param<Tensor<1>>,
}

/// AdamW on a flat buffer.
#[derive(Clone, Debug)]
pub(crate) struct FlatAdamW {
    settings: AdamWSettings,
    state: AdamWState,
}

impl FlatAdamW {
    /// A fresh optimiser (zero moments, no steps) for `layout`'s parameters on `device`.
    pub fn new(settings: AdamWSettings, layout: &FlatLayout, device: &Device) -> Self {
        let zeros = |count| Param::from_tensor(Tensor::zeros([count], device)).set_require_grad(false);
        Self {
            settings,
            state: AdamWState { moment_1: zeros(layout.elements()), moment_2: zeros(layout.elements()), steps: zeros(layout.params()) },
        }
    }

    /// The updated parameters (`[elements]`) after one step at learning rate `lr`, where
    /// `update` (`[params]`) says which parameters take part and `grad_scale` (`[params]`)
    /// scales each parameter's gradient (clipping).
    pub fn step(
        &mut self,
        layout: &FlatLayout,
        lr: f64,
        buffers: [Tensor<1>; 2],
        grad_scale: Tensor<1>,
        update: Tensor<1, Bool>,
    ) -> Tensor<1> {
        self.step_with(ipt_kernels::flat_adamw, layout, lr, buffers, grad_scale, update)
    }

    /// [`FlatAdamW::step`] through `kernel` where it runs (`Some`), else in tensor ops.
    fn step_with(
        &mut self,
        kernel: impl Fn(&FlatAdamWInputs, AdamWHyper) -> Option<[Tensor<1>; 3]>,
        layout: &FlatLayout,
        lr: f64,
        [params, grads]: [Tensor<1>; 2],
        grad_scale: Tensor<1>,
        update: Tensor<1, Bool>,
    ) -> Tensor<1> {
        let flags = update.clone().float();
        let steps = self.state.steps.val() + flags.clone();
        let AdamWSettings { beta_1, beta_2, weight_decay } = self.settings;
        let hyper = AdamWHyper { lr: lr as f32, beta_1, beta_2, epsilon: EPSILON, weight_decay };
        let (moment_1, moment_2) = (self.state.moment_1.val(), self.state.moment_2.val());
        let inputs = FlatAdamWInputs {
            params: &params,
            grads: &grads,
            moment_1: &moment_1,
            moment_2: &moment_2,
            grad_scale: &grad_scale,
            steps: &steps,
            update: &flags,
            lengths: layout.runs(),
        };
        let [params, moment_1, moment_2] = kernel(&inputs, hyper).unwrap_or_else(|| in_tensor_ops(layout, &inputs, hyper, update));
        let frozen = |tensor| Param::from_tensor(tensor).set_require_grad(false);
        self.state = AdamWState { moment_1: frozen(moment_1), moment_2: frozen(moment_2), steps: frozen(steps) };
        params
    }

    /// Writes the state to `path` (Burn's record format).
    pub fn save(&self, path: &Path) -> Result<(), burn::store::RecordError> {
        self.state.clone().save_file(path)
    }

    /// The optimiser with its state read from `path`; an error if the file does not hold a
    /// state of this layout's size.
    pub fn load(self, layout: &FlatLayout, path: &Path) -> Result<Self, burn::store::RecordError> {
        let state = self.state.try_load_file(path)?;
        let sizes = (state.moment_1.dims()[0], state.moment_2.dims()[0], state.steps.dims()[0]);
        if sizes != (layout.elements(), layout.elements(), layout.params()) {
            return Err(burn::store::RecordError::Validation(format!(
                "{}: optimiser state for {} values in {} parameters, the model has {} in {}",
                path.display(),
                sizes.0,
                sizes.2,
                layout.elements(),
                layout.params()
            )));
        }
        Ok(Self { state, ..self })
    }
}

/// [`FlatAdamW::step`] in whole-buffer tensor ops (GPUs, where each is one kernel launch):
/// the updated `[params, moment_1, moment_2]`.
fn in_tensor_ops(layout: &FlatLayout, inputs: &FlatAdamWInputs, hyper: AdamWHyper, update: Tensor<1, Bool>) -> [Tensor<1>; 3] {
    let AdamWHyper { lr, beta_1, beta_2, epsilon, weight_decay } = hyper;
    let frozen = layout.spread(update.bool_not());
    // `1 - beta^t` per parameter; a parameter never updated (t = 0) is frozen anyway.
    let correction = |beta: f32| layout.spread(inputs.steps.clone().clamp_min(1.0).mul_scalar(beta.ln()).exp().neg().add_scalar(1.0));
    let grads = inputs.grads.clone() * layout.spread(inputs.grad_scale.clone());
    let moment_1 = inputs.moment_1.clone().mul_scalar(beta_1) + grads.clone().mul_scalar(1.0 - beta_1);
    let moment_2 = inputs.moment_2.clone().mul_scalar(beta_2) + grads.square().mul_scalar(1.0 - beta_2);
    let delta = (moment_1.clone() / correction(beta_1)) / (moment_2.clone() / correction(beta_2)).sqrt().add_scalar(epsilon);
    let params = inputs.params.clone().mul_scalar(1.0 - lr * weight_decay) - delta.mul_scalar(lr);
    let keep = |new: Tensor<1>, old: &Tensor<1>| new.mask_where(frozen.clone(), old.clone());
    [keep(params, inputs.params), keep(moment_1, inputs.moment_1), keep(moment_2, inputs.moment_2)]
}

#[cfg(test)]
mod tests {
    use crate::params::seeded_init;
    use burn::module::ModuleVisitor;
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::{TensorData, Tolerance};
    use ipt_model::{IptModel, ModulationConfig, Preset, Task, TaskWeights};

    use super::*;

    fn values(model: &IptModel) -> Vec<f32> {
        struct All(Vec<f32>);
        impl ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.extend(param.val().into_data().iter::<f32>());
            }
        }
        let mut all = All(Vec::new());
        model.visit(&mut all);
        all.0
    }

    /// A random loss of the model for a batch of one task, so that the other task's biases get
    /// no gradient.
    fn loss(model: &IptModel, task: usize, seed: u64) -> Tensor<1> {
        let device = model.devices()[0].clone();
        // Fixed values, not `Tensor::random`: tests running in parallel share the generator.
        let values = |offset: u64| {
            let values = (0..3 * 64 * 64).map(|i| ((i as u64 * 7919 + seed * 31 + offset) % 97) as f32 / 97.0).collect::<Vec<f32>>();
            Tensor::<4>::from_data(TensorData::new(values, [1, 3, 64, 64]), &device)
        };
        let (x, probe) = (values(0), values(13).sub_scalar(0.5));
        let tasks = TaskWeights::one_hot(&[task], 2, &device);
        (model.forward(x, Some(&tasks)) * probe).sum()
    }

    /// Both formulations (flex's kernel and the tensor ops GPUs run) match Burn's AdamW over
    /// steps where one task's biases have no gradient at first, and a step where no parameter
    /// takes part changes nothing, bit for bit.
    #[test]
    fn matches_burns_adamw_with_parameters_missing_gradients_and_frozen_on_a_skipped_step() {
        type Kernel = fn(&FlatAdamWInputs, AdamWHyper) -> Option<[Tensor<1>; 3]>;
        let formulations: [Kernel; 2] = [ipt_kernels::flat_adamw, |_, _| None];
        let device = Device::flex();
        let autodiff = device.clone().autodiff();
        let tasks = ModulationConfig::new(vec![Task::Denoise, Task::Derain]);
        // Seeded under the lock the seeded-initialisation test takes: tests share the generator.
        let start = seeded_init(|| Preset::Tiny.config().init_modulated(&tasks, &device), &device, 3).fork(&autodiff).train();
        let layout = FlatLayout::of(&start, &device);
        let settings = AdamWSettings { beta_1: 0.9, beta_2: 0.99, weight_decay: 1e-2 };
        for kernel in formulations {
            let mut burn_optimizer =
                AdamWConfig::new().with_beta_1(0.9).with_beta_2(0.99).with_weight_decay(1e-2).with_epsilon(EPSILON).init();
            let mut flat_optimizer = FlatAdamW::new(settings, &layout, &device);
            let (mut reference, mut flat) = (start.clone(), start.clone());
            let ones = Tensor::ones([layout.params()], &device);
            // Task 1 is absent from the first two steps: its biases start late, with t = 1.
            for (step, task) in [0, 0, 1, 0].into_iter().enumerate() {
                let lr = 1e-2 / (step + 1) as f64;
                let grads = GradientsParams::from_grads(loss(&reference, task, step as u64).backward(), &reference);
                reference = burn_optimizer.step(lr, reference, grads);

                let mut grads = GradientsParams::from_grads(loss(&flat, task, step as u64).backward(), &flat);
                let (gradients, present) = layout.gradients(&flat, &mut grads, &device);
                assert!(present.contains(&false), "one task's biases have no gradient");
                let buffers = [layout.values(&flat), gradients];
                let params = flat_optimizer.step_with(kernel, &layout, lr, buffers, ones.clone(), layout.mask(&present, &device));
                flat = layout.write(flat, &params);
            }
            // Updates are ~lr = 1e-2; Adam's normalisation magnifies the forward passes' rounding
            // differences where the second moment is tiny, hence 1e-5 absolute.
            let (expected, got) = (values(&reference), values(&flat));
            let count = got.len();
            TensorData::new(got.clone(), [count])
                .assert_approx_eq::<f32>(&TensorData::new(expected, [count]), Tolerance::rel_abs(1e-4, 1e-5));

            let mut grads = GradientsParams::from_grads(loss(&flat, 0, 9).backward(), &flat);
            let (gradients, present) = layout.gradients(&flat, &mut grads, &device);
            let none = layout.mask(&vec![false; present.len()], &device);
            let params = flat_optimizer.step_with(kernel, &layout, 1e-2, [layout.values(&flat), gradients], ones, none);
            let kept = values(&layout.write(flat, &params));
            assert!(kept.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "a step without parameters changed one");
        }
    }
}
