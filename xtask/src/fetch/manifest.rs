//! `datasets/sources.toml`: the public photo sets `cargo xtask fetch-data` knows, checked on load.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Every dataset of a manifest file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The datasets, in the file's order.
    #[serde(rename = "dataset")]
    pub datasets: Vec<Dataset>,
}

/// One photo set and where it comes from.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Name used on the command line.
    pub name: String,
    /// Destination, relative to the data root.
    pub folder: PathBuf,
    /// What it is, one line.
    pub about: String,
    /// Terms of use, one line.
    pub licence: String,
    /// Fetched when no dataset is named.
    #[serde(default)]
    pub default: bool,
    /// Images expected in `folder` once unpacked.
    pub images: Option<usize>,
    /// Direct downloads.
    #[serde(default, rename = "source")]
    pub sources: Vec<Source>,
    /// Where to get it by hand, for sets without a direct download.
    pub manual: Option<String>,
}

/// One downloadable file.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// HTTP(S) address; `{n}` is replaced by each of `numbered`.
    pub url: String,
    /// `[first, last]`: one file per number, zero-padded to the width of `last`.
    pub numbered: Option<[u32; 2]>,
    /// Pinned SHA-256 (lowercase hex) of the file.
    pub sha256: Option<String>,
    /// Archive members to keep: a path, or a folder ending in `/`.
    #[serde(default)]
    pub take: Vec<String>,
}

/// How a downloaded file is unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A gzip-compressed tar archive.
    TarGz,
    /// A plain tar archive.
    Tar,
    /// A zip archive.
    Zip,
    /// The file is itself the image.
    Plain,
}

/// A single file to download: its address, pin, kind and wanted members.
#[derive(Clone, Debug)]
pub struct Download {
    /// HTTP(S) address.
    pub url: String,
    /// The file name it is cached under.
    pub file_name: String,
    /// Pinned SHA-256.
    pub sha256: Option<String>,
    /// How it is unpacked.
    pub kind: FileKind,
    /// Members to keep (archives only).
    pub take: Vec<String>,
}

impl Manifest {
    /// Reads and checks a manifest; errors name the file and the dataset.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Self = toml::from_str(&text).with_context(|| format!("{}: not a valid manifest", path.display()))?;
        manifest.check().with_context(|| format!("{}", path.display()))?;
        Ok(manifest)
    }

    /// Unique names, relative folders, exactly one of sources / manual, valid pins and members.
    fn check(&self) -> Result<()> {
        let mut names = BTreeSet::new();
        for dataset in &self.datasets {
            if !names.insert(dataset.name.to_lowercase()) {
                bail!("dataset `{}` is listed twice", dataset.name);
            }
            dataset.check().with_context(|| format!("dataset `{}`", dataset.name))?;
        }
        Ok(())
    }

    /// The datasets called `names` (any case), or the default ones when `names` is empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Dataset>> {
        if names.is_empty() {
            return Ok(self.datasets.iter().filter(|dataset| dataset.default).collect());
        }
        names
            .iter()
            .map(|name| {
                self.datasets.iter().find(|dataset| dataset.name.eq_ignore_ascii_case(name)).with_context(|| {
                    let known: Vec<&str> = self.datasets.iter().map(|dataset| dataset.name.as_str()).collect();
                    format!("no dataset `{name}`; known: {}", known.join(", "))
                })
            })
            .collect()
    }
}

impl Dataset {
    fn check(&self) -> Result<()> {
        let relative = self.folder.components().all(|component| matches!(component, Component::Normal(_)));
        if !relative || self.folder.as_os_str().is_empty() {
            bail!("`folder` {} must be a relative path without `..`", self.folder.display());
        }
        match (self.sources.is_empty(), &self.manual) {
            (true, None) => bail!("has neither `source` nor `manual`"),
            (false, Some(_)) => bail!("has both `source` and `manual`"),
            _ => {}
        }
        for download in self.downloads()? {
            let malformed =
                |pin: &String| pin.len() != 64 || !pin.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
            if let Some(pin) = download.sha256.as_ref().filter(|pin| malformed(pin)) {
                bail!("{}: `sha256` must be 64 lowercase hex digits, got `{pin}`", download.url);
            }
            if (download.kind == FileKind::Plain) != download.take.is_empty() {
                bail!("{}: `take` lists members for archives, and only for them", download.url);
            }
        }
        Ok(())
    }

    /// Every file to download, with numbered sources expanded.
    pub fn downloads(&self) -> Result<Vec<Download>> {
        let mut downloads = Vec::new();
        for source in &self.sources {
            let urls = match source.numbered {
                None if source.url.contains("{n}") => bail!("{}: `{{n}}` without `numbered`", source.url),
                None => vec![source.url.clone()],
                Some([first, last]) if first > last || !source.url.contains("{n}") => {
                    bail!("{}: `numbered` needs first <= last and `{{n}}` in the URL", source.url)
                }
                Some([first, last]) => {
                    let width = last.to_string().len();
                    (first..=last).map(|number| source.url.replace("{n}", &format!("{number:0width$}"))).collect()
                }
            };
            for url in urls {
                let file_name = file_name_of(&url)?;
                let kind = kind_of(&file_name);
                downloads.push(Download { url, file_name, sha256: source.sha256.clone(), kind, take: source.take.clone() });
            }
        }
        Ok(downloads)
    }
}

/// The last path segment of a URL (without query), which names the cached file.
fn file_name_of(url: &str) -> Result<String> {
    let rest =
        url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).with_context(|| format!("`{url}` is not an http(s) URL"))?;
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit_once('/') {
        Some((_, name)) if !name.is_empty() && name != "." && name != ".." => Ok(name.to_string()),
        _ => bail!("`{url}` names no file"),
    }
}

/// The kind of a file, from its name.
fn kind_of(file_name: &str) -> FileKind {
    let lower = file_name.to_lowercase();
    if lower.ends_with(".tgz") || lower.ends_with(".tar.gz") {
        FileKind::TarGz
    } else if lower.ends_with(".tar") {
        FileKind::Tar
    } else if lower.ends_with(".zip") {
        FileKind::Zip
    } else {
        FileKind::Plain
    }
}
