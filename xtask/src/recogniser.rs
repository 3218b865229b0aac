//! `cargo xtask train-recogniser`: trains the degradation recogniser of blind restoration on
//! examples synthesized from the dataset spec's training photos, scores it on examples of its
//! validation photos, and writes the weights.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use instruct_ipt::Device;
use ipt_data::DatasetSpec;
use ipt_data::sampler::read_photos;
use ipt_recognise::Task;
use ipt_recognise::training::{RecogniserConfig, train};

use crate::parity::workspace_root;

/// Options of `cargo xtask train-recogniser`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The training config.
    #[arg(long, default_value = "configs/recogniser/default.toml")]
    config: PathBuf,
    /// The photos and degradations (the same spec the restorer trains on).
    #[arg(long, default_value = "datasets/all-in-one.toml")]
    spec: PathBuf,
    /// Where to write the weights.
    #[arg(long, default_value = "target/recogniser.safetensors")]
    out: PathBuf,
    /// Override the config's step count (a quick look).
    #[arg(long)]
    steps: Option<usize>,
}

/// Trains, reports the held-out accuracy and writes the weights.
pub fn run(args: Args) -> Result<()> {
    let root = workspace_root();
    let config_path = root.join(&args.config);
    let text = std::fs::read_to_string(&config_path).with_context(|| format!("{}: cannot read", config_path.display()))?;
    let mut config: RecogniserConfig = toml::from_str(&text).with_context(|| format!("{}", config_path.display()))?;
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    let spec = DatasetSpec::load(&root.join(&args.spec))?;
    let (training, validation) = spec.split()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (training, validation) = (read_photos(&training, threads)?, read_photos(&validation, threads)?);
    println!("{} training photos, {} validation photos, {} steps of {}", training.len(), validation.len(), config.steps, config.batch_size);
    let started = Instant::now();
    let (recogniser, report) = train(&config, &training, &validation, &spec.tasks, &Device::flex(), |step, loss| {
        if step % 100 == 0 {
            println!("step {step}: loss {loss:.4} ({:.0} s)", started.elapsed().as_secs_f64());
        }
    });
    let accuracy = report.accuracy;
    let (singles, all, pairs) = accuracy.counts;
    println!(
        "loss {:.4} -> {:.4} in {:.0} s; held out: single degradation {:.1}% ({singles}), clean vs degraded {:.1}% ({all}), both of a pair {:.1}% ({pairs})",
        report.loss_first_and_last.0,
        report.loss_first_and_last.1,
        started.elapsed().as_secs_f64(),
        100.0 * accuracy.single,
        100.0 * accuracy.clean_vs_degraded,
        100.0 * accuracy.pairs
    );
    let per_task: Vec<String> = Task::ALL
        .iter()
        .zip(accuracy.per_task)
        .map(|(task, (hits, total))| format!("{task} {:.1}% ({total})", 100.0 * hits as f64 / total.max(1) as f64))
        .collect();
    println!("single degradation, per task: {}", per_task.join(", "));
    let provenance = format!("cargo xtask train-recogniser --config {} ({} steps)", args.config.display(), config.steps);
    let out = root.join(&args.out);
    recogniser.save(&out, &provenance)?;
    println!("wrote {}", out.display());
    Ok(())
}
