//! `cargo xtask parity`: installs the PyTorch twin (`bench/pytorch/install.sh`) and runs the
//! parity tests against it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Installs the twin's venv, then runs the ignored parity tests.
pub fn run() -> Result<()> {
    let root = workspace_root();
    let status = Command::new("bash").arg(root.join("bench/pytorch/install.sh")).status().context("cannot run bench/pytorch/install.sh")?;
    if !status.success() {
        bail!("installing the PyTorch twin failed");
    }
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        // With flex's CPU kernels, as the shipped binaries run the model.
        .args(["test", "-p", "ipt-model", "--features", "flex", "--test", "parity", "--", "--ignored", "--nocapture"])
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("the parity tests failed");
    }
    Ok(())
}
