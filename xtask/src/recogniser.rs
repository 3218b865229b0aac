//! `cargo xtask train-recogniser`: trains the degradation recogniser of blind restoration on
//! examples synthesized from the dataset spec's training photos, scores it on examples of its
//! validation photos, and writes the weights.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use instruct_ipt::Device;
use ipt_data::DatasetSpec;
use ipt_data::sampler::read_photos;
use ipt_recognise::training::{Accuracy, RecogniserConfig, STRENGTHS, share, train};
use ipt_recognise::{Recogniser, Task};

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
    let initial = match &config.init_weights {
        Some(file) => {
            let path = config_path.parent().unwrap_or(&root).join(file);
            println!("starting from {}", path.display());
            Some(Recogniser::load(&path, &Device::flex()).with_context(|| format!("{}: init_weights", config_path.display()))?)
        }
        None => None,
    };
    let started = Instant::now();
    let (recogniser, report) = train(&config, initial.as_ref(), &training, &validation, &spec.tasks, &Device::flex(), |step, loss| {
        if step % 100 == 0 {
            println!("step {step}: loss {loss:.4} ({:.0} s)", started.elapsed().as_secs_f64());
        }
    });
    println!(
        "loss {:.4} -> {:.4} in {:.0} s; held out (validation photos):",
        report.loss_first_and_last.0,
        report.loss_first_and_last.1,
        started.elapsed().as_secs_f64()
    );
    println!("{}", accuracy_table(&report.accuracy));
    if let Some(initial) = &report.initial_accuracy {
        println!("the starting weights on the same examples:\n{}", accuracy_table(initial));
    }
    let provenance = format!("cargo xtask train-recogniser --config {} ({} steps)", args.config.display(), config.steps);
    let out = root.join(&args.out);
    recogniser.save(&out, &provenance)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// A Markdown table of `accuracy`: overall, by strength and per task.
pub fn accuracy_table(accuracy: &Accuracy) -> String {
    let percent = |counts: (usize, usize)| format!("{:.1}% ({}/{})", 100.0 * share(counts), counts.0, counts.1);
    let mut lines = vec![
        "| examples | recognised |".to_string(),
        "|---|---|".to_string(),
        format!("| one degradation: the likeliest is it | {} |", percent(accuracy.single)),
        format!("| clean vs degraded verdict | {} |", percent(accuracy.clean_vs_degraded)),
        format!("| clean: judged clean | {} |", percent(accuracy.clean_kept)),
        format!("| degraded: not judged clean | {} |", percent(accuracy.degraded_seen)),
        format!("| two degradations: the two likeliest are they | {} |", percent(accuracy.pairs)),
    ];
    for ((name, from, to), band) in STRENGTHS.iter().zip(accuracy.by_strength) {
        lines.push(format!("| one degradation, {name} (input {from:.0}-{to:.0} dB) | {} |", percent(band)));
    }
    for (task, counts) in Task::ALL.iter().zip(accuracy.per_task) {
        lines.push(format!("| one degradation, {} | {} |", task.degradation(), percent(counts)));
    }
    lines.join("\n")
}
