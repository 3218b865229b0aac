//! `instruct-ipt restore`: one file, or every image of a folder with a progress bar.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use instruct_ipt::backend::select_device;
use instruct_ipt::image::DynamicImage;
use instruct_ipt::{Restorer, Task, read_image_within, write_image};

use crate::RestoreArgs;

/// File extensions read from input folders.
const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp"];

/// Restores `args.input` into `args.output`.
pub fn run(args: RestoreArgs) -> Result<()> {
    let tasks = match &args.instruction {
        Some(instruction) => match crate::instruction::route(&args.encoder.router()?, instruction) {
            Some(tasks) => tasks,
            None => return Ok(()),
        },
        None => args.task.map(|task| vec![(task, 1.0)]).unwrap_or_default(),
    };
    let device = select_device(args.device)?;
    let tile = (args.tile > 0).then_some(args.tile);
    let load = || -> Result<Restorer> { Ok(Restorer::load_or_bundled(args.weights.as_deref(), &device)?.with_tile(tile)) };
    if args.input.is_dir() {
        restore_folder(&load()?, &args.input, &args.output, &tasks, args.max_megapixels)
    } else {
        let output = if args.output.is_dir() { args.output.join(file_name(&args.input)?) } else { args.output.clone() };
        // The image first: a file that cannot be restored fails before the weights are loaded.
        let image = read_image_within(&args.input, args.max_megapixels)?;
        restore_image(&load()?, image, &args.input, &output, &tasks)?;
        println!("restored {} -> {}", args.input.display(), output.display());
        Ok(())
    }
}

/// Restores one file with `tasks` (none: the general weights; two: one after the other).
fn restore_file(restorer: &Restorer, input: &Path, output: &Path, tasks: &[(Task, f32)], max_megapixels: f64) -> Result<()> {
    restore_image(restorer, read_image_within(input, max_megapixels)?, input, output, tasks)
}

/// Restores `image`, read from `input`, into `output`.
fn restore_image(restorer: &Restorer, image: DynamicImage, input: &Path, output: &Path, tasks: &[(Task, f32)]) -> Result<()> {
    let restored = restorer.restore_requested(&image, tasks).with_context(|| format!("{}", input.display()))?;
    // The input's pixels are not needed while the output is encoded.
    drop(image);
    write_image(output, &restored)?;
    Ok(())
}

/// Restores every image of `input` into `output` (created if needed); a file that fails is
/// reported and skipped, and the command fails at the end if any did.
fn restore_folder(restorer: &Restorer, input: &Path, output: &Path, tasks: &[(Task, f32)], max_megapixels: f64) -> Result<()> {
    let files = images_in(input)?;
    if files.is_empty() {
        bail!("{}: no images found (looked for {})", input.display(), IMAGE_EXTENSIONS.join(", "));
    }
    std::fs::create_dir_all(output).with_context(|| format!("{}: cannot create the output folder", output.display()))?;
    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {elapsed} elapsed, ETA {eta} {msg}")
            .expect("the progress template is valid"),
    );
    let mut failures = 0;
    for file in &files {
        progress.set_message(file_name(file)?.to_string_lossy().into_owned());
        if let Err(error) = restore_file(restorer, file, &output.join(file_name(file)?), tasks, max_megapixels) {
            progress.suspend(|| eprintln!("error: {error:#}"));
            failures += 1;
        }
        progress.inc(1);
    }
    progress.finish_with_message("done");
    if failures > 0 {
        bail!("{failures} of {} images could not be restored", files.len());
    }
    println!("restored {} images from {} into {}", files.len(), input.display(), output.display());
    Ok(())
}

fn images_in(folder: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(folder).with_context(|| format!("{}: cannot list the folder", folder.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("{}: cannot list the folder", folder.display()))?.path();
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if path.is_file() && extension.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> Result<&std::ffi::OsStr> {
    path.file_name().with_context(|| format!("{}: not a file name", path.display()))
}
