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

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use ipt_data::sampler::Batch;
use ipt_model::IptModel;
use serde::Serialize;

use crate::adamw::FlatAdamW;
use crate::config::LossConfig;
use crate::flat::FlatLayout;
use crate::loss::restoration_loss;

/// What a step changes: the trained model, its EMA and the optimiser state.
pub(crate) struct Trainee {
    /// The model being trained, on the autodiff device; its parameters are views of `params`.
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
}

impl Trainee {
    /// Training `model` (on the autodiff device, gradients on) with `optimizer`, its EMA
    /// starting at `ema`'s weights.
    pub fn new(model: IptModel, ema: &IptModel, optimizer: FlatAdamW, layout: FlatLayout) -> Self {
        let (params, ema) = (layout.values(&model), layout.values(ema));
        Self { model: layout.write(model, &params), params, ema, optimizer, layout }
    }

    /// The EMA weights as a model on the plain device.
    pub fn ema_model(&self) -> IptModel {
        self.layout.write(self.model.valid(), &self.ema)
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
        let Trainee { model, params, ema, mut optimizer, layout } = trainee;
        let size = batch.patch_size;
        let shape = [batch.tasks.len(), 3, size, size];
        let input = Tensor::<4>::from_data(TensorData::new(batch.degraded, shape), &self.device);
        let target = Tensor::<4>::from_data(TensorData::new(batch.clean, shape), &self.device);
        let weights = (!model.tasks().is_empty())
            .then(|| model.task_weights(&batch.tasks, &self.device).expect("sampled tasks are the model's tasks"));
        clock.lap(Phase::Data);

        let loss = restoration_loss(model.forward(input, weights.as_ref()), target, self.loss);
        clock.lap(Phase::Forward);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clock.lap(Phase::Backward);

        let loss = loss.inner();
        let device = loss.device();
        let skip = loss.clone().is_finite().bool_not();
        let (grads, present) = layout.gradients(&model, &mut grads, &device);
        let grad_scale = match self.max_norm {
            Some(max_norm) => clipping_scales(&layout, grads.clone(), max_norm),
            None => Tensor::ones([layout.params()], &device),
        };
        let update = layout.mask(&present, &device).bool_and(skip.clone().expand([layout.params()]).bool_not());
        clock.lap(Phase::Clipping);

        let params = optimizer.step(&layout, lr, [params, grads], grad_scale, update);
        let model = layout.write(model, &params);
        clock.lap(Phase::Optimiser);

        let averaged = ema.clone().mul_scalar(ema_decay) + params.clone().mul_scalar(1.0 - ema_decay);
        let ema = averaged.mask_where(skip.expand([layout.elements()]), ema);
        clock.lap(Phase::Ema);
        (Trainee { model, params, ema, optimizer, layout }, loss)
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

    fn trainee(device: &Device) -> Trainee {
        let model = seeded_init(|| Preset::Tiny.config().init_modulated(&ModulationConfig::new(TASKS.to_vec()), device), device, 1);
        let layout = FlatLayout::of(&model, device);
        let optimizer = FlatAdamW::new(AdamWSettings { beta_1: 0.9, beta_2: 0.999, weight_decay: 1e-4 }, &layout, device);
        Trainee::new(model.clone().fork(&device.clone().autodiff()).train(), &model, optimizer, layout)
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

    /// Every parameter of a module, in module order, as bits.
    fn bits(module: &IptModel) -> Vec<u32> {
        struct Bits(Vec<u32>);
        impl ModuleVisitor for Bits {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.extend(param.val().into_data().iter::<f32>().map(f32::to_bits));
            }
        }
        let mut all = Bits(Vec::new());
        module.visit(&mut all);
        all.0
    }

    #[test]
    fn a_non_finite_batch_leaves_weights_and_ema_bit_identical_and_training_goes_on() {
        let device = Device::flex();
        let loss = LossConfig::default();
        let stepper = Stepper { device: device.clone().autodiff(), loss: &loss, max_norm: Some(1.0) };
        let mut clock = PhaseClock::off();
        let (trainee, first) = stepper.step(trainee(&device), batch(1, false), 1e-3, 0.9, &mut clock);
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
