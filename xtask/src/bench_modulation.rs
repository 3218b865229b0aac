//! `cargo xtask bench-modulation`: what weight modulation costs on the CPU.
//!
//! - inference: one 256x256 image through the modulated model with a one-hot task, against the
//!   same task merged into the backbone (what `Restorer` runs);
//! - training: one AdamW step on a batch of 64x64 patches with all six tasks mixed, against the
//!   same step of the plain backbone.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_model::{IptModel, ModulationConfig, Preset, Task, TaskWeights};

/// Options of `cargo xtask bench-modulation`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The preset to measure.
    #[arg(long, default_value = "tiny")]
    preset: Preset,
    /// Timed repetitions (after one warm-up); medians are reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Training batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Training patch side.
    #[arg(long, default_value_t = 64)]
    patch: usize,
}

/// Median milliseconds of `repeats` runs of `work` after one warm-up.
fn median_ms(repeats: usize, mut work: impl FnMut()) -> f64 {
    work();
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Waits for the backend to finish `x` (reading one value back).
fn sync(x: Tensor<4>) {
    x.slice([0..1, 0..1, 0..1, 0..1]).into_scalar::<f32>();
}

/// Runs both comparisons and prints the ratios.
pub fn run(args: Args) -> Result<()> {
    let device = select_device(DeviceChoice::Cpu).map_err(anyhow::Error::msg)?;
    let config = args.preset.config();
    let modulation = ModulationConfig::new(Task::ALL.to_vec());
    let modulated = config.init_modulated(&modulation, &device);
    let merged = modulated.merge_task(Task::Derain).map_err(anyhow::Error::msg)?;
    let image = Tensor::<4>::random([1, 3, 256, 256], Distribution::Default, &device);
    let one_task = modulated.task_weights(&[Task::Derain], &device).map_err(anyhow::Error::msg)?;
    let modulated_ms = median_ms(args.repeats, || sync(modulated.forward(image.clone(), Some(&one_task))));
    let merged_ms = median_ms(args.repeats, || sync(merged.forward(image.clone(), None)));
    println!("preset {}, flex CPU, medians of {} runs", args.preset.name(), args.repeats);
    println!("inference 256x256: modulated {modulated_ms:.1} ms, merged {merged_ms:.1} ms, ratio {:.2}", modulated_ms / merged_ms);

    let training = device.clone().autodiff();
    let tasks: Vec<Task> = (0..args.batch).map(|sample| Task::ALL[sample % Task::ALL.len()]).collect();
    let mixed = modulated.task_weights(&tasks, &training).map_err(anyhow::Error::msg)?;
    let plain_ms = step_ms(config.init(&device), None, &args, &training);
    let mixed_ms = step_ms(modulated, Some(&mixed), &args, &training);
    println!(
        "AdamW step, batch {} x {}x{}: plain {plain_ms:.1} ms, mixed 6-task {mixed_ms:.1} ms, ratio {:.2}",
        args.batch,
        args.patch,
        args.patch,
        mixed_ms / plain_ms
    );
    Ok(())
}

/// Median time of one L1-loss AdamW step of `model` on random patches.
fn step_ms(model: IptModel, tasks: Option<&TaskWeights>, args: &Args, device: &Device) -> f64 {
    let mut model = Some(model.fork(device).train());
    let mut optimizer = AdamWConfig::new().init();
    let input = Tensor::<4>::random([args.batch, 3, args.patch, args.patch], Distribution::Default, device);
    let target = Tensor::<4>::random([args.batch, 3, args.patch, args.patch], Distribution::Default, device);
    median_ms(args.repeats, || {
        let current = model.take().expect("the model is put back after every step");
        let loss = (current.forward(input.clone(), tasks) - target.clone()).abs().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &current);
        let updated = optimizer.step(1e-4, current, grads);
        sync(updated.embedder.weight.val());
        model = Some(updated);
    })
}
