//! `cargo xtask plot runs/<name> ...`: redraws a run's `curves.png` from its `metrics.jsonl`
//! (training redraws it as it goes; this is for runs made by older binaries or copied runs).

use std::path::PathBuf;

use anyhow::Result;

/// Options of `cargo xtask plot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folders (each holding a `metrics.jsonl`).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
}

/// Redraws each run's curves and prints where they went.
pub fn run(args: Args) -> Result<()> {
    for run in &args.runs {
        let title = run.file_name().map_or_else(|| run.display().to_string(), |name| name.to_string_lossy().into_owned());
        ipt_train::plot::refresh(run, &title)?;
        println!("{}", run.join("curves.png").display());
    }
    Ok(())
}
