//! `cargo xtask bench-train --config <file> [--set ...] [--device cpu|wgpu|cuda] [--steps N]`:
//! the real training loop's step (same code path as `train`), timed phase by phase with the
//! device synchronised at each phase's end, printed as one JSON line.

use anyhow::Result;
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_train::bench_steps;

use crate::train::ConfigArgs;
use serde_json::json;

/// Options of `cargo xtask bench-train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Device: cpu, or a GPU backend compiled in (wgpu / cuda).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first (allocation, autotuning).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

/// Runs the steps and prints `{"config", "device", ...StepBenchmark}` on one line.
pub fn run(args: Args) -> Result<()> {
    let config = args.config.load()?;
    let device = select_device(args.device)?;
    let measured = bench_steps(&config, &device, args.warmup, args.steps)?;
    let mut line = json!({"config": args.config.config.display().to_string(), "overrides": args.config.overrides, "device": format!("{:?}", args.device)});
    if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), serde_json::to_value(&measured)?) {
        line.extend(fields);
    }
    println!("{line}");
    Ok(())
}
