//! `cargo xtask train --config configs/<name>.toml [--data <folder> ...] [--set a.b=c ...] [--resume]`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_train::{RunOptions, TrainConfig, train};

/// A training config and the overrides given for it (`train`, `bench-train`).
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// The training config.
    #[arg(long)]
    pub config: PathBuf,
    /// Overrides, e.g. `--set optim.lr=1e-4 --set schedule.steps=100`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

impl ConfigArgs {
    /// The config with the overrides applied.
    pub fn load(&self) -> Result<TrainConfig> {
        Ok(TrainConfig::load(&self.config, &self.overrides)?)
    }
}

/// Options of `cargo xtask train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Folders of your own clean photos to train on instead of the data spec's folders (the
    /// spec's degradations and validation rules stay; give the same folders again with
    /// `--resume`).
    #[arg(long = "data", value_name = "FOLDER")]
    photos: Vec<PathBuf>,
    /// Continue the run from its latest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Parent folder of run folders [default: $INSTRUCT_IPT_RUNS, else instruct-ipt/runs in the
    /// user's cache folder].
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Device: cpu, or a GPU backend compiled in (wgpu / cuda).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

/// Trains, checkpointing on Ctrl-C, and prints where the weights went.
pub fn run(args: Args) -> Result<()> {
    let mut config = args.config.load()?;
    if !args.photos.is_empty() {
        config.data.photos = args
            .photos
            .iter()
            .map(|folder| std::path::absolute(folder).with_context(|| format!("--data {}", folder.display())))
            .collect::<Result<_>>()?;
    }
    let device = select_device(args.device)?;
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        eprintln!("stopping after this step (checkpoint follows); press Ctrl-C again to abort");
        if handler_stop.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C handler")?;
    let options =
        RunOptions { runs_dir: args.runs.unwrap_or_else(ipt_train::runs_home), resume: args.resume, progress: true, stop_after: None };
    let summary = train(&config, &options, &device, &stop).with_context(|| format!("training with {}", args.config.config.display()))?;
    println!(
        "{}: {} steps, {:.0} s in total, median {:.3} s/step ({:.1} patches/s)",
        summary.run_dir.display(),
        summary.steps,
        summary.wall_seconds,
        summary.seconds_per_step,
        config.data.batch_size as f64 / summary.seconds_per_step.max(1e-9)
    );
    match summary.weights {
        Some(weights) => println!("weights: {}", weights.display()),
        None => println!("stopped early: continue with --resume"),
    }
    Ok(())
}
