//! `cargo xtask train-router` (fits the default router head on the training corpus and writes
//! it into the text crate's assets) and `cargo xtask eval-text` (scores routers on the held-out
//! corpus: accuracy, confusion matrix, `none` rejection at 95% in-domain acceptance).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;
use ipt_text::corpus::load;
use ipt_text::{Fitting, MiniLm, Router, SentenceEncoder, assess, fit_router};

use crate::parity::workspace_root;

/// Options of `cargo xtask train-router`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The training split.
    #[arg(long, default_value = "datasets/instructions/train")]
    corpus: PathBuf,
    /// Where the head goes.
    #[arg(long, default_value = "crates/ipt-text/assets/router-static.safetensors")]
    out: PathBuf,
}

/// Options of `cargo xtask eval-text`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The split scored.
    #[arg(long, default_value = "datasets/instructions/heldout")]
    split: PathBuf,
    /// The training split (to fit the MiniLM router, when its weights are there).
    #[arg(long, default_value = "datasets/instructions/train")]
    corpus: PathBuf,
    /// MiniLM's weights (`cargo xtask fetch-minilm`); skipped when absent.
    #[arg(long, default_value = "models/minilm/model.safetensors")]
    minilm: PathBuf,
}

/// Fits the static-encoder router and writes its head.
pub fn train(args: TrainArgs) -> Result<()> {
    let root = workspace_root();
    let device = Device::flex();
    let examples = load(&root.join(&args.corpus))?;
    let started = Instant::now();
    let router = fit_router(SentenceEncoder::bundled(), &examples, &Fitting::default(), &device);
    println!("fitted on {} sentences in {:.1} s; threshold {:.3}", examples.len(), started.elapsed().as_secs_f64(), router.threshold);
    let provenance = format!("cargo xtask train-router on {} ({} sentences)", args.corpus.display(), examples.len());
    let bytes = router.to_bytes(&provenance).map_err(anyhow::Error::msg)?;
    let out = root.join(&args.out);
    ipt_model::write_atomically(&out, &bytes).with_context(|| out.display().to_string())?;
    println!("wrote {} ({} KB)", args.out.display(), bytes.len() / 1024);
    Ok(())
}

/// Scores the bundled router, and a MiniLM router fitted on the training split when MiniLM's
/// weights are there.
pub fn eval(args: EvalArgs) -> Result<()> {
    let root = workspace_root();
    let device = Device::flex();
    let examples = load(&root.join(&args.split))?;
    println!("{} held-out sentences from {}\n", examples.len(), args.split.display());
    report(&Router::bundled(&device), &examples);
    let minilm = root.join(&args.minilm);
    if minilm.is_file() {
        let model = MiniLm::load(&minilm, &device)?;
        let started = Instant::now();
        let router = fit_router(SentenceEncoder::MiniLm(Box::new(model)), &load(&root.join(&args.corpus))?, &Fitting::default(), &device);
        println!("(MiniLM router fitted on {} in {:.0} s)\n", args.corpus.display(), started.elapsed().as_secs_f64());
        report(&router, &examples);
    } else {
        println!("{} is missing: `cargo xtask fetch-minilm` to score the MiniLM encoder too", args.minilm.display());
    }
    Ok(())
}

fn report(router: &Router, examples: &[ipt_text::corpus::Example]) {
    let started = Instant::now();
    let scores = assess(router, examples);
    println!("{}", scores.markdown());
    println!("({:.2} ms per sentence)\n", 1000.0 * started.elapsed().as_secs_f64() / examples.len().max(1) as f64);
}
