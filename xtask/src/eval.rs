//! `cargo xtask eval --weights a.safetensors [--weights b ...] [--suite configs/eval/default.toml]`.

use std::path::PathBuf;

use anyhow::Result;
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_eval::{Candidate, EvalOptions, Suite, evaluate};

/// Options of `cargo xtask eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Weight files, one table row each (the identity row is always added).
    #[arg(long)]
    weights: Vec<PathBuf>,
    /// The suite of benchmarks.
    #[arg(long, default_value = "configs/eval/default.toml")]
    suite: PathBuf,
    /// Output folder (default `out/eval/<suite name>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder of the fixed synthetic sets (built there on first use, as `cargo xtask data --eval-sets` does).
    #[arg(long, default_value = "out/eval-sets")]
    sets: PathBuf,
    /// Score only the first N images of every benchmark (a quick look; not for reporting).
    #[arg(long)]
    limit: Option<usize>,
    /// Device: cpu, or a GPU backend compiled in (wgpu / cuda).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Tile side for restoring (0 = whole images).
    #[arg(long, default_value_t = instruct_ipt::DEFAULT_TILE)]
    tile: usize,
}

/// Evaluates, writes the reports and grids, and prints the Markdown table.
pub fn run(args: Args) -> Result<()> {
    let suite = Suite::load(&args.suite)?;
    let device = select_device(args.device).map_err(anyhow::Error::msg)?;
    let tile = (args.tile > 0).then_some(args.tile);
    let candidates = args.weights.iter().map(|path| Candidate::load(path, &device, tile)).collect::<Result<Vec<_>, _>>()?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("out/eval").join(&suite.name));
    let options = EvalOptions { sets_dir: args.sets, limit: args.limit, progress: true, grids: Some(out.join("grids")) };
    let report = evaluate(&suite, candidates, &options)?;
    let files = report.write(&out)?;
    println!("{}", report.markdown());
    for file in files {
        println!("wrote {}", file.display());
    }
    println!("wrote {}", out.join("grids").display());
    Ok(())
}
