//! `cargo xtask eval --weights a.safetensors [--weights b ...] [--suite configs/eval/default.toml]`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_eval::{Candidate, EvalOptions, Instructions, Routing, Suite, evaluate};

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
    /// Task routings, one row each per weight file: oracle (task given), instruction (a held-out
    /// instruction through the text router), blind (the recogniser decides), shared (no task:
    /// the shared weights alone).
    #[arg(long, value_delimiter = ',', default_value = "oracle")]
    routing: Vec<String>,
    /// Instructions for the `instruction` routing (the held-out split: never trained on).
    #[arg(long, default_value = "datasets/instructions/heldout")]
    instructions: PathBuf,
    /// Recogniser weights for the `blind` routing; the bundled recogniser when omitted.
    #[arg(long)]
    recogniser: Option<PathBuf>,
    /// Tile side for restoring (0 = whole images).
    #[arg(long, default_value_t = instruct_ipt::DEFAULT_TILE)]
    tile: usize,
    /// Also score every weight file with the self-ensemble (eight flips and transposes
    /// averaged; rows marked "× 8").
    #[arg(long)]
    ensemble: bool,
}

/// Evaluates, writes the reports and grids, and prints the Markdown table.
pub fn run(args: Args) -> Result<()> {
    let suite = Suite::load(&args.suite)?;
    let device = select_device(args.device)?;
    let tile = (args.tile > 0).then_some(args.tile);
    let mut loaded = args.weights.iter().map(|path| Candidate::load(path, &device, tile)).collect::<Result<Vec<_>, _>>()?;
    if args.ensemble {
        for path in &args.weights {
            let restorer = instruct_ipt::Restorer::load(path, &device)?.with_tile(tile).with_self_ensemble(true);
            loaded.push(Candidate::from_restorer(format!("{} × 8", path.display()), Some(path.clone()), restorer));
        }
    }
    let mut routings = Vec::new();
    for name in &args.routing {
        routings.push(match name.as_str() {
            "oracle" => Routing::Oracle,
            "shared" => Routing::Shared,
            "blind" => Routing::Blind(Arc::new(instruct_ipt::Recogniser::load_or_bundled(args.recogniser.as_deref(), &device)?)),
            "instruction" => Routing::Instruction(Arc::new(Instructions::load(&args.instructions, &device)?)),
            other => bail!("unknown routing '{other}' (expected oracle, instruction, blind or shared)"),
        });
    }
    let candidates: Vec<Candidate> =
        loaded.iter().flat_map(|candidate| routings.iter().map(|routing| candidate.routed(routing.clone()))).collect();
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
