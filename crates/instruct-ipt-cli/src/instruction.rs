//! Instructions in plain words: `instruct-ipt parse` and the routing of `restore --instruction`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use instruct_ipt::{Decision, Device, Intent, Router, Task, describe_request};

/// Which sentence encoder reads instructions.
#[derive(clap::Args, Debug)]
pub struct EncoderArgs {
    /// `static` (compiled in, the default) or `minilm` (needs `cargo xtask fetch-minilm` and
    /// `cargo xtask train-router --encoder minilm`).
    #[arg(long, default_value = "static")]
    text_encoder: String,
    /// Folder of MiniLM's weights and router head, for `--text-encoder minilm`.
    #[arg(long, default_value = "models/minilm")]
    minilm_dir: PathBuf,
}

impl EncoderArgs {
    /// The router these options select.
    pub fn router(&self) -> Result<Router> {
        let device = Device::flex();
        match self.text_encoder.as_str() {
            "static" => Ok(Router::bundled(&device)),
            "minilm" => Ok(Router::minilm(Path::new(&self.minilm_dir), &device)?),
            other => bail!("unknown text encoder '{other}' (expected static or minilm)"),
        }
    }
}

/// The task weights an instruction asks for, or `None` (after saying why) when the image must
/// be left untouched.
pub fn route(router: &Router, instruction: &str) -> Option<Vec<(Task, f32)>> {
    match router.route(instruction).decision {
        Decision::Restore(weights) => {
            println!("instruction understood as: {}", describe_request(&weights));
            Some(weights)
        }
        Decision::Unchanged(reason) => {
            println!("left unchanged, nothing written: {reason}");
            None
        }
    }
}

/// Prints the probability of every intent and the decision.
pub fn parse(router: &Router, instruction: &str) {
    let routing = router.route(instruction);
    let mut ranked: Vec<(Intent, f32)> = Intent::ALL.iter().map(|&intent| (intent, routing.probabilities[intent.index()])).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (intent, probability) in ranked {
        println!("{:>10} {:>6.1}%", intent.name(), 100.0 * probability);
    }
    match routing.decision {
        Decision::Restore(weights) => println!("decision: restore with {}", describe_request(&weights)),
        Decision::Unchanged(reason) => println!("decision: leave unchanged ({reason})"),
    }
}
