//! `cargo xtask fetch-data [NAME ...] [--data <folder>] [--list]`: downloads the public photo
//! sets of `datasets/sources.toml` (resumable, SHA-256 checked) into the data root.

mod download;
mod manifest;
#[cfg(test)]
mod tests;
mod unpack;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ipt_data::spec::{DATA_ROOT_VARIABLE, list_images, user_data_home};

use download::Downloader;
use manifest::{Dataset, Manifest};

/// Options of `cargo xtask fetch-data`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Datasets to fetch (any case) [default: those marked `default` in the manifest].
    names: Vec<String>,
    /// Data root [default: $INSTRUCT_IPT_DATA, else instruct-ipt/data in the user's data folder].
    #[arg(long)]
    data: Option<PathBuf>,
    /// The manifest of sources.
    #[arg(long, default_value = "datasets/sources.toml")]
    manifest: PathBuf,
    /// Only list the datasets and where they would go.
    #[arg(long)]
    list: bool,
    /// Keep the downloaded archives (under `<data root>/.downloads`) after unpacking.
    #[arg(long)]
    keep_archives: bool,
    /// Unpack again even where a dataset is already complete.
    #[arg(long)]
    force: bool,
}

/// What fetching one dataset did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded and unpacked: the images now in its folder.
    Fetched(usize),
    /// Already complete: the images in its folder.
    AlreadyThere(usize),
    /// No direct download: where to get it by hand.
    Manual(String),
}

/// How to fetch.
pub struct Options {
    /// Keep archives after unpacking.
    pub keep_archives: bool,
    /// Unpack complete datasets again.
    pub force: bool,
    /// Draw progress bars.
    pub progress: bool,
}

/// Lists or fetches the chosen datasets and says how to train on them.
pub fn run(args: Args) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let root = match args.data.or_else(|| std::env::var_os(DATA_ROOT_VARIABLE).filter(|root| !root.is_empty()).map(PathBuf::from)) {
        Some(root) => root,
        None => user_data_home().context("no user data folder on this system: pass --data <folder>")?,
    };
    let chosen = manifest.select(&args.names)?;
    if args.list {
        for dataset in &manifest.datasets {
            let how = if dataset.manual.is_some() {
                "by hand"
            } else if dataset.default {
                "default"
            } else {
                "on request"
            };
            println!("{:<14} {:<9} {:<22} {}", dataset.name, how, dataset.folder.display(), dataset.about);
        }
        println!("data root: {}", root.display());
        return Ok(());
    }
    let options = Options { keep_archives: args.keep_archives, force: args.force, progress: true };
    for dataset in chosen {
        let folder = root.join(&dataset.folder);
        match fetch_dataset(dataset, &root, &options)? {
            Outcome::Fetched(count) => println!("{}: {count} images in {} ({})", dataset.name, folder.display(), dataset.licence),
            Outcome::AlreadyThere(count) => println!("{}: already there, {count} images in {}", dataset.name, folder.display()),
            Outcome::Manual(how) => println!("{}: no direct download; get it from {how}; into {}", dataset.name, folder.display()),
        }
    }
    println!(
        "use them with {DATA_ROOT_VARIABLE}={}: training specs name folders under it (e.g. `clean = [\"train/BSD400\"]`), eval suites read eval/",
        root.display()
    );
    Ok(())
}

/// Downloads and unpacks `dataset` into `root`, unless a marker says it is complete.
pub fn fetch_dataset(dataset: &Dataset, root: &Path, options: &Options) -> Result<Outcome> {
    if let Some(how) = &dataset.manual {
        return Ok(Outcome::Manual(how.clone()));
    }
    let folder = root.join(&dataset.folder);
    let marker = folder.join(".fetched");
    if marker.is_file() && !options.force {
        return Ok(Outcome::AlreadyThere(list_images(&folder)?.len()));
    }
    let downloader = Downloader::new(options.progress);
    let cache = root.join(".downloads");
    let mut sources = String::new();
    for download in dataset.downloads()? {
        let file = downloader.fetch(&download, &cache)?;
        unpack::unpack(&download, &file, &folder).with_context(|| format!("unpacking {} into {}", file.display(), folder.display()))?;
        if !options.keep_archives {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
        sources.push_str(&download.url);
        sources.push('\n');
    }
    let count = list_images(&folder)?.len();
    if let Some(expected) = dataset.images.filter(|expected| count < *expected) {
        bail!("{}: {count} images in {}, expected {expected}", dataset.name, folder.display());
    }
    std::fs::write(&marker, sources).with_context(|| format!("writing {}", marker.display()))?;
    Ok(Outcome::Fetched(count))
}
