//! `cargo xtask bench-data`: patches per second the training sampler delivers, per degradation
//! on one thread and mixed on the worker threads, against the `tiny` model's training step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_data::{DatasetSpec, PatchSampler, SamplerConfig};
use ipt_model::{ModulationConfig, Preset, Task};

use crate::timing::training_step;

/// Options of `cargo xtask bench-data`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The training dataset spec.
    #[arg(long, default_value = "datasets/all-in-one.toml")]
    spec: std::path::PathBuf,
    /// Patch side.
    #[arg(long, default_value_t = 64)]
    patch: usize,
    /// Batch size (of the sampler and of the training step it is compared with).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Patches timed per degradation.
    #[arg(long, default_value_t = 200)]
    patches: usize,
}

/// Times the sampler and one `tiny` training step, and prints patches per second.
pub fn run(args: Args) -> Result<()> {
    let spec = DatasetSpec::load(&args.spec)?;
    let (training, _) = spec.split()?;
    let start = Instant::now();
    let photos = ipt_data::sampler::read_photos(&training, 2)?;
    println!("decoded {} photos in {:.1} s", photos.len(), start.elapsed().as_secs_f64());
    let config = |workers| SamplerConfig { patch_size: args.patch, batch_size: args.batch, workers, ..SamplerConfig::default() };
    println!("patches/s of {}x{} patches (one thread, one degradation):", args.patch, args.patch);
    for (task, degradation) in &spec.tasks {
        let single: BTreeMap<Task, _> = [(*task, degradation.clone())].into();
        let sampler = PatchSampler::new(photos.clone(), &single, config(1))?;
        let start = Instant::now();
        (0..args.patches as u64).for_each(|index| drop(sampler.sample(index)));
        println!("  {task:<10} {:>8.0}", args.patches as f64 / start.elapsed().as_secs_f64());
    }
    for workers in [1, 2] {
        let sampler = Arc::new(PatchSampler::new(photos.clone(), &spec.tasks, config(workers))?);
        let batches = args.patches.div_ceil(args.batch);
        let start = Instant::now();
        sampler.stream(0).take(batches).for_each(drop);
        println!(
            "mixed six-task batches, {workers} worker(s): {:.0} patches/s",
            (batches * args.batch) as f64 / start.elapsed().as_secs_f64()
        );
    }
    let device = select_device(DeviceChoice::Cpu)?;
    let training_device = device.clone().autodiff();
    let model = Preset::Tiny.config().init_modulated(&ModulationConfig::new(Task::ALL.to_vec()), &device);
    let tasks: Vec<Task> = (0..args.batch).map(|sample| Task::ALL[sample % Task::ALL.len()]).collect();
    let weights = model.task_weights(&tasks, &training_device)?;
    let step = training_step(model, Some(&weights), args.batch, args.patch, 3, &training_device);
    println!(
        "tiny training step (batch {}, six tasks mixed): {:.0} ms = {:.1} patches/s",
        args.batch,
        step.total_ms,
        args.batch as f64 * 1000.0 / step.total_ms
    );
    Ok(())
}
