//! Timing helpers shared by the benchmarks: medians, backend sync, one AdamW training step.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use ipt_model::{IptModel, TaskWeights};
use serde::{Deserialize, Serialize};

/// Median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median milliseconds of `repeats` runs of `work` after one warm-up.
pub fn median_ms(repeats: usize, mut work: impl FnMut()) -> f64 {
    work();
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    median(&mut times)
}

/// Waits for the backend to finish `x` (reading one value back).
pub fn sync(x: Tensor<4>) {
    x.slice([0..1, 0..1, 0..1, 0..1]).into_scalar::<f32>();
}

/// Median times of the phases of one training step.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub struct StepTimes {
    /// The whole step.
    pub total_ms: f64,
    /// Forward pass and L1 loss.
    pub forward_ms: f64,
    /// Backward pass and gradient collection.
    pub backward_ms: f64,
    /// The AdamW update.
    pub optimizer_ms: f64,
}

/// Times L1-loss AdamW steps of `model` on random `batch x 3 x patch x patch` inputs on
/// `device` (an autodiff device): one warm-up, then the median of `repeats` steps per phase.
/// Every phase ends by waiting for the device, so queued GPU work counts in its own phase.
pub fn training_step(
    model: IptModel,
    tasks: Option<&TaskWeights>,
    batch: usize,
    patch: usize,
    repeats: usize,
    device: &Device,
) -> StepTimes {
    let mut model = Some(model.fork(device).train());
    let mut optimizer = AdamWConfig::new().init();
    let input = Tensor::<4>::random([batch, 3, patch, patch], Distribution::Default, device);
    let target = Tensor::<4>::random([batch, 3, patch, patch], Distribution::Default, device);
    let mut phases: [Vec<f64>; 4] = Default::default();
    for step in 0..=repeats.max(1) {
        let current = model.take().expect("the model is put back after every step");
        let start = Instant::now();
        let loss = (current.forward(input.clone(), tasks) - target.clone()).abs().mean();
        loss.clone().into_scalar::<f32>();
        let forward = start.elapsed();
        let grads = GradientsParams::from_grads(loss.backward(), &current);
        device.sync().expect("the device ran the backward pass");
        let backward = start.elapsed();
        let updated = optimizer.step(1e-4, current, grads);
        device.sync().expect("the device ran the update");
        let total = start.elapsed();
        model = Some(updated);
        if step > 0 {
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            phases[0].push(ms(total));
            phases[1].push(ms(forward));
            phases[2].push(ms(backward - forward));
            phases[3].push(ms(total - backward));
        }
    }
    let [total, forward, backward, optimizer_phase] = phases.map(|mut times| median(&mut times));
    StepTimes { total_ms: total, forward_ms: forward, backward_ms: backward, optimizer_ms: optimizer_phase }
}
