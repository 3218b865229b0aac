//! One optimisation step, kept on the device: forward, backward, clipping, the AdamW update and
//! the EMA, with nothing read back to the host. Everything after the backward pass runs on the
//! flat parameter buffer ([`FlatLayout`]): a few large operations instead of a few per
//! parameter tensor.
//!
//! A non-finite loss skips the update on the device: no parameter takes part in the optimiser
//! step, so the parameters, the moments and the EMA keep their values bit for bit. The loop
//! reads the losses back in one go at its log intervals ([`PendingLosses`]), which is when it
//! learns that steps were skipped. With a [`PhaseClock`] that times, each phase ends with a
//! device synchronisation, so queued work is charged to the phase that queued it
//! (`cargo xtask bench-train`).
//!
//! In half precision ([`Precision`]) the model computes in the half type while `params` and
//! the EMA stay `f32`; in `f16` the loss is scaled ([`LossScale`]) and a step whose gradients
//! overflow is skipped on the device like a non-finite loss.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use ipt_data::sampler::Batch;
use ipt_model::IptModel;
use serde::Serialize;

use crate::adamw::FlatAdamW;
use crate::config::LossConfig;
use crate::flat::FlatLayout;
use crate::loss::restoration_loss;
use crate::precision::{LossScale, Precision};

/// What a step changes: the trained model, its EMA and the optimiser state.
pub(crate) struct Trainee {
    /// The model being trained, on the autodiff device; its parameters are views of `params`
    /// (of `params` cast to the half type in half precision).
    pub model: IptModel,
    /// The model's parameter values, flat in `layout`'s order, on the plain device (the
    /// optimiser's input; only [`Stepper::step`] changes the model's values).
    params: Tensor<1>,
    /// The exponential moving average of its weights, flat in `layout`'s order, on the plain
    /// device ([`Trainee::ema_model`] is the model).
    pub ema: Tensor<1>,
    /// AdamW's state.
    pub optimizer: FlatAdamW,
    /// Where each parameter sits in the flat buffers.
    pub layout: FlatLayout,
    /// The float type of the passes.
    pub precision: Precision,
    /// The loss scale, in `f16`.
    pub loss_scale: Option<LossScale>,
}

impl Trainee {
    /// Training `model` (`f32`, on the autodiff device, gradients on) in `precision` with
    /// `optimizer`, its EMA starting at `ema`'s weights, the loss scale (in `f16`) at
    /// `loss_scale` or else at its initial value.
    pub fn new(
        model: IptModel,
        ema: &IptModel,
        optimizer: FlatAdamW,
        layout: FlatLayout,
        precision: Precision,
        loss_scale: Option<LossScale>,
    ) -> Self {
        let (params, ema) = (layout.values(&model), layout.values(ema));
        let device = params.device();
        let loss_scale = precision.scales_loss().then(|| loss_scale.unwrap_or_else(|| LossScale::new(&device)));
        Self { model: layout.write(model, &params.clone().cast(precision.dtype())), params, ema, optimizer, layout, precision, loss_scale }
    }

    /// The EMA weights as an `f32` model on the plain device.
    pub fn ema_model(&self) -> IptModel {
        self.layout.write(self.model.valid(), &self.ema)
    }

    /// The trained weights in `f32` (the model itself holds half-precision copies in half
    /// precision), on the autodiff device: what checkpoints save.
    pub fn master_model(&self) -> IptModel {
        self.layout.write(self.model.clone(), &self.params)
    }
}

/// Runs training steps with one loss and one clipping rule.
pub(crate) struct Stepper<'a> {
    /// The autodiff device the batch goes to.
    pub device: Device,
    /// The loss terms.
    pub loss: &'a LossConfig,
    /// The largest L2 norm of each parameter's gradient (Burn's per-parameter norm clipping),
    /// `None` for no clipping.
    pub max_norm: Option<f32>,
}

impl Stepper<'_> {
    /// One step on `batch` at learning rate `lr` and EMA decay `ema_decay`; returns the updated
    /// state and the loss, still on the device (detached).
    pub fn step(&self, trainee: Trainee, batch: Batch, lr: f64, ema_decay: f32, clock: &mut PhaseClock) -> (Trainee, Tensor<1>) {
        let Trainee { model, params, ema, mut optimizer, layout, precision, loss_scale } = trainee;
        let dtype = precision.dtype();
        let size = batch.patch_size;
        let shape = [batch.tasks.len(), 3, size, size];
        let input = Tensor::<4>::from_data(TensorData::new(batch.degraded, shape), &self.device).cast(dtype);
        let target = Tensor::<4>::from_data(TensorData::new(batch.clean, shape), &self.device);
        let weights = (!model.tasks().is_empty()).then(|| {
            let weights = model.task_weights(&batch.tasks, &self.device).expect("sampled tasks are the model's tasks");
            if precision.is_f32() { weights } else { ipt_model::TaskWeights::new(weights.weights().clone().cast(dtype)) }
        });
        clock.lap(Phase::Data);

        let output = model.forward(input, weights.as_ref()).cast(FloatDType::F32);
        let loss = restoration_loss(output, target, self.loss);
        clock.lap(Phase::Forward);
        let scaled = match &loss_scale {
            Some(scale) => loss.clone() * scale.value().autodiff(),
            None => loss.clone(),
        };
        let mut grads = GradientsParams::from_grads(scaled.backward(), &model);
        clock.lap(Phase::Backward);

        let loss = loss.inner();
        let device = loss.device();
        let (mut grads, present) = layout.gradients(&model, &mut grads, &device);
        let mut skip = loss.clone().is_finite().bool_not();
        let loss_scale = loss_scale.map(|scale| {
            grads = grads.clone() / scale.value().expand([layout.elements()]);
            let overflow = grads.clone().is_finite().bool_not().any();
            skip = skip.clone().bool_or(overflow.clone());
            scale.update(overflow)
        });
        let grad_scale = match self.max_norm {
            Some(max_norm) => clipping_scales(&layout, grads.clone(), max_norm),
            None => Tensor::ones([layout.params()], &device),
        };
        let update = layout.mask(&present, &device).bool_and(skip.clone().expand([layout.params()]).bool_not());
        clock.lap(Phase::Clipping);

        let params = optimizer.step(&layout, lr, [params, grads], grad_scale, update);
        let model = layout.write(model, &params.clone().cast(dtype));
        clock.lap(Phase::Optimiser);

        let averaged = ema.clone().mul_scalar(ema_decay) + params.clone().mul_scalar(1.0 - ema_decay);
        let ema = averaged.mask_where(skip.expand([layout.elements()]), ema);
        clock.lap(Phase::Ema);
        (Trainee { model, params, ema, optimizer, layout, precision, loss_scale }, loss)
    }
}

/// The factor that brings each parameter's gradient to an L2 norm of at most `max_norm`
/// (Burn's `GradientClipping::Norm`, parameter by parameter), `[params]`.
fn clipping_scales(layout: &FlatLayout, grads: Tensor<1>, max_norm: f32) -> Tensor<1> {
    layout.norms(grads).add_scalar(f32::MIN_POSITIVE).recip().mul_scalar(max_norm).clamp_max(1.0)
}

/// The phases of a training step, in order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    /// Waiting for the batch and uploading it.
    Data,
    /// The forward pass and the loss.
    Forward,
    /// The backward pass.
    Backward,
    /// Gathering the gradients into the flat buffer, and clipping them.
    Clipping,
    /// The AdamW update, and writing the parameters back into the model.
    Optimiser,
    /// The EMA update.
    Ema,
    /// Reading losses back and logging.
    Sync,
}

/// Milliseconds spent in each phase of a training step.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct PhaseMillis {
    /// Waiting for the batch and uploading it.
    pub data: f64,
    /// The forward pass and the loss.
    pub forward: f64,
    /// The backward pass.
    pub backward: f64,
    /// Gathering the gradients into the flat buffer, and clipping them.
    pub clipping: f64,
    /// The AdamW update.
    pub optimiser: f64,
    /// The EMA update.
    pub ema: f64,
    /// Reading losses back at log intervals, and logging.
    pub sync: f64,
}

impl PhaseMillis {
    /// The sum of the phases.
    pub fn total(&self) -> f64 {
        self.data + self.forward + self.backward + self.clipping + self.optimiser + self.ema + self.sync
    }

    fn slot(&mut self, phase: Phase) -> &mut f64 {
        match phase {
            Phase::Data => &mut self.data,
            Phase::Forward => &mut self.forward,
            Phase::Backward => &mut self.backward,
            Phase::Clipping => &mut self.clipping,
            Phase::Optimiser => &mut self.optimiser,
            Phase::Ema => &mut self.ema,
            Phase::Sync => &mut self.sync,
        }
    }
}

/// Times the phases of steps when asked to (synchronising the device at each phase's end);
/// otherwise does nothing, so training never waits for the device.
pub(crate) struct PhaseClock {
    timing: Option<(Device, Instant)>,
    step: PhaseMillis,
}

impl PhaseClock {
    /// A clock that does nothing.
    pub fn off() -> Self {
        Self { timing: None, step: PhaseMillis::default() }
    }

    /// A clock that times phases on `device`, starting now.
    pub fn timing(device: &Device) -> Self {
        Self { timing: Some((device.clone(), Instant::now())), step: PhaseMillis::default() }
    }

    /// Ends `phase`: waits for the device, charges the time since the last lap to `phase`.
    pub fn lap(&mut self, phase: Phase) {
        if let Some((device, since)) = &mut self.timing {
            device.sync().expect("the device ran the step's work");
            *self.step.slot(phase) += since.elapsed().as_secs_f64() * 1e3;
            *since = Instant::now();
        }
    }

    /// The phases timed since the last call, and starts a new step.
    pub fn finish_step(&mut self) -> PhaseMillis {
        std::mem::take(&mut self.step)
    }
}

/// Losses of steps done but not read back yet, with their steps.
#[derive(Default)]
pub(crate) struct PendingLosses {
    steps: Vec<usize>,
    losses: Vec<Tensor<1>>,
}

impl PendingLosses {
    /// Keeps step `step`'s loss on the device.
    pub fn push(&mut self, step: usize, loss: Tensor<1>) {
        self.steps.push(step);
        self.losses.push(loss);
    }

    /// Every pending `(step, loss)`, read back in one transfer.
    pub fn read(&mut self) -> Vec<(usize, f32)> {
        if self.losses.is_empty() {
            return Vec::new();
        }
        let values: Vec<f32> =
            Tensor::cat(std::mem::take(&mut self.losses), 0).into_data().convert::<f32>().try_into_vec().expect("losses are floats");
        std::mem::take(&mut self.steps).into_iter().zip(values).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::params::seeded_init;
    use burn::module::{ModuleVisitor, Param};
    use ipt_model::{ModulationConfig, Preset, Task};

    use super::*;
    use crate::adamw::AdamWSettings;

    const TASKS: [Task; 2] = [Task::Denoise, Task::Derain];

    fn trainee(device: &Device, precision: Precision) -> Trainee {
        let model = seeded_init(|| Preset::Tiny.config().init_modulated(&ModulationConfig::new(TASKS.to_vec()), device), device, 1);
        let layout = FlatLayout::of(&model, device);
        let optimizer = FlatAdamW::new(AdamWSettings { beta_1: 0.9, beta_2: 0.999, weight_decay: 1e-4 }, &layout, device);
        Trainee::new(model.clone().fork(&device.clone().autodiff()).train(), &model, optimizer, layout, precision, None)
    }

    fn batch(seed: u64, poison: bool) -> Batch {
        let size = 64;
        let values =
            |offset: u64| (0..2 * 3 * size * size).map(|i| ((i as u64 * 7919 + seed + offset) % 97) as f32 / 97.0).collect::<Vec<f32>>();
        let mut degraded = values(0);
        if poison {
            degraded[5] = f32::NAN;
        }
        Batch { index: seed, patch_size: size, degraded, clean: values(13), tasks: TASKS.to_vec() }
    }

    /// Every parameter of a module, in module order, flattened.
    fn parameters(module: &IptModel) -> Vec<Tensor<1>> {
        struct Flat(Vec<Tensor<1>>);
        impl ModuleVisitor for Flat {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let count = param.shape().num_elements();
                self.0.push(param.val().reshape([count]));
            }
        }
        let mut all = Flat(Vec::new());
        module.visit(&mut all);
        all.0
    }

    /// Every parameter of a module, in module order, as bits.
    fn bits(module: &IptModel) -> Vec<u32> {
        parameters(module).into_iter().flat_map(|values| values.into_data().iter::<f32>().map(f32::to_bits).collect::<Vec<_>>()).collect()
    }

    /// The float types of a module's parameters.
    fn dtypes(module: &IptModel) -> std::collections::BTreeSet<String> {
        parameters(module).iter().map(|values| format!("{:?}", values.dtype())).collect()
    }

    /// The default loss, for [`stepper`].
    static LOSS: LossConfig = LossConfig { l1: 1.0, charbonnier: 0.0, psnr: 0.0, fft: 0.0 };

    /// A stepper of the default loss with clipping on `device`'s autodiff twin.
    fn stepper(device: &Device) -> Stepper<'static> {
        Stepper { device: device.clone().autodiff(), loss: &LOSS, max_norm: Some(1.0) }
    }

    #[test]
    fn a_non_finite_batch_leaves_weights_and_ema_bit_identical_and_training_goes_on() {
        let device = Device::flex();
        let stepper = stepper(&device);
        let mut clock = PhaseClock::off();
        let (trainee, first) = stepper.step(trainee(&device, Precision::F32), batch(1, false), 1e-3, 0.9, &mut clock);
        assert!(first.into_scalar::<f32>().is_finite());
        let (model, ema) = (bits(&trainee.model), bits(&trainee.ema_model()));

        let (trainee, skipped) = stepper.step(trainee, batch(2, true), 1e-3, 0.9, &mut clock);
        assert!(skipped.into_scalar::<f32>().is_nan());
        assert!(bits(&trainee.model) == model, "a skipped step changed the weights");
        assert!(bits(&trainee.ema_model()) == ema, "a skipped step changed the EMA");

        let (trainee, next) = stepper.step(trainee, batch(3, false), 1e-3, 0.9, &mut clock);
        assert!(next.into_scalar::<f32>().is_finite());
        let after = bits(&trainee.model);
        assert!(after != model, "the next finite step updates the weights (they still require gradients)");
        assert!(after.iter().all(|&b| f32::from_bits(b).is_finite()), "the optimiser's moments stayed finite");
    }

    /// In half precision the model computes in the half type while the master weights, their
    /// update and the EMA stay `f32`; the first step's loss agrees with `f32`'s to the half
    /// type's precision, and training moves the weights.
    #[test]
    fn half_precision_trains_f32_master_weights_with_the_passes_in_the_half_type() {
        let device = Device::flex();
        let stepper = stepper(&device);
        let mut clock = PhaseClock::off();
        let (_, reference) = stepper.step(trainee(&device, Precision::F32), batch(1, false), 1e-3, 0.9, &mut clock);
        let reference = reference.into_scalar::<f32>();
        for (precision, name, tolerance) in [(Precision::Bf16, "BF16", 2e-2), (Precision::F16, "F16", 5e-3)] {
            let start = trainee(&device, precision);
            let master = bits(&start.master_model());
            assert_eq!(dtypes(&start.model), [name.to_string()].into(), "the model computes in {name}");
            let (trainee, first) = stepper.step(start, batch(1, false), 1e-3, 0.9, &mut clock);
            let first = first.into_scalar::<f32>();
            assert!((first - reference).abs() < tolerance * reference, "{name}: loss {first} against f32's {reference}");
            for model in [trainee.master_model(), trainee.ema_model()] {
                assert_eq!(dtypes(&model), ["F32".to_string()].into(), "master weights and EMA stay f32");
            }
            assert!(bits(&trainee.master_model()) != master, "{name}: the step updated the master weights");
            assert_eq!(trainee.loss_scale.is_some(), precision == Precision::F16, "only f16 scales the loss");
        }
    }

    /// An `f16` step whose scaled gradients overflow is skipped on the device: master weights
    /// and EMA bit-identical, the scale halved; the next step trains.
    #[test]
    fn an_f16_gradient_overflow_skips_the_step_and_halves_the_loss_scale() {
        let device = Device::flex();
        let stepper = stepper(&device);
        let mut clock = PhaseClock::off();
        let mut trainee = trainee(&device, Precision::F16);
        let huge = 1e30;
        trainee.loss_scale.as_mut().unwrap().scale = Param::from_tensor(Tensor::full([1], huge, &device)).set_require_grad(false);
        let (master, ema) = (bits(&trainee.master_model()), bits(&trainee.ema_model()));
        let (trainee, loss) = stepper.step(trainee, batch(1, false), 1e-3, 0.9, &mut clock);
        assert!(loss.into_scalar::<f32>().is_finite(), "the loss itself is finite");
        assert!(bits(&trainee.master_model()) == master, "an overflowing step changed the weights");
        assert!(bits(&trainee.ema_model()) == ema, "an overflowing step changed the EMA");
        assert_eq!(trainee.loss_scale.as_ref().unwrap().value().into_scalar::<f32>(), huge / 2.0);
    }

    #[test]
    fn pending_losses_read_back_in_step_order() {
        let device = Device::flex();
        let mut pending = PendingLosses::default();
        assert!(pending.read().is_empty());
        for (step, value) in [(4, 0.5f32), (5, f32::NAN), (6, 0.25)] {
            pending.push(step, Tensor::from_data(TensorData::new(vec![value], [1]), &device));
        }
        let read = pending.read();
        assert_eq!(read.iter().map(|(step, _)| *step).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!((read[0].1, read[2].1), (0.5, 0.25));
        assert!(read[1].1.is_nan());
        assert!(pending.read().is_empty(), "read empties the queue");
    }
}
