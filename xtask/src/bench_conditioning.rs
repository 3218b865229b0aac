//! `cargo xtask bench-conditioning`: what each way of conditioning on the task costs on the CPU.
//!
//! - weight modulation at inference: one 256x256 image with a task's bias applied on the fly,
//!   against the same task merged into the backbone (what `Restorer` runs);
//! - every option (none, weight modulation, each feature method): extra parameters, inference of
//!   one 256x256 image with one task, and one AdamW step on a batch of 64x64 patches mixing all
//!   six tasks (what training pays).

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_model::{FeatureConditioning, FeatureMethod, IptModel, ModulationConfig, Preset, Task};

use crate::timing::{median_ms, sync, training_step};

/// Options of `cargo xtask bench-conditioning`.
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

/// Runs the comparisons and prints a table.
pub fn run(args: Args) -> Result<()> {
    let device = select_device(DeviceChoice::Cpu)?;
    let config = args.preset.config();
    let image = Tensor::<4>::random([1, 3, 256, 256], Distribution::Default, &device);
    println!("preset {}, flex CPU, medians of {} runs", args.preset.name(), args.repeats);

    let modulated = config.init_modulated(&ModulationConfig::new(Task::ALL.to_vec()), &device);
    let merged = modulated.merge_task(Task::Derain)?;
    let one_task = modulated.task_weights(&[Task::Derain], &device)?;
    let modulated_ms = median_ms(args.repeats, || sync(modulated.forward(image.clone(), Some(&one_task))));
    let merged_ms = median_ms(args.repeats, || sync(merged.forward(image.clone(), None)));
    println!(
        "weight modulation, inference 256x256: on the fly {modulated_ms:.1} ms, merged {merged_ms:.1} ms, ratio {:.2}",
        modulated_ms / merged_ms
    );

    let training = device.clone().autodiff();
    let tasks: Vec<Task> = (0..args.batch).map(|sample| Task::ALL[sample % Task::ALL.len()]).collect();
    let mut options: Vec<(&str, IptModel)> = vec![("none", config.init(&device)), ("weight_modulation", modulated)];
    for method in FeatureMethod::all() {
        let name = method.name();
        options.push((name, config.init_conditioned(&FeatureConditioning { tasks: Task::ALL.to_vec(), method }, &device)));
    }
    let plain_params = options[0].1.num_params() as f64;
    let mut plain_step = None;
    println!(
        "| conditioning | extra parameters | inference 256x256 (ms) | AdamW step {}x{}x{}, 6 tasks mixed (ms) | step vs none |",
        args.batch, args.patch, args.patch
    );
    println!("|---|---|---|---|---|");
    for (name, model) in options {
        let extra = 100.0 * (model.num_params() as f64 - plain_params) / plain_params;
        let (inference_weights, step_weights) = if model.tasks().is_empty() {
            (None, None)
        } else {
            let one = model.task_weights(&[Task::Derain], &device)?;
            (Some(one), Some(model.task_weights(&tasks, &training)?))
        };
        // Weight modulation runs merged at inference, so its row shows the merged model.
        let inference_ms = match name {
            "weight_modulation" => merged_ms,
            _ => median_ms(args.repeats, || sync(model.forward(image.clone(), inference_weights.as_ref()))),
        };
        let step_ms = training_step(model, step_weights.as_ref(), args.batch, args.patch, args.repeats, &training).total_ms;
        let baseline = *plain_step.get_or_insert(step_ms);
        println!("| {name} | {extra:+.1}% | {inference_ms:.1} | {step_ms:.1} | {:.2} |", step_ms / baseline);
    }
    Ok(())
}
