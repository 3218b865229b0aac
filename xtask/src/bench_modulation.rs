//! `cargo xtask bench-modulation`: what weight modulation costs on the CPU.
//!
//! - inference: one 256x256 image through the modulated model with a one-hot task, against the
//!   same task merged into the backbone (what `Restorer` runs);
//! - training: one AdamW step on a batch of 64x64 patches with all six tasks mixed, against the
//!   same step of the plain backbone.

use anyhow::Result;
use burn::tensor::{Distribution, Tensor};
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_model::{ModulationConfig, Preset, Task};

use crate::timing::{median_ms, sync, training_step};

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
    let plain_ms = training_step(config.init(&device), None, args.batch, args.patch, args.repeats, &training).total_ms;
    let mixed_ms = training_step(modulated, Some(&mixed), args.batch, args.patch, args.repeats, &training).total_ms;
    println!(
        "AdamW step, batch {} x {}x{}: plain {plain_ms:.1} ms, mixed 6-task {mixed_ms:.1} ms, ratio {:.2}",
        args.batch,
        args.patch,
        args.patch,
        mixed_ms / plain_ms
    );
    Ok(())
}
