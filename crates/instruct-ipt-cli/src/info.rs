//! `instruct-ipt info`: what a weight file holds.

use std::path::Path;

use anyhow::Result;
use instruct_ipt::{Device, Restorer, parameters_per_group};

/// Prints the metadata of the weight file at `path` and its parameter counts per layer group.
pub fn run(path: &Path, device: &Device) -> Result<()> {
    let restorer = Restorer::load(path, device)?;
    let metadata = restorer.metadata();
    let tasks: Vec<&str> = metadata.tasks.iter().map(|task| task.name()).collect();
    println!("file:            {}", path.display());
    println!("format version:  {}", metadata.format_version);
    println!("tasks:           {}", tasks.join(", "));
    println!("config hash:     {}", instruct_ipt::config_hash(&metadata.config));
    println!("config:          {}", describe_config(&metadata.config));
    for (key, value) in &metadata.provenance {
        println!("provenance.{key}: {value}");
    }
    let groups = parameters_per_group(restorer.model()).map_err(anyhow::Error::msg)?;
    let total: usize = groups.iter().map(|(_, count)| count).sum();
    println!("parameters:      {total}");
    for (group, count) in groups {
        let share = 100.0 * count as f64 / total as f64;
        println!("  {:<18} {count:>10}  {share:5.1}%", group.name());
    }
    Ok(())
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
