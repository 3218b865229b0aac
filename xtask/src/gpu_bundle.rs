//! `cargo xtask gpu-bundle --out <ignored folder>`: everything a one-call run on the lent GPU
//! machine needs besides the checkout (docs/training.md, "On a lent GPU machine").
//!
//! The machine has no Rust, no network and no Vulkan loader (`../shared/docs/gpu.md`), and one
//! call carries at most 64 MiB, the checkout's own files (~31 MiB) included. The binary and the
//! photos do not fit in one call beside the checkout, so the bundle is cut into folders carried by
//! separate calls in a row while the machine stays warm (ignored files a call leaves there stay for
//! the next): `bin-1/`, `bin-2/`, ... hold the `vulkan` xtask built in release, stripped and
//! xz-compressed (python3's `lzma` unpacks it there), cut into as many equal parts as the room
//! beside the checkout asks for, and Debian's Vulkan loader packages (in `bin-1/`); `data/` holds
//! the training photos of a data spec as JPEG (quality 93 by default). The checkout's
//! `xtask/gpu/run.sh` gathers the parts in one `unpack` call each, runs the benchmarks in the next
//! call and trains in the one after, leaving the results in `$OUT` (a resumable run folder split
//! into parts of at most 15.6 MiB).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use ipt_data::DatasetSpec;
use ipt_data::spec::has_image_extension;
use rayon::prelude::*;
use serde_json::json;

/// Options of `cargo xtask gpu-bundle`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The bundle folder: it must be ignored by git (e.g. out/gpu-bundle), since the call to the
    /// GPU machine carries it as an ignored path.
    #[arg(long)]
    out: PathBuf,
    /// A `vulkan` xtask already built (skips the ~40 min release build on 2 cores).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The data spec whose training photos go in.
    #[arg(long, default_value = "datasets/all-in-one.toml")]
    spec: PathBuf,
    /// JPEG quality of the photos.
    #[arg(long, default_value_t = 93)]
    quality: u8,
    /// The most one call may carry, MiB: the checkout's files and one folder of the bundle (a call
    /// carries 64).
    #[arg(long, default_value_t = 63)]
    max_mib: u64,
}

/// What each call leaves free beside the checkout and its part of the bundle, MiB, so that a few
/// commits between building the bundle and the calls still fit.
const HEADROOM_MIB: f64 = 2.0;

/// Debian packages of the Vulkan loader the GPU machine lacks.
const LOADER_PACKAGES: [&str; 3] = ["libvulkan1", "libglvnd0", "libegl1"];

/// Builds the bundle and prints what it holds and weighs.
pub fn run(args: Args) -> Result<()> {
    ensure_ignored(&args.out)?;
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => build_vulkan_xtask()?,
    };
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let checkout = mib(checkout_bytes()?);
    let room = args.max_mib as f64 - checkout - HEADROOM_MIB;
    ensure!(room > 1.0, "the checkout's files ({checkout:.1} MiB) leave no room under --max-mib {}", args.max_mib);
    let archive = args.out.join("xtask.xz");
    compress(&binary, &archive)?;
    let parts = split_archive(&archive, &args.out, (room * 1024.0 * 1024.0) as u64)?;
    fetch_loader(&parts[0].join("debs"))?;
    let data = args.out.join("data");
    let photos = export_photos(&args.spec, &data.join("photos"), args.quality)?;
    let mut carried = parts.clone();
    carried.push(data);
    let weights =
        carried.iter().map(|folder| Ok((folder.display().to_string(), mib(folder_bytes(folder)?)))).collect::<Result<Vec<_>>>()?;
    let out = args.out.display();
    let mut calls: Vec<_> = parts
        .iter()
        .map(|part| json!({"carry": [part.display().to_string()], "command": format!("bash xtask/gpu/run.sh {out} unpack")}))
        .collect();
    calls.push(json!({"carry": [format!("{out}/data")], "command": format!("bash xtask/gpu/run.sh {out} bench [config]")}));
    calls.push(json!({"carry": [format!("{out}/data")], "command": format!("bash xtask/gpu/run.sh {out} train [minutes] [config]")}));
    let manifest = json!({
        "commit": git(&["rev-parse", "HEAD"])?.trim(),
        "binary": binary.display().to_string(),
        "photos": photos, "jpeg_quality": args.quality, "spec": args.spec.display().to_string(),
        "checkout_mib": checkout, "carried_mib": weights.iter().map(|(folder, weight)| (folder.clone(), json!(weight))).collect::<serde_json::Map<_, _>>(),
        "calls": calls,
    });
    ipt_core::write_atomically(&args.out.join("manifest.json"), serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    println!("{manifest}");
    for (folder, weight) in weights {
        ensure!(
            checkout + weight <= args.max_mib as f64,
            "the checkout's files ({checkout:.1} MiB) and {folder} ({weight:.1} MiB) weigh {:.1} MiB, over --max-mib {}",
            checkout + weight,
            args.max_mib
        );
    }
    Ok(())
}

/// Fails unless git ignores `folder` (a call carries ignored paths it is told to, and the
/// checkout's other files anyway).
fn ensure_ignored(folder: &Path) -> Result<()> {
    let status = Command::new("git").args(["check-ignore", "-q"]).arg(folder).status().context("running git check-ignore")?;
    ensure!(status.success(), "{}: not ignored by git; put the bundle in an ignored folder such as out/gpu-bundle", folder.display());
    Ok(())
}

/// `cargo build --release -p xtask --features vulkan`, stripped, in a target folder of its own.
fn build_vulkan_xtask() -> Result<PathBuf> {
    let target = PathBuf::from("target/gpu-bundle");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "xtask", "--features", "vulkan", "--target-dir"])
        .arg(&target)
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "building the vulkan xtask failed ({status})");
    Ok(target.join("release/xtask"))
}

/// `source` xz-compressed into `target`, written atomically: preset 9 extreme, as every MiB
/// counts against a call's 64 (the vulkan xtask of e047a5b: 32.4 MiB at preset 6, 31.7 at 9e).
fn compress(source: &Path, target: &Path) -> Result<()> {
    fs::create_dir_all(target.parent().context("the archive has a folder")?)?;
    let mut input = fs::File::open(source).with_context(|| format!("{}: cannot open the binary", source.display()))?;
    ipt_core::write_atomically_with(target, |file| {
        let mut encoder = liblzma::write::XzEncoder::new(file, 9 | liblzma::stream::PRESET_EXTREME);
        std::io::copy(&mut input, &mut encoder)?;
        encoder.finish()?.flush()
    })
    .with_context(|| format!("{}: writing", target.display()))
}

/// `archive` cut into the fewest equal parts of at most `room` bytes, written as
/// `<out>/bin-<i>/xtask.xz.part-<i>` (two digits) beside a `parts` file holding their count (so the
/// machine knows when it has them all); folders of an earlier cut are removed. Returns the folders.
fn split_archive(archive: &Path, out: &Path, room: u64) -> Result<Vec<PathBuf>> {
    let bytes = fs::read(archive).with_context(|| format!("{}: cannot read", archive.display()))?;
    let fewest = bytes.len().div_ceil(room as usize).max(1);
    ensure!(fewest < 100, "{}: {fewest} parts of {room} bytes; raise --max-mib", archive.display());
    let chunks: Vec<&[u8]> = bytes.chunks(bytes.len().div_ceil(fewest).max(1)).collect();
    for entry in fs::read_dir(out)? {
        let path = entry?.path();
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() && (name == "bin" || name.starts_with("bin-")) {
            fs::remove_dir_all(&path).with_context(|| format!("{}: removing an earlier cut", path.display()))?;
        }
    }
    let mut folders = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let folder = out.join(format!("bin-{}", index + 1));
        fs::create_dir_all(&folder)?;
        ipt_core::write_atomically(&folder.join(format!("xtask.xz.part-{:02}", index + 1)), chunk)?;
        ipt_core::write_atomically(&folder.join("parts"), format!("{}\n", chunks.len()).as_bytes())?;
        folders.push(folder);
    }
    Ok(folders)
}

/// Every training photo of `spec` re-encoded as JPEG under `target`, at the same path relative
/// to the data root (so `INSTRUCT_IPT_DATA=<target>` finds them); returns how many.
fn export_photos(spec: &Path, target: &Path, quality: u8) -> Result<usize> {
    let spec = DatasetSpec::load(spec)?;
    let root = spec.data_root()?;
    let mut jobs = Vec::new();
    for folder in &spec.clean {
        ensure!(folder.is_relative(), "{}: the bundle mirrors folders relative to the data root", folder.display());
        let source = root.join(folder);
        let entries = fs::read_dir(&source).with_context(|| format!("{}: cannot list", source.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_file() && has_image_extension(&path) {
                let name = path.file_stem().context("a photo has a name")?;
                jobs.push((path.clone(), target.join(folder).join(name).with_extension("jpg")));
            }
        }
    }
    if jobs.is_empty() {
        bail!("{}: no training photos under the data root {}", spec.name, root.display());
    }
    jobs.par_iter().try_for_each(|(source, photo)| -> Result<()> {
        if photo.is_file() {
            return Ok(());
        }
        let image = image::open(source).with_context(|| format!("{}: cannot decode", source.display()))?.to_rgb8();
        fs::create_dir_all(photo.parent().context("a photo has a folder")?)?;
        ipt_core::write_atomically_with(photo, |file| {
            image::codecs::jpeg::JpegEncoder::new_with_quality(BufWriter::new(file), quality)
                .encode_image(&image)
                .map_err(std::io::Error::other)
        })
        .with_context(|| format!("{}: writing", photo.display()))
    })?;
    Ok(jobs.len())
}

/// Debian's Vulkan loader packages, downloaded with `apt-get download` unless already there.
fn fetch_loader(folder: &Path) -> Result<()> {
    fs::create_dir_all(folder)?;
    let present = |package: &str| -> Result<bool> {
        Ok(fs::read_dir(folder)?
            .filter_map(|entry| entry.ok())
            .any(|entry| entry.file_name().to_string_lossy().starts_with(&format!("{package}_"))))
    };
    for package in LOADER_PACKAGES {
        if present(package)? {
            continue;
        }
        let status = Command::new("apt-get")
            .arg("download")
            .arg(package)
            .current_dir(folder)
            .status()
            .context("running apt-get download (Debian's package registry)")?;
        ensure!(status.success(), "apt-get download {package} failed ({status})");
    }
    Ok(())
}

/// Bytes of every file under `folder`.
fn folder_bytes(folder: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(folder).with_context(|| format!("{}: cannot list", folder.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total += if kind.is_dir() { folder_bytes(&entry.path())? } else { entry.metadata()?.len() };
    }
    Ok(total)
}

/// Bytes of the files a call carries besides the bundle: tracked and untracked-not-ignored.
fn checkout_bytes() -> Result<u64> {
    let listing = git(&["ls-files", "-z", "--cached", "--others", "--exclude-standard"])?;
    Ok(listing.split('\0').filter(|path| !path.is_empty()).filter_map(|path| fs::metadata(path).ok()).map(|meta| meta.len()).sum())
}

fn git(args: &[&str]) -> Result<String> {
    let output = Command::new("git").args(args).output().context("running git")?;
    ensure!(output.status.success(), "git {} failed", args.join(" "));
    Ok(String::from_utf8(output.stdout)?)
}
