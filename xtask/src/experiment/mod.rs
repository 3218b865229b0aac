//! `cargo xtask experiment <table1|sync|sensitivity|rank|recipe>`: the paper's findings at a
//! scale a 2-core CPU can run, and our own training recipe, as commands that train their arms,
//! score them and write `reports/<experiment>/README.md` with tables, plots, the exact
//! command, seeds and wall time.
//!
//! Every paper arm is a training run of `configs/experiments/denoise-deblur.toml` with a few
//! overrides, named after the arm and the scale (`<runs>/dd-<arm>[-x<scale>]`, `<runs>` being
//! `$INSTRUCT_IPT_RUNS` or the user's cache folder unless `--runs` says): an arm already
//! trained with the same resolved config is reused (so experiments share arms, and a killed
//! experiment continues where it stopped), one with a different config is refused.

mod arms;
mod rank;
mod recipe;
mod report;
mod sensitivity;
mod sync;
mod table1;
mod weights;

use std::path::PathBuf;

use anyhow::Result;
use instruct_ipt::backend::{DeviceChoice, select_device};

/// Options of `cargo xtask experiment`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which finding to reproduce.
    experiment: Experiment,
    /// Multiplies every arm's training steps (1 = about an hour per experiment on 2 cores;
    /// larger on a GPU).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Parent folder of the arms' run folders (default `$INSTRUCT_IPT_RUNS`, else the user's
    /// cache folder).
    #[arg(long)]
    runs: Option<PathBuf>,
    /// `recipe` only: training wall time of every arm, minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Report folder (default `reports/<experiment>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder of the fixed synthetic eval sets (built there on first use).
    #[arg(long, default_value = "out/eval-sets")]
    sets: PathBuf,
    /// Device: cpu, or a GPU backend compiled in (wgpu / cuda).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

/// The experiments.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Experiment {
    /// Paper Table 1: plain mixed training vs feature adaptation vs weight modulation.
    Table1,
    /// Paper Tables 3 and 9: synchronous vs two-stage training; weight replacement vs shared.
    Sync,
    /// Paper Table 2: cosine similarity of each layer group before/after single-task fine-tuning.
    Sensitivity,
    /// Paper Fig. 2 and Table 10: energy of the fine-tuning deltas; constant vs proportional rank.
    Rank,
    /// Our training recipe: patch size, learning rate, loss, task sampling and the preset's
    /// shape, each arm trained for the same wall time and read on validation.
    Recipe,
}

impl Experiment {
    fn name(self) -> &'static str {
        match self {
            Experiment::Table1 => "table1",
            Experiment::Sync => "sync",
            Experiment::Sensitivity => "sensitivity",
            Experiment::Rank => "rank",
            Experiment::Recipe => "recipe",
        }
    }
}

/// Runs one experiment and writes its report.
pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!(args.scale > 0.0, "--scale must be positive, got {}", args.scale);
    let device = select_device(args.device)?;
    let context = arms::Context {
        scale: args.scale,
        runs: args.runs.unwrap_or_else(ipt_train::runs_home),
        sets: args.sets,
        device,
        out: args.out.unwrap_or_else(|| PathBuf::from("reports").join(args.experiment.name())),
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
    };
    match args.experiment {
        Experiment::Table1 => table1::run(&context),
        Experiment::Sync => sync::run(&context),
        Experiment::Sensitivity => sensitivity::run(&context),
        Experiment::Rank => rank::run(&context),
        Experiment::Recipe => recipe::run(&context, args.minutes),
    }
}
