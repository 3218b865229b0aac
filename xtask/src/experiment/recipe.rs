//! `cargo xtask experiment recipe`: which training recipe gets the most out of a fixed wall
//! time? Arms of `configs/experiments/recipe.toml` that each change one thing train for the
//! same `--minutes` (their step counts set from a short timing of each arm) and are read on the
//! validation split of the training photos only: the final validation PSNR per task, and the
//! curves against wall time.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, Result, ensure};
use ipt_train::plot::{Curves, Panel, render_losses, render_panels};
use ipt_train::{RunOptions, TrainConfig, train};

use super::arms::{Context, TrainedArm, train_or_reuse};

/// The config every arm overrides.
const BASE: &str = "configs/experiments/recipe.toml";

/// Steps timed per arm to set its step count (the median step is taken).
const TIMING_STEPS: usize = 12;

/// Validations per arm (the points of each curve, besides step 0).
const VALIDATIONS: usize = 6;

/// One arm: a label, the stem of its run name and its overrides of [`BASE`].
struct RecipeArm {
    label: &'static str,
    stem: &'static str,
    overrides: &'static [&'static str],
}

/// The baseline first; each other arm changes one thing.
const ARMS: &[RecipeArm] = &[
    RecipeArm { label: "baseline (8 x 64², lr 5e-4, L1)", stem: "baseline", overrides: &[] },
    RecipeArm { label: "patches 4 x 128²", stem: "patch128", overrides: &["data.patch_size=128", "data.batch_size=4"] },
    RecipeArm { label: "lr 1e-3", stem: "lr1e-3", overrides: &["optim.lr=1e-3"] },
    RecipeArm {
        label: "Charbonnier + 0.05 FFT",
        stem: "charbonnier-fft",
        overrides: &["loss.l1=0.0", "loss.charbonnier=1.0", "loss.fft=0.05"],
    },
    RecipeArm { label: "lagging-task sampling", stem: "lagging", overrides: &["data.task_sampling=\"lagging\""] },
    RecipeArm {
        label: "wide and shallow (width 20, 7 blocks)",
        stem: "wide-shallow",
        overrides: &[
            "model={ image_channels = 3, width = 20, encoder_blocks = [1, 1, 1, 1], decoder_blocks = [1, 1, 1], refinement_blocks = 0, heads = [1, 2, 4, 8], window_size = 8, grid_size = 8, ffn_expansion = 2.0 }",
        ],
    },
];

impl RecipeArm {
    /// The arm's run name at a budget of `minutes`.
    fn name(&self, minutes: f64) -> String {
        format!("recipe-{}-{minutes}m", self.stem)
    }

    /// The arm's config with `steps` and a validation interval giving [`VALIDATIONS`] points.
    fn config(&self, minutes: f64, steps: usize) -> Result<TrainConfig> {
        let interval = steps.div_ceil(VALIDATIONS).max(1);
        let mut overrides =
            vec![format!("name={}", self.name(minutes)), format!("schedule.steps={steps}"), format!("intervals.validation={interval}")];
        overrides.extend(self.overrides.iter().map(|text| text.to_string()));
        Ok(TrainConfig::load(Path::new(BASE), &overrides)?)
    }

    /// The steps that fill the budget: those of a run already started (so it resumes with the
    /// same config), else the budget over the median of [`TIMING_STEPS`] timed steps.
    fn steps(&self, minutes: f64, context: &Context) -> Result<usize> {
        let recorded = context.runs.join(self.name(minutes)).join("config.toml");
        if recorded.is_file() {
            let text = std::fs::read_to_string(&recorded).with_context(|| recorded.display().to_string())?;
            let table: toml::Table = toml::from_str(&text).with_context(|| recorded.display().to_string())?;
            let steps = table.get("schedule").and_then(|schedule| schedule.get("steps")).and_then(toml::Value::as_integer);
            return steps.map(|steps| steps as usize).with_context(|| format!("{}: no schedule.steps", recorded.display()));
        }
        let mut timing = self.config(minutes, 1_000)?;
        timing.name = format!("recipe-timing-{}", self.stem);
        let folder = context.runs.join(&timing.name);
        let _ = std::fs::remove_dir_all(&folder);
        println!("timing arm '{}' ({TIMING_STEPS} steps)", self.label);
        let options = RunOptions { runs_dir: context.runs.clone(), resume: false, progress: false, stop_after: Some(TIMING_STEPS) };
        let summary = train(&timing, &options, &context.device, &AtomicBool::new(false))?;
        std::fs::remove_dir_all(&folder).with_context(|| folder.display().to_string())?;
        ensure!(summary.seconds_per_step > 0.0, "arm '{}': no step was timed", self.label);
        Ok(((minutes * 60.0 / summary.seconds_per_step) as usize).max(VALIDATIONS))
    }
}

/// Trains (or reuses) every arm for `minutes` and writes `reports/recipe/`.
pub fn run(context: &Context, minutes: f64) -> Result<()> {
    ensure!(minutes > 0.0 && minutes.is_finite(), "--minutes must be positive, got {minutes}");
    let mut trained = Vec::new();
    for arm in ARMS {
        let steps = arm.steps(minutes, context)?;
        trained.push(train_or_reuse(arm.label, arm.config(minutes, steps)?, context)?);
    }
    let curves = trained
        .iter()
        .map(|arm| Curves::read(&arm.run_dir.join("metrics.jsonl")).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&context.out).with_context(|| context.out.display().to_string())?;
    let series: Vec<String> =
        curves[0].validation.keys().filter(|name| name.as_str() != "mean").cloned().chain(["mean".to_string()]).collect();
    let panels: Vec<Panel> = series
        .iter()
        .map(|name| Panel {
            title: name.clone(),
            floor: curves[0].input.get(name).copied(),
            series: trained.iter().zip(&curves).map(|(arm, curves)| (arm.label.clone(), curves.against_minutes(name))).collect(),
        })
        .collect();
    let title = format!("validation PSNR (dB) against training wall time, {minutes} min per arm");
    render_panels(&title, "minutes", "dB", 4, &panels)?.write_png(&context.out.join("validation.png"))?;
    let losses: Vec<(String, Curves)> = trained.iter().zip(&curves).map(|(arm, curves)| (arm.label.clone(), curves.clone())).collect();
    render_losses(&losses, "training loss of each arm")?.write_png(&context.out.join("losses.png"))?;
    let text = readme(context, minutes, &trained, &curves, &series);
    ipt_core::write_atomically(&context.out.join("README.md"), text.as_bytes())?;
    println!("{text}\nwrote {}", context.out.display());
    Ok(())
}

/// The last validation PSNR of series `name`.
fn last(curves: &Curves, name: &str) -> Option<f64> {
    curves.validation.get(name)?.values().next_back().copied()
}

fn readme(context: &Context, minutes: f64, arms: &[TrainedArm], curves: &[Curves], series: &[String]) -> String {
    let mut text = format!(
        "# Training recipe at a fixed wall time\n\nEvery arm trains `{BASE}` from scratch for {minutes} minutes of wall time (its step count set from the median of {TIMING_STEPS} timed steps) and changes one thing against the baseline. Scores are the EMA weights' PSNR on the validation split of the training photos (`[validation]` of the data spec: held out of training, never `eval/`), so the choice is made on validation only.\n\n"
    );
    let _ = write!(text, "| arm | steps | training wall time | {} | Δ mean |\n|---|---|---|", series.join(" | "));
    text.push_str(&"---|".repeat(series.len() + 1));
    text.push('\n');
    let baseline = last(&curves[0], "mean");
    for (arm, curves) in arms.iter().zip(curves) {
        let cells: Vec<String> = series
            .iter()
            .map(|name| match (last(curves, name), curves.input.get(name)) {
                (Some(value), Some(input)) => format!("{value:.2} ({:+.2})", value - input),
                (Some(value), None) => format!("{value:.2}"),
                _ => "—".into(),
            })
            .collect();
        let delta = match (last(curves, "mean"), baseline) {
            (Some(value), Some(base)) => format!("{:+.2}", value - base),
            _ => "—".into(),
        };
        let _ = writeln!(
            text,
            "| {} | {} | {:.0} s | {} | {delta} |",
            arm.label,
            arm.config.schedule.steps,
            arm.wall_seconds,
            cells.join(" | ")
        );
    }
    let best = arms.iter().zip(curves).filter_map(|(arm, curves)| Some((arm, last(curves, "mean")?))).max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((arm, mean)) = best {
        let _ = writeln!(
            text,
            "\nPer task: final validation PSNR (gain over the degraded inputs). Best mean validation PSNR: **{}** ({mean:.2} dB). One seed per arm: differences of a few hundredths of a dB are within what another seed moves.\n",
            arm.label
        );
    }
    text.push_str("![validation PSNR against wall time](validation.png)\n\n![training loss](losses.png)\n\n## Reproduce\n\n");
    let _ = writeln!(text, "```sh\ncargo xtask {}\n```\n", context.command);
    let _ = writeln!(
        text,
        "Seed {} for every arm; runs are kept in `{}/<run>` and reused when their config matches (`<run>/config.toml` is the resolved config). Arms:\n",
        arms[0].config.seed,
        context.runs.display()
    );
    for (arm, recipe) in arms.iter().zip(ARMS) {
        let changes = if recipe.overrides.is_empty() {
            "none".to_string()
        } else {
            recipe.overrides.iter().map(|text| format!("`{text}`")).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(text, "- {}: `{}`, overrides {changes}", arm.label, arm.run_dir.display());
    }
    text
}
