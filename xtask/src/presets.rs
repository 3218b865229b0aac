//! `cargo xtask presets`: parameter counts of every preset, plain and with six task biases.

use anyhow::Result;
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_model::{ModulationConfig, ParameterReport, Preset, Task};

/// Prints the backbone size of each preset and what each task's bias adds.
pub fn run() -> Result<()> {
    let device = select_device(DeviceChoice::Cpu)?;
    let modulation = ModulationConfig::new(Task::ALL.to_vec());
    println!("{:<7} {:>12} {:>14} {:>10}", "preset", "backbone", "bias per task", "% added");
    for preset in Preset::ALL {
        let model = preset.config().init_modulated(&modulation, &device);
        let report = ParameterReport::of(&model)?;
        let per_task = report.tasks.first().map_or(0, |(_, count)| *count);
        println!("{:<7} {:>12} {:>14} {:>9.2}%", preset.name(), report.backbone(), per_task, report.percent_of_backbone(per_task));
    }
    println!("(task biases: {:?} on {:?})", modulation.rank, modulation.targets);
    Ok(())
}
