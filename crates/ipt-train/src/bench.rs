//! `cargo xtask bench-train`: the training loop's own step, timed phase by phase.
//!
//! The model, optimiser, sampler and [`Stepper`] are the ones `train` builds from the same
//! config (its first phase); there is no run folder, no validation and no checkpoint. Task
//! sampling is balanced (lagging-task shares need a validation pass; they change which tasks a
//! batch holds, not what a step costs). The losses are read back at the config's log interval,
//! as in training.

use burn::module::Module;
use burn::tensor::Device;
use ipt_data::DatasetSpec;
use ipt_data::sampler::read_photos;
use serde::Serialize;

use crate::flat::FlatLayout;
use crate::step::{PendingLosses, Phase, PhaseClock, PhaseMillis, Stepper, Trainee};
use crate::trainer::{batch_stream, effective_phases, initial_model, max_norm, optimizer};
use crate::{TrainConfig, TrainError};

/// What `bench-train` measured over the timed steps.
#[derive(Clone, Debug, Serialize)]
pub struct StepBenchmark {
    /// Timed steps (after the warm-up).
    pub steps: usize,
    /// Patches in a batch.
    pub batch_size: usize,
    /// Side of a patch.
    pub patch_size: usize,
    /// Median wall time of a step, ms.
    pub median_step_ms: f64,
    /// Mean wall time of a step, ms (the phases' means add up to it).
    pub mean_step_ms: f64,
    /// Mean ms per step of each phase.
    pub phases_ms: PhaseMillis,
    /// Patches trained per second (batch size over the median step).
    pub patches_per_s: f64,
    /// Mean loss of the timed steps (a sanity check that they trained).
    pub mean_loss: f64,
}

/// Runs `warmup` untimed steps, then `steps` timed ones, of `config`'s training on `device`.
pub fn bench_steps(config: &TrainConfig, device: &Device, warmup: usize, steps: usize) -> Result<StepBenchmark, TrainError> {
    if steps == 0 {
        return Err(TrainError::Invalid("bench-train needs at least one timed step".into()));
    }
    let mut spec = DatasetSpec::load(&config.data.spec)?;
    if !config.data.photos.is_empty() {
        spec = spec.with_clean_folders(&config.data.photos);
    }
    config.precision.check(device)?;
    let (training, _) = spec.split()?;
    let photos = read_photos(&training, 2)?;
    let initial = initial_model(config, &spec, device)?;
    let autodiff = device.clone().autodiff();
    let layout = FlatLayout::of(&initial, device);
    let mut trainee =
        Trainee::new(initial.clone().fork(&autodiff).train(), &initial, optimizer(config, &layout, device), layout, config.precision, None);
    let stepper = Stepper { device: autodiff.clone(), loss: &config.loss, max_norm: max_norm(config) };
    let first_phase = &effective_phases(config, &spec)?[0];
    let mut batches = batch_stream(&photos, &spec, config, (0, first_phase), None, 0)?;
    let mut pending = PendingLosses::default();
    let mut clock = PhaseClock::off();
    let mut timed = Vec::with_capacity(steps);
    let mut losses = Vec::new();
    for step in 0..warmup + steps {
        if step == warmup {
            // The warm-up's losses are not the timed steps' to read back.
            let _ = pending.read();
            clock = PhaseClock::timing(&autodiff);
        }
        let batch = batches.next().expect("the sampler streams without end");
        let lr = config.optim.lr_at(step, config.schedule.steps);
        let loss;
        (trainee, loss) = stepper.step(trainee, batch, lr, config.ema.decay, &mut clock);
        pending.push(step, loss);
        if (step + 1) % config.intervals.log == 0 || step + 1 == warmup + steps {
            losses.extend(pending.read().into_iter().filter(|(step, _)| *step >= warmup).map(|(_, loss)| loss));
        }
        clock.lap(Phase::Sync);
        if step >= warmup {
            timed.push(clock.finish_step());
        }
    }
    Ok(summarise(&timed, &losses, config))
}

/// Median and mean step, mean phases, speed and mean loss of the timed steps.
fn summarise(timed: &[PhaseMillis], losses: &[f32], config: &TrainConfig) -> StepBenchmark {
    let mut totals: Vec<f64> = timed.iter().map(PhaseMillis::total).collect();
    totals.sort_by(f64::total_cmp);
    let median = totals[totals.len() / 2];
    let count = timed.len() as f64;
    let mean = |field: fn(&PhaseMillis) -> f64| timed.iter().map(field).sum::<f64>() / count;
    let phases_ms = PhaseMillis {
        data: mean(|p| p.data),
        forward: mean(|p| p.forward),
        backward: mean(|p| p.backward),
        clipping: mean(|p| p.clipping),
        optimiser: mean(|p| p.optimiser),
        ema: mean(|p| p.ema),
        sync: mean(|p| p.sync),
    };
    StepBenchmark {
        steps: timed.len(),
        batch_size: config.data.batch_size,
        patch_size: config.data.patch_size,
        median_step_ms: median,
        mean_step_ms: phases_ms.total(),
        phases_ms,
        patches_per_s: config.data.batch_size as f64 / (median / 1e3),
        mean_loss: losses.iter().map(|&loss| f64::from(loss)).sum::<f64>() / losses.len().max(1) as f64,
    }
}
