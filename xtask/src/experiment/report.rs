//! `reports/<experiment>/README.md`: the arms' scores against the plain baseline, the loss
//! curves, the findings stated against the paper's, and how to reproduce them.

use std::fmt::Write as _;

use anyhow::Result;
use ipt_eval::Report;
use ipt_train::plot::{Curves, render_losses};

use super::arms::{BASE_CONFIG, Context, SUITE, TrainedArm};

/// Differences within this many dB are read as no change: one run per arm, so smaller gaps
/// are within what another seed moves.
pub const NOISE_DB: f64 = 0.05;

/// How a PSNR difference reads: up, down, or within [`NOISE_DB`].
pub fn direction(delta: f64) -> &'static str {
    if delta > NOISE_DB {
        "better"
    } else if delta < -NOISE_DB {
        "worse"
    } else {
        "unchanged"
    }
}

/// The arms (among `labels`) that do not beat the degraded input on column `column`.
pub fn not_learnt<'a>(report: &Report, labels: impl Iterator<Item = &'a str>, column: usize) -> Vec<&'a str> {
    let floor = psnr(report, ipt_eval::runner::IDENTITY, column);
    labels.filter(|label| matches!((psnr(report, label, column), floor), (Some(value), Some(floor)) if value <= floor + NOISE_DB)).collect()
}

/// Mean PSNR of row `label` on benchmark column `column` (`None` when not scored).
pub fn psnr(report: &Report, label: &str, column: usize) -> Option<f64> {
    report.checkpoints.iter().find(|row| row.label == label)?.results.get(column)?.psnr
}

/// A finished experiment's text parts.
pub struct Findings {
    /// The report's title.
    pub title: String,
    /// What the paper reports, with its numbers.
    pub paper: String,
    /// What we measured, in sentences computed from the scores (agreements and disagreements).
    pub ours: Vec<String>,
    /// The row all Δ columns are taken against.
    pub baseline: String,
    /// More Markdown after the table (an experiment's own analysis).
    pub extra: String,
}

/// The "Reproduce" section: the command, the base config and each arm's run folder.
pub fn reproduce(context: &Context, arms: &[&TrainedArm]) -> String {
    let mut text = format!("## Reproduce\n\n```sh\ncargo xtask {}\n```\n\n", context.command);
    let _ = writeln!(
        text,
        "Arms train from `{BASE_CONFIG}` with overrides and are kept in `{}/<run>` (reused when the resolved config matches; `<run>/config.toml` is the resolved config). Seed {} for every arm.\n",
        context.runs.display(),
        arms.first().map_or(0, |arm| arm.config.seed)
    );
    for arm in arms {
        let _ = writeln!(
            text,
            "- {}: `{}` (`conditioning.kind = \"{}\"`, {} steps, {:.0} s of training)",
            arm.label,
            arm.run_dir.display(),
            arm.config.conditioning.name(),
            arm.config.schedule.steps,
            arm.wall_seconds
        );
    }
    text
}

/// Writes the eval files, `losses.png` and `README.md` into the context's report folder.
pub fn write(context: &Context, arms: &[TrainedArm], report: &Report, findings: &Findings) -> Result<()> {
    std::fs::create_dir_all(&context.out)?;
    report.write(&context.out)?;
    let curves =
        arms.iter().map(|arm| Ok((arm.label.clone(), Curves::read(&arm.run_dir.join("metrics.jsonl"))?))).collect::<Result<Vec<_>>>()?;
    render_losses(&curves, &findings.title)?.write_png(&context.out.join("losses.png"))?;
    let text = readme(context, arms, report, findings);
    ipt_core::write_atomically(&context.out.join("README.md"), text.as_bytes())?;
    println!("{text}");
    println!("wrote {}", context.out.display());
    Ok(())
}

fn readme(context: &Context, arms: &[TrainedArm], report: &Report, findings: &Findings) -> String {
    let mut text = format!("# {}\n\n## What the paper reports\n\n{}\n\n## What we measured\n\n", findings.title, findings.paper);
    for sentence in &findings.ours {
        let _ = writeln!(text, "- {sentence}");
    }
    let columns: Vec<&str> = report.benchmarks.iter().map(|benchmark| benchmark.name.as_str()).collect();
    let _ = write!(
        text,
        "\nMean PSNR (dB; Δ against `{}`):\n\n| arm | {} | training wall time |\n|---|",
        findings.baseline,
        columns.join(" | ")
    );
    text.push_str(&"---|".repeat(columns.len() + 1));
    text.push('\n');
    for row in &report.checkpoints {
        let cells: Vec<String> = (0..columns.len())
            .map(|column| match (psnr(report, &row.label, column), psnr(report, &findings.baseline, column)) {
                (Some(value), Some(base)) if row.label != findings.baseline && arms.iter().any(|arm| arm.label == row.label) => {
                    format!("{value:.2} ({:+.2})", value - base)
                }
                (Some(value), _) => format!("{value:.2}"),
                _ => "—".into(),
            })
            .collect();
        let wall = arms.iter().find(|arm| arm.label == row.label).map_or("—".to_string(), |arm| format!("{:.0} s", arm.wall_seconds));
        let _ = writeln!(text, "| {} | {} | {wall} |", row.label, cells.join(" | "));
    }
    let first = &arms[0].config;
    let _ = write!(
        text,
        "\nEach arm: preset tiny, seed {}, {} steps of {} patches of {}x{} (scale {}), AdamW lr {:e} with warm-up and cosine decay, EMA {} (what is scored), data `{}`. Scored on `{SUITE}` (CBSD68 at σ 25 with seeded unquantised noise; the fixed synthetic motion-blur set of the Kodak24 photos), RGB PSNR on 8-bit outputs, restored in 512-px tiles. Training loss of every arm: `losses.png`; per-image scores: `per_image.csv`; crops: `grids/`.\n\n",
        first.seed,
        first.schedule.steps,
        first.data.batch_size,
        first.data.patch_size,
        first.data.patch_size,
        context.scale,
        first.optim.lr,
        first.ema.decay,
        first.data.spec.display(),
    );
    let _ = writeln!(text, "![training loss](losses.png)\n");
    text.push_str(&findings.extra);
    let arms: Vec<&TrainedArm> = arms.iter().collect();
    text.push_str(&reproduce(context, &arms));
    text
}
