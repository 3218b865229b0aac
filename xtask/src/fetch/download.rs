//! Resumable HTTP downloads into a cache folder, checked against a pinned SHA-256.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ipt_data::eval_set::sha256_file;

use super::manifest::Download;

/// Times a dropped transfer is resumed within one run before giving up.
const ATTEMPTS: usize = 4;

/// An HTTP client that resumes interrupted transfers.
pub struct Downloader {
    agent: ureq::Agent,
    progress: bool,
}

impl Downloader {
    /// A client with connection and read timeouts; `progress` draws a bar per file.
    pub fn new(progress: bool) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .build();
        Self { agent: config.into(), progress }
    }

    /// The checked file of `download` in `cache`: reused when already there (and matching its
    /// pin), else downloaded into `<file>.part`, resuming what an earlier run left, then renamed.
    pub fn fetch(&self, download: &Download, cache: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
        let target = cache.join(&download.file_name);
        if target.is_file() {
            match check_pin(&target, download) {
                Ok(()) => return Ok(target),
                Err(error) => eprintln!("{error:#}; downloading it again"),
            }
        }
        let part = cache.join(format!("{}.part", download.file_name));
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            match self.transfer(&download.url, &part) {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(error) if error.is::<Fatal>() => return Err(error),
                Err(error) => last_error = Some(error),
            }
        }
        if let Some(error) = last_error {
            return Err(error.context(format!(
                "cannot download {} (offline, or the host is down?); {} keeps what arrived: run again to resume",
                download.url,
                part.display()
            )));
        }
        check_pin(&part, download)?;
        std::fs::rename(&part, &target).with_context(|| format!("renaming {} to {}", part.display(), target.display()))?;
        Ok(target)
    }

    /// One request for the rest of `part`: appends on 206, restarts on 200.
    fn transfer(&self, url: &str, part: &Path) -> Result<()> {
        let have = std::fs::metadata(part).map_or(0, |metadata| metadata.len());
        let mut request = self.agent.get(url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request.call().with_context(|| format!("requesting {url}"))?;
        let status = response.status().as_u16();
        let length = response.headers().get("content-length").and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        let start = match status {
            206 => have,
            200 => 0,
            416 if have > 0 => return Ok(()),
            _ => return Err(Fatal(format!("{url}: the server answered HTTP {status}")).into()),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(start == 0)
            .open(part)
            .with_context(|| format!("opening {}", part.display()))?;
        file.seek(SeekFrom::Start(start))?;
        file.set_len(start)?;
        let bar = self.bar(url, length.map(|length| start + length), start);
        let mut body = bar.wrap_read(response.into_body().into_reader());
        let copied = std::io::copy(&mut body, &mut file).with_context(|| format!("receiving {url}"));
        file.sync_all().with_context(|| format!("writing {}", part.display()))?;
        bar.finish_and_clear();
        let received = copied?;
        if let Some(length) = length.filter(|length| *length != received) {
            bail!("{url}: the transfer stopped after {received} of {length} bytes");
        }
        Ok(())
    }

    /// A byte progress bar (hidden without `progress`).
    fn bar(&self, url: &str, total: Option<u64>, position: u64) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = total.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
        let template = "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}";
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        bar.set_position(position);
        bar
    }
}

/// A failure that retrying cannot fix (an HTTP error status).
#[derive(Debug)]
struct Fatal(String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for Fatal {}

/// Checks `file` against the pin of `download`; without a pin, prints the digest to pin.
fn check_pin(file: &Path, download: &Download) -> Result<()> {
    let digest = sha256_file(file)?;
    match &download.sha256 {
        Some(pin) if *pin != digest => {
            std::fs::remove_file(file).with_context(|| format!("removing {}", file.display()))?;
            bail!("{}: SHA-256 {digest}, expected {pin} (file removed)", download.url)
        }
        Some(_) => Ok(()),
        None => {
            println!("  {} sha256 = \"{digest}\" (not pinned in the manifest)", download.file_name);
            Ok(())
        }
    }
}
