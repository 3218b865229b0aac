//! `instruct-ipt info`: what a weight file holds.

use std::path::Path;

use anyhow::Result;
use instruct_ipt::{BUNDLED_WEIGHTS, Device, ParameterReport, Restorer, option_costs};

/// Prints the metadata of the weight file at `path` (the bundled weights when `None`) and its
/// parameter counts per layer group.
pub fn run(path: Option<&Path>, device: &Device) -> Result<()> {
    let restorer = Restorer::load_or_bundled(path, device)?;
    let metadata = restorer.metadata();
    let tasks: Vec<&str> = metadata.tasks.iter().map(|task| task.name()).collect();
    println!("file:            {}", path.map_or(BUNDLED_WEIGHTS.into(), |path| path.display().to_string()));
    println!("format version:  {}", metadata.format_version);
    println!("content:         {:?}", metadata.content);
    println!("tasks:           {}", tasks.join(", "));
    println!("config hash:     {}", instruct_ipt::config_hash(&metadata.config));
    println!("config:          {}", describe_config(&metadata.config));
    for (key, value) in &metadata.provenance {
        println!("provenance.{key}: {value}");
    }
    if let Some(modulation) = restorer.model().modulation() {
        let targets: Vec<&str> = modulation.targets.iter().map(|group| group.name()).collect();
        println!("task biases:     rank {:?} on {}", modulation.rank, targets.join(", "));
    }
    if let Some(conditioning) = restorer.model().feature_conditioning() {
        println!("conditioning:    {:?}", conditioning.method);
    }
    let report = ParameterReport::of(restorer.model())?;
    println!("backbone parameters: {}", report.backbone());
    for (group, count) in &report.groups {
        println!("  {:<18} {count:>10}  {:5.1}%", group.name(), report.percent_of_backbone(*count));
    }
    for (task, count) in &report.tasks {
        println!("task bias {:<10} {count:>10}  {:5.1}% of the backbone", task.name(), report.percent_of_backbone(*count));
    }
    for (group, count) in &report.bias_groups {
        println!("  biases on {:<12} {count:>10}  (all tasks)", group.name());
    }
    if report.conditioning > 0 {
        println!(
            "conditioning parameters: {} ({:.1}% of the backbone)",
            report.conditioning,
            report.percent_of_backbone(report.conditioning)
        );
    }
    print_option_costs(&metadata.config, &metadata.tasks, device);
    Ok(())
}

/// What each conditioning option would add to this backbone for these tasks (configs choose one
/// with `conditioning = { kind = "..." }`).
fn print_option_costs(config: &instruct_ipt::IptConfig, tasks: &[instruct_ipt::Task], device: &Device) {
    if tasks.is_empty() {
        return;
    }
    let (plain, costs) = option_costs(config, tasks, device);
    println!("conditioning options on this backbone ({plain} parameters) for {} tasks, extra parameters:", tasks.len());
    for (kind, extra) in costs {
        println!("  {kind:<20} {extra:>10}  {:+6.1}%", 100.0 * extra as f64 / plain as f64);
    }
}

fn describe_config(config: &instruct_ipt::IptConfig) -> String {
    format!(
        "width {}, encoder blocks {:?}, decoder blocks {:?}, refinement {}, heads {:?}, window {}, grid {}, ffn x{}",
        config.width,
        config.encoder_blocks,
        config.decoder_blocks,
        config.refinement_blocks,
        config.heads,
        config.window_size,
        config.grid_size,
        config.ffn_expansion
    )
}
