//! `cargo xtask train-router` (fits a router head on the training corpus: the default one into
//! the text crate's assets, the MiniLM one beside MiniLM's weights) and `cargo xtask eval-text` (scores routers on the held-out
//! corpus: accuracy, confusion matrix, `none` rejection at 95% in-domain acceptance).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use ipt_text::corpus::load;
use ipt_text::head_training::HeadTraining;
use ipt_text::router::MINILM_HEAD;
use ipt_text::{Fitting, MiniLm, Router, SentenceEncoder, assess, fit_router};

use crate::parity::workspace_root;

/// Options of `cargo xtask train-router`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The training split.
    #[arg(long, default_value = "datasets/instructions/train")]
    corpus: PathBuf,
    /// The encoder: `static` (the default router, written into ipt-text's assets) or `minilm`
    /// (written beside MiniLM's weights, for `--text-encoder minilm`).
    #[arg(long, default_value = "static")]
    encoder: String,
    /// MiniLM's weights folder (`cargo xtask fetch-minilm`), for `--encoder minilm`.
    #[arg(long, default_value = "models/minilm")]
    minilm: PathBuf,
    /// Hidden units of the head.
    #[arg(long, default_value_t = HeadTraining::default().hidden)]
    hidden: usize,
    /// Training epochs.
    #[arg(long, default_value_t = HeadTraining::default().epochs)]
    epochs: usize,
    /// Dropout.
    #[arg(long, default_value_t = HeadTraining::default().dropout)]
    dropout: f64,
    /// Typo-ridden copies per sentence.
    #[arg(long, default_value_t = Fitting::default().typo_copies)]
    typo_copies: usize,
    /// Write nothing: only print the cross-validation figures (for choosing settings).
    #[arg(long)]
    dry_run: bool,
    /// Also list the training sentences cross-validation routed wrongly.
    #[arg(long)]
    show_mistakes: bool,
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
    /// MiniLM's weights folder (`cargo xtask fetch-minilm`; its stored router head is used when
    /// present, else one is fitted on the training split); skipped when absent.
    #[arg(long, default_value = "models/minilm")]
    minilm: PathBuf,
}

/// Fits a router on the training split and writes its head.
pub fn train(args: TrainArgs) -> Result<()> {
    let root = workspace_root();
    let device = Device::flex();
    let examples = load(&root.join(&args.corpus))?;
    let (encoder, out) = match args.encoder.as_str() {
        "static" => (SentenceEncoder::bundled(), PathBuf::from("crates/ipt-text/assets/router-static.safetensors")),
        "minilm" => (
            SentenceEncoder::MiniLm(Box::new(MiniLm::load(&root.join(&args.minilm).join("model.safetensors"), &device)?)),
            args.minilm.join(MINILM_HEAD),
        ),
        other => bail!("unknown encoder '{other}' (expected static or minilm)"),
    };
    let fitting = Fitting {
        head: HeadTraining { hidden: args.hidden, epochs: args.epochs, dropout: args.dropout, ..HeadTraining::default() },
        typo_copies: args.typo_copies,
        ..Fitting::default()
    };
    let started = Instant::now();
    let (router, validation) = fit_router(encoder, &examples, &fitting, &device);
    println!(
        "fitted on {} sentences in {:.1} s; 5-fold cross-validation on the training split: accuracy {:.1}%, none rejected {:.1}% at threshold {:.3}",
        examples.len(),
        started.elapsed().as_secs_f64(),
        100.0 * validation.accuracy,
        100.0 * validation.none_rejection,
        validation.threshold
    );
    if args.show_mistakes {
        for mistake in &validation.mistakes {
            let example = &examples[mistake.example];
            println!("  {:?} -> {}: {}", example.label, mistake.predicted, example.text);
        }
    }
    if args.dry_run {
        return Ok(());
    }
    let provenance = format!(
        "cargo xtask train-router --encoder {} --hidden {} --epochs {} --dropout {} --typo-copies {} on {} ({} sentences)",
        args.encoder,
        args.hidden,
        args.epochs,
        args.dropout,
        args.typo_copies,
        args.corpus.display(),
        examples.len()
    );
    let bytes = router.to_bytes(&provenance)?;
    let path = root.join(&out);
    ipt_core::write_atomically(&path, &bytes).with_context(|| path.display().to_string())?;
    println!("wrote {} ({} KB)", out.display(), bytes.len() / 1024);
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
    if minilm.join(MINILM_HEAD).is_file() {
        report(&Router::minilm(&minilm, &device)?, &examples);
    } else if minilm.join("model.safetensors").is_file() {
        let model = MiniLm::load(&minilm.join("model.safetensors"), &device)?;
        let started = Instant::now();
        let (router, _) =
            fit_router(SentenceEncoder::MiniLm(Box::new(model)), &load(&root.join(&args.corpus))?, &Fitting::default(), &device);
        println!(
            "(MiniLM router fitted on {} in {:.0} s; `cargo xtask train-router --encoder minilm` stores it)\n",
            args.corpus.display(),
            started.elapsed().as_secs_f64()
        );
        report(&router, &examples);
    } else {
        println!("{} has no MiniLM: `cargo xtask fetch-minilm` to score the MiniLM encoder too", args.minilm.display());
    }
    Ok(())
}

fn report(router: &Router, examples: &[ipt_text::corpus::Example]) {
    let started = Instant::now();
    let scores = assess(router, examples);
    println!("{}", scores.markdown());
    println!("({:.2} ms per sentence)\n", 1000.0 * started.elapsed().as_secs_f64() / examples.len().max(1) as f64);
}
