//! Arms of an experiment: training runs of the shared base config, trained or reused, then
//! scored together on the fixed eval sets.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result, bail};
use instruct_ipt::{Device, Restorer};
use ipt_eval::{Candidate, EvalOptions, Report, Suite, evaluate};
use ipt_model::Task;
use ipt_train::{RunOptions, TrainConfig, train};

/// The base training config every arm overrides.
pub const BASE_CONFIG: &str = "configs/experiments/denoise-deblur.toml";

/// The fixed sets every arm is scored on.
pub const SUITE: &str = "configs/eval/denoise-deblur.toml";

/// What every experiment shares.
pub struct Context {
    /// Multiplier of the training steps.
    pub scale: f64,
    /// Parent of the run folders.
    pub runs: PathBuf,
    /// Folder of the fixed synthetic eval sets.
    pub sets: PathBuf,
    /// Where models train and restore.
    pub device: Device,
    /// The report folder.
    pub out: PathBuf,
    /// The command line after `xtask`, for the report.
    pub command: String,
}

/// One arm: a label for the tables and the overrides of the base config that make it.
#[derive(Clone, Debug)]
pub struct Arm {
    /// Row label.
    pub label: String,
    /// Run name stem (`dd-<stem>`; the scale is appended when it is not 1).
    pub stem: String,
    /// `key=value` overrides of the base config (besides name, steps and phases).
    pub overrides: Vec<String>,
    /// Training steps as a multiple of the base config's, before the scale.
    pub steps: f64,
    /// The phases; empty = one synchronous phase over every task.
    pub phases: Vec<PhasePlan>,
}

/// One phase of an arm: its share of the steps, what trains, and on which tasks.
#[derive(Clone, Debug)]
pub struct PhasePlan {
    /// Share of the arm's steps (the last phase takes the rest).
    pub share: f64,
    /// `synchronous`, `backbone_only`, `bias_only` or `conditioning_only`.
    pub trainable: &'static str,
    /// The tasks sampled; `None` = every task of the data spec.
    pub tasks: Option<Vec<Task>>,
}

impl Arm {
    /// An arm of the base schedule with conditioning `kind`.
    pub fn conditioned(label: &str, kind: &str) -> Self {
        Self {
            label: label.into(),
            stem: kind.into(),
            overrides: vec![format!("conditioning.kind={kind}")],
            steps: 1.0,
            phases: Vec::new(),
        }
    }
}

/// A trained arm.
pub struct TrainedArm {
    /// Row label.
    pub label: String,
    /// Its resolved config.
    pub config: TrainConfig,
    /// The run folder.
    pub run_dir: PathBuf,
    /// The exported (EMA) weights.
    pub weights: PathBuf,
    /// Training wall time over all sessions, seconds.
    pub wall_seconds: f64,
}

impl Arm {
    /// The arm's resolved training config at `scale`.
    pub fn config(&self, scale: f64) -> Result<TrainConfig> {
        let base = TrainConfig::load(Path::new(BASE_CONFIG), &[])?;
        let steps = ((base.schedule.steps as f64 * self.steps * scale).round() as usize).max(1);
        let name = if scale == 1.0 { format!("dd-{}", self.stem) } else { format!("dd-{}-x{scale}", self.stem) };
        let mut overrides = vec![format!("name={name}"), format!("schedule.steps={steps}")];
        overrides.extend(self.overrides.iter().cloned());
        if !self.phases.is_empty() {
            let tasks = ipt_data::DatasetSpec::load(&base.data.spec)?.task_list();
            overrides.push(format!("schedule.phases={}", phases(&self.phases, steps, &tasks)));
        }
        Ok(TrainConfig::load(Path::new(BASE_CONFIG), &overrides)?)
    }

    /// Trains the arm, or reuses its finished run when the resolved config is the same.
    pub fn train(&self, context: &Context) -> Result<TrainedArm> {
        train_or_reuse(&self.label, self.config(context.scale)?, context)
    }
}

/// Trains `config` as arm `label` in `<runs>/<config.name>`, continues it when it was stopped,
/// or reuses it when finished; a folder holding another config is refused.
pub fn train_or_reuse(label: &str, config: TrainConfig, context: &Context) -> Result<TrainedArm> {
    let run_dir = context.runs.join(&config.name);
    let weights = run_dir.join("final.safetensors");
    let recorded = run_dir.join("config.toml");
    let started = recorded.is_file();
    if started {
        let text = std::fs::read_to_string(&recorded).with_context(|| recorded.display().to_string())?;
        if text != config.to_toml() {
            bail!("{} holds a run of another config: move it away to train arm '{label}' again", run_dir.display());
        }
    }
    if !weights.is_file() {
        println!("training arm '{label}' ({} steps) in {}", config.schedule.steps, run_dir.display());
        let options = RunOptions { runs_dir: context.runs.clone(), resume: started, progress: true, stop_after: None };
        train(&config, &options, &context.device, &AtomicBool::new(false))?;
    } else {
        println!("reusing arm '{label}' from {}", run_dir.display());
    }
    let metadata = ipt_model::read_metadata(&weights)?;
    let wall_seconds = metadata.provenance.get("wall_seconds").and_then(|seconds| seconds.parse().ok()).unwrap_or(f64::NAN);
    Ok(TrainedArm { label: label.into(), config, run_dir, weights, wall_seconds })
}

/// `schedule.phases` as an inline TOML array: each share of `steps` (the last takes the rest);
/// phases without tasks sample `all_tasks`.
fn phases(plans: &[PhasePlan], steps: usize, all_tasks: &[Task]) -> String {
    let mut given = 0;
    let parts: Vec<String> = plans
        .iter()
        .enumerate()
        .map(|(index, plan)| {
            let count = if index + 1 == plans.len() { steps - given } else { (steps as f64 * plan.share).round() as usize };
            given += count;
            let tasks: Vec<String> = plan.tasks.as_deref().unwrap_or(all_tasks).iter().map(|task| format!("\"{task}\"")).collect();
            format!("{{ steps = {count}, tasks = [{}], trainable = \"{}\" }}", tasks.join(", "), plan.trainable)
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Scores the arms (and, as `evaluate` always does, the degraded input as the floor) on the fixed sets.
pub fn score(arms: &[TrainedArm], context: &Context) -> Result<Report> {
    let suite = Suite::load(Path::new(SUITE))?;
    let mut candidates = Vec::new(); // `evaluate` adds the identity row itself
    for arm in arms {
        let restorer = Restorer::load(&arm.weights, &context.device)?.with_tile(Some(instruct_ipt::DEFAULT_TILE));
        candidates.push(Candidate::from_restorer(arm.label.clone(), Some(arm.weights.clone()), restorer));
    }
    let options = EvalOptions { sets_dir: context.sets.clone(), limit: None, progress: true, grids: Some(context.out.join("grids")) };
    Ok(evaluate(&suite, candidates, &options)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_split_the_steps_exactly_and_name_their_tasks() {
        let plans = [
            PhasePlan { share: 2.0 / 3.0, trainable: "backbone_only", tasks: None },
            PhasePlan { share: 1.0 / 3.0, trainable: "bias_only", tasks: Some(vec![Task::Deblur]) },
        ];
        let text = phases(&plans, 500, &[Task::Denoise, Task::Deblur]);
        let parsed: toml::Table = toml::from_str(&format!("phases = {text}")).unwrap();
        let phases = parsed["phases"].as_array().unwrap();
        let steps: Vec<i64> = phases.iter().map(|phase| phase["steps"].as_integer().unwrap()).collect();
        assert_eq!(steps, [333, 167]);
        assert_eq!(phases[0]["tasks"].as_array().unwrap().len(), 2);
        assert_eq!(phases[1]["tasks"].as_array().unwrap()[0].as_str(), Some("deblur"));
        assert_eq!(phases[1]["trainable"].as_str(), Some("bias_only"));
    }
}
